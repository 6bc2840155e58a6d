// An Express app for the express recipe (docs/recipes.md): `node express.js`.
// Express runs on node:http, so it listens on fd 3 and drains by the rules of
// docs/worker-protocol.md, as examples/node/server.js does: app.listen() and
// server.close() alone reset keep-alive clients on every reload.
"use strict";
const net = require("node:net");
const express = require("express");

const id = process.env.ARBITER_WORKER_ID ?? "?";
const IDLE_GRACE_MS = 1000;
const idleSince = new Map(); // open connections with no request in progress
let draining = false;

const app = express();
app.use((req, res, next) => {
  idleSince.delete(req.socket);
  if (draining) res.set("Connection", "close"); // node:http closes the connection after it
  res.on("finish", () => req.socket.destroyed || idleSince.set(req.socket, Date.now()));
  next();
});
app.get("/", (_req, res) => res.type("text").send(`hello from express worker ${id}\n`));

const server = app.listen({ fd: 3 });
server.on("connection", (socket) => {
  idleSince.set(socket, Date.now());
  socket.on("close", () => idleSince.delete(socket));
});

process.on("SIGTERM", () => {
  draining = true;
  // Stop accepting, leave idle connections open (a client may be sending on one).
  net.Server.prototype.close.call(server, () => process.exit(0));
  setInterval(() => {
    for (const [socket, since] of idleSince) {
      if (Date.now() - since >= IDLE_GRACE_MS) socket.destroy(); // idle for the grace: close
    }
  }, 100);
});
