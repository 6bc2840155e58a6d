// A minimal worker: serves HTTP on the socket arbiter hands over at fd 3
// (node:http can listen on an fd; Deno.serve cannot yet) and drains on TERM.
import { createServer } from "node:http";
import type { Socket } from "node:net";

const id = Deno.env.get("ARBITER_WORKER_ID");
const idle = new Set<Socket>(); // connections with no request in progress
let draining = false;

const server = createServer((req, res) => {
  idle.delete(req.socket);
  res.on("finish", () => draining ? req.socket.end() : idle.add(req.socket));
  res.end(`hello from worker ${id} (pid ${Deno.pid})\n`);
});
server.on("connection", (socket: Socket) => {
  idle.add(socket);
  socket.on("close", () => idle.delete(socket));
});
server.listen({ fd: 3 });

Deno.addSignalListener("SIGTERM", () => {
  draining = true;
  server.close(() => Deno.exit(0)); // stop accepting; exit once in-flight requests are done
  for (const socket of idle) socket.end(); // idle keep-alive connections, even never used ones
});
