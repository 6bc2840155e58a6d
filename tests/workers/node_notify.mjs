// A Node worker for arbiter (no dependencies): serves HTTP on the socket at
// fd 3 and speaks arbiter's notify protocol over the stream channel, since
// Node cannot send unix datagrams. Documented in docs/worker-protocol.md.
//
//   GET / -> {"pid", "worker_id", "lang": "node"}
//
// Notify (when ARBITER_NOTIFY_STREAM is set): READY=1 once listening;
// WATCHDOG=1 every WATCHDOG_USEC/2 µs when WATCHDOG_USEC is set and
// WATCHDOG_PID, if set, is this process (unless NO_WATCHDOG=1); STOPPING=1 on
// SIGTERM, then it drains in-flight requests and exits 0.
// Prints `worker <id> pid <pid> listening` once serving.
import http from "node:http";
import net from "node:net";

const env = process.env;
const id = env.ARBITER_WORKER_ID ?? "?";

// One connection for the life of the worker; each message is a `KEY=VALUE\n` line.
let channel = null;
function notify(message) {
  if (!env.ARBITER_NOTIFY_STREAM) return;
  if (!channel) {
    channel = net.createConnection(env.ARBITER_NOTIFY_STREAM);
    channel.on("error", (err) => console.error(`node_notify: notify channel: ${err.message}`));
    channel.unref(); // never keeps the process alive by itself
  }
  channel.write(message + "\n");
}

const server = http.createServer((_req, res) => {
  res.setHeader("Content-Type", "application/json");
  res.end(JSON.stringify({ pid: process.pid, worker_id: Number(id), lang: "node" }));
});

let watchdog;
server.listen({ fd: 3 }, () => {
  console.log(`worker ${id} pid ${process.pid} listening`);
  notify("READY=1");
  const usec = Number(env.WATCHDOG_USEC);
  const forMe = !env.WATCHDOG_PID || Number(env.WATCHDOG_PID) === process.pid;
  if (usec > 0 && forMe && env.NO_WATCHDOG !== "1") {
    watchdog = setInterval(() => notify("WATCHDOG=1"), Math.max(usec / 2000, 10));
  }
});

process.on("SIGTERM", () => {
  notify("STOPPING=1");
  clearInterval(watchdog);
  // Stop accepting; the callback runs once in-flight requests are done.
  server.close(() => {
    if (channel && !channel.destroyed) channel.end(() => process.exit(0));
    else process.exit(0);
  });
  server.closeIdleConnections();
});
