// A minimal worker: serves HTTP on the socket arbiter hands over at fd 3
// (node:http can listen on an fd; Deno.serve cannot yet) and drains on TERM
// without failing a request: the rules and their reasons are in
// docs/worker-protocol.md, "Draining without failing a request".
import { createServer } from "node:http";
import { Server, type Socket } from "node:net";

const id = Deno.env.get("ARBITER_WORKER_ID");
const IDLE_GRACE_MS = 1000; // a connection this long without a request is closed when draining
const idleSince = new Map<Socket, number>(); // open connections with no request in progress
let draining = false;

const server = createServer((req, res) => {
  idleSince.delete(req.socket);
  // While draining, the answer says so and node:http closes the connection after it.
  if (draining) res.setHeader("connection", "close");
  res.on("finish", () => req.socket.destroyed || idleSince.set(req.socket, Date.now()));
  res.end(`hello from worker ${id} (pid ${Deno.pid})\n`);
});
server.on("connection", (socket: Socket) => {
  idleSince.set(socket, Date.now()); // its first request is surely on the way
  socket.on("close", () => idleSince.delete(socket));
});
server.listen({ fd: 3 });

// arbiter forwards USR1 to every worker to reopen log files (after rotation); its
// default action ends the process. Deno ≥ 2.9.2 also opens a V8 inspector on
// 127.0.0.1:9229 on USR1, listener or not, so app.toml has worker_usr1 =
// "blocked": this worker starts with USR1 blocked and never sees it. The listener
// is for a config without that (nothing to reopen: output goes to stdout/stderr;
// catching it keeps the worker alive).
Deno.addSignalListener("SIGUSR1", () => {});

Deno.addSignalListener("SIGTERM", () => {
  if (draining) return;
  draining = true;
  // Stop accepting; exit once every connection is closed. Not server.close(): it also
  // closes idle keep-alive connections at once, resetting a client that is sending on one.
  Server.prototype.close.call(server, () => Deno.exit(0));
  const readSeen = new Map<Socket, number>(); // bytes read by the last sweep
  setInterval(() => {
    for (const [socket, since] of idleSince) {
      // The grace runs from TERM at the earliest (a connection idle before may carry a
      // request right now), and restarts while a request trickles in: that is not silence.
      const seen = readSeen.get(socket);
      readSeen.set(socket, socket.bytesRead);
      if (seen !== socket.bytesRead) {
        idleSince.set(socket, Date.now());
        continue;
      }
      // destroy(), not end(): a quiet client may never close its side, and the drain waits
      // for every connection. With nothing unread or unsent, the client still sees a FIN.
      if (Date.now() - since >= IDLE_GRACE_MS) socket.destroy();
    }
  }, 100);
});
