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

const server = http.createServer((req, res) => {
  if (stopping) res.setHeader("connection", "close"); // keep-alive clients: go elsewhere
  res.setHeader("content-type", "text/plain; charset=utf-8");
  res.end(`hello from node worker ${id}\n`);
});
// Once draining, close each keep-alive connection as soon as it goes idle.
server.on("request", (_req, res) => {
  res.on("finish", () => stopping && setImmediate(() => server.closeIdleConnections()));
});

let watchdog = null;
server.listen({ fd: 3 }, () => {
  notify("READY=1");
  const usec = Number(process.env.WATCHDOG_USEC);
  if (usec > 0) watchdog = setInterval(() => notify("WATCHDOG=1"), usec / 2000);
});

process.on("SIGTERM", () => {
  if (stopping) return;
  stopping = true;
  clearInterval(watchdog);
  notify("STOPPING=1");
  // Stop accepting; in-flight requests finish; then leave with exit code 0.
  server.close(() => {
    if (notifyConn) notifyConn.end();
    process.exit(0);
  });
  server.closeIdleConnections();
});
