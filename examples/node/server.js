// A Node.js worker for arbiter: node:http on the socket handed over at fd 3,
// READY=1 over ARBITER_NOTIFY_STREAM when arbiter offers it (Node cannot send
// unix datagrams, so NOTIFY_SOCKET is of no use here), graceful stop on TERM.
"use strict";
const http = require("node:http");
const net = require("node:net");

const id = process.env.ARBITER_WORKER_ID ?? "?";
let stopping = false;

// The notify stream: one `KEY=VALUE\n` line per message (READY=1, WATCHDOG=1, STOPPING=1).
let notifyConn = null;
if (process.env.ARBITER_NOTIFY_STREAM) {
  notifyConn = net.connect(process.env.ARBITER_NOTIFY_STREAM);
  notifyConn.on("error", (err) => console.error(`notify stream: ${err.message}`));
}
function notify(line) {
  if (notifyConn && !notifyConn.destroyed) notifyConn.write(line + "\n");
}

// Draining without failing a request (docs/worker-protocol.md): once TERM
// arrives, every answer says `Connection: close` and node:http closes the
// connection after it; a connection is ended only once it has had no request
// for IDLE_GRACE_MS, since a client may be sending on it right now.
const IDLE_GRACE_MS = 1000;
const idleSince = new Map(); // open connections with no request in progress

const server = http.createServer((req, res) => {
  idleSince.delete(req.socket);
  if (stopping) res.setHeader("connection", "close");
  res.on("finish", () => req.socket.destroyed || idleSince.set(req.socket, Date.now()));
  res.setHeader("content-type", "text/plain; charset=utf-8");
  res.end(`hello from node worker ${id}\n`);
});
server.on("connection", (socket) => {
  idleSince.set(socket, Date.now()); // its first request is surely on the way
  socket.on("close", () => idleSince.delete(socket));
});

let watchdog = null;
server.listen({ fd: 3 }, () => {
  notify("READY=1");
  const usec = Number(process.env.WATCHDOG_USEC);
  if (usec > 0) watchdog = setInterval(() => notify("WATCHDOG=1"), usec / 2000);
});

// USR1 (arbiter forwards it to reopen log files): Node does not die of it, it
// opens its inspector on 127.0.0.1:9229 instead, and a JS listener does not
// stop that. So app.toml sets worker_usr1 = "off": this worker writes no log
// file. On Node >= 22.14 add --disable-sigusr1 to the command to keep the
// inspector closed, and USR1 may be sent again.

process.on("SIGTERM", () => {
  if (stopping) return;
  stopping = true;
  clearInterval(watchdog);
  notify("STOPPING=1");
  // Stop accepting; exit once every connection is closed. Not server.close(): it
  // also closes idle keep-alive connections at once, resetting a client that is
  // sending its next request on one.
  net.Server.prototype.close.call(server, () => {
    if (notifyConn) notifyConn.end();
    process.exit(0);
  });
  const readSeen = new Map(); // bytes read by the last sweep
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
