// The Node app of the benchmarks: the same file runs under arbiter (listens on
// the inherited socket at fd 3 when LISTEN_FDS is set) and under PM2 cluster
// mode (listens on $PORT; PM2's master shares it between the workers).
// TERM or INT: stop accepting, answer in-flight requests with
// `connection: close`, drop idle keep-alive connections, exit 0.
"use strict";
const http = require("node:http");

let stopping = false;
const body = "hello\n";
const server = http.createServer((_req, res) => {
  const headers = { "content-type": "text/plain", "content-length": body.length };
  if (stopping) headers.connection = "close";
  res.writeHead(200, headers);
  res.end(body);
});

if (process.env.LISTEN_FDS) server.listen({ fd: 3 });
else server.listen(Number(process.env.PORT ?? 8000), "127.0.0.1");

function stop() {
  if (stopping) return;
  stopping = true;
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 5000).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
