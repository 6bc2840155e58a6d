// A minimal worker: serves HTTP on the socket arbiter hands over at fd 3
// (node:http can listen on an fd; Deno.serve cannot yet) and drains on TERM.
import { createServer } from "node:http";

const id = Deno.env.get("ARBITER_WORKER_ID");
const server = createServer((_req, res) => {
  res.end(`hello from worker ${id} (pid ${Deno.pid})\n`);
});
server.listen({ fd: 3 });
Deno.addSignalListener("SIGTERM", () => {
  server.close(() => Deno.exit(0)); // finish in-flight requests, then leave
  server.closeIdleConnections();
});
