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

const server = http.createServer((_req, res) => {
  if (stopping) res.setHeader("connection", "close"); // keep-alive clients: go elsewhere
  res.setHeader("content-type", "text/plain; charset=utf-8");
  res.end(`hello from node worker ${id}\n`);
});
// Requests in flight per connection, to close idle ones when draining:
// closeIdleConnections() skips connections that never sent a request (spare
// connections that clients and proxies keep open), which would hold the
// drain until arbiter's SIGKILL.
const connections = new Map();
server.on("connection", (socket) => {
  connections.set(socket, 0);
  socket.on("close", () => connections.delete(socket));
});
server.on("request", (req, res) => {
  const socket = req.socket;
  connections.set(socket, (connections.get(socket) ?? 0) + 1);
  res.on("close", () => {
    if (connections.has(socket)) connections.set(socket, connections.get(socket) - 1);
    if (stopping) setImmediate(closeIdle); // a keep-alive connection just went idle
  });
});
function closeIdle() {
  for (const [socket, requests] of connections) {
    if (requests === 0 && !socket.writableEnded) socket.end();
  }
}

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
  closeIdle();
});
