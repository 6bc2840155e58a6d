/**
 * A test worker in Deno: serves HTTP with `node:http` on every socket the
 * master handed over (fds 3 … 3+LISTEN_FDS-1; fd 3 alone when LISTEN_FDS is
 * unset).
 *
 * Routes:
 * - `GET /` → JSON: pid, ppid, pgid, worker_id, listen_fds, listen_pid,
 *   listen_fdnames, fd (the listening fd that accepted this request), uid,
 *   gid, cwd, umask, env, lang "deno".
 * - `GET /slow?ms=N` → prints `worker <id> pid <pid> slow start` to stdout,
 *   waits N ms, then answers `slow done`.
 * - `GET /fds` → JSON `[{fd, target}]` from `/proc/self/fd`.
 * - `GET /exit?code=N` → answers, then exits with code N.
 *
 * Signals: TERM → stop accepting, finish in-flight requests, exit 0. QUIT →
 * exit 0 at once. USR1 → prints `worker <id> pid <pid> got USR1`.
 *
 * Env knobs: `IGNORE_TERM=1` (ignore TERM), `IGNORE_QUIT=1` (ignore QUIT),
 * `EXIT_AT_BOOT=<code>` (exit at once), `BOOT_DELAY_MS=<n>` (wait before
 * serving). Prints `worker <id> pid <pid> listening` once serving.
 *
 * Run it with `deno run -A tests/workers/deno_http.ts`.
 *
 * @module
 */

import http from "node:http";

const env = Deno.env.toObject();
const workerId = env.ARBITER_WORKER_ID ?? "?";

function say(line: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
}

function intOrNull(s: string | undefined): number | null {
  if (s === undefined || s === "") return null;
  const n = Number(s);
  return Number.isInteger(n) ? n : null;
}

function readStatFields(): string[] {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  // Field 2 (comm) may hold spaces and parentheses: split after the last ")".
  return stat.slice(stat.lastIndexOf(")") + 2).trim().split(" ");
}

function umask(): string | null {
  const m = Deno.readTextFileSync("/proc/self/status").match(/^Umask:\s*(\d+)$/m);
  return m ? m[1] : null;
}

function listFds(): { fd: number; target: string }[] {
  const out: { fd: number; target: string }[] = [];
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      out.push({ fd: Number(e.name), target: Deno.readLinkSync(`/proc/self/fd/${e.name}`) });
    } catch {
      // The fd of the directory listing itself is gone by now.
    }
  }
  return out.sort((a, b) => a.fd - b.fd);
}

const exitAtBoot = intOrNull(env.EXIT_AT_BOOT);
if (exitAtBoot !== null) Deno.exit(exitAtBoot);

let stopping = false;
let exiting = false;

function handler(fd: number): http.RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://worker");
    const send = (status: number, type: string, body: string) => {
      // While draining, tell keep-alive clients to go elsewhere.
      if (stopping) res.setHeader("connection", "close");
      res.writeHead(status, { "content-type": type });
      res.end(body);
    };
    if (url.pathname === "/") {
      const stat = readStatFields();
      send(
        200,
        "application/json",
        JSON.stringify({
          pid: Deno.pid,
          ppid: Deno.ppid,
          pgid: Number(stat[2]),
          worker_id: intOrNull(env.ARBITER_WORKER_ID),
          listen_fds: intOrNull(env.LISTEN_FDS),
          listen_pid: intOrNull(env.LISTEN_PID),
          listen_fdnames: env.LISTEN_FDNAMES ?? null,
          fd,
          uid: Deno.uid(),
          gid: Deno.gid(),
          cwd: Deno.cwd(),
          umask: umask(),
          env: Deno.env.toObject(),
          lang: "deno",
        }),
      );
    } else if (url.pathname === "/slow") {
      const ms = Number(url.searchParams.get("ms") ?? "1000");
      say(`worker ${workerId} pid ${Deno.pid} slow start`);
      setTimeout(() => send(200, "text/plain", "slow done"), ms);
    } else if (url.pathname === "/fds") {
      send(200, "application/json", JSON.stringify(listFds()));
    } else if (url.pathname === "/exit") {
      const code = Number(url.searchParams.get("code") ?? "0");
      res.on("finish", () => Deno.exit(code));
      send(200, "text/plain", `exiting with ${code}`);
    } else {
      send(404, "text/plain", "not found");
    }
  };
}

const nfds = intOrNull(env.LISTEN_FDS) ?? 1;
const idle = new Set<import("node:net").Socket>();
/** Connections that have had a request: idle ones can go at once at TERM. */
const served = new WeakSet<import("node:net").Socket>();
/**
 * How long a connection that has not sent its first request yet is given at
 * TERM: it was accepted just before the stop and its request is on its way
 * (the shipped helper's drain does the same, docs/decisions.md).
 */
const FIRST_REQUEST_GRACE_MS = 1000;
const servers: http.Server[] = [];
for (let i = 0; i < nfds; i++) {
  const server = http.createServer(handler(3 + i));
  // Connections with no request in progress, including ones that never sent
  // one (closeIdleConnections misses those, and server.close would wait).
  server.on("connection", (socket) => {
    idle.add(socket);
    socket.on("close", () => idle.delete(socket));
  });
  server.on("request", (req, res) => {
    idle.delete(req.socket);
    served.add(req.socket);
    res.on("finish", () => {
      idle.add(req.socket);
      if (stopping) req.socket.end(); // drop it as soon as it goes idle
    });
  });
  servers.push(server);
}

function stop(): void {
  if (stopping) return;
  stopping = true;
  let open = servers.length;
  for (const s of servers) {
    s.close(() => {
      if (--open === 0) exitNow(0);
    });
  }
  for (const socket of idle) {
    if (served.has(socket)) socket.end();
    else setTimeout(() => idle.has(socket) && socket.end(), FIRST_REQUEST_GRACE_MS);
  }
}

function exitNow(code: number): void {
  if (exiting) return;
  exiting = true;
  Deno.exit(code);
}

Deno.addSignalListener("SIGTERM", () => {
  if (env.IGNORE_TERM !== "1") stop();
});
Deno.addSignalListener("SIGQUIT", () => {
  if (env.IGNORE_QUIT !== "1") exitNow(0);
});
Deno.addSignalListener("SIGUSR1", () => say(`worker ${workerId} pid ${Deno.pid} got USR1`));

const bootDelay = intOrNull(env.BOOT_DELAY_MS);
if (bootDelay) await new Promise((r) => setTimeout(r, bootDelay));

await Promise.all(servers.map((s, i) =>
  new Promise<void>((resolve, reject) => {
    s.once("error", reject);
    s.listen({ fd: 3 + i }, () => {
      s.off("error", reject);
      resolve();
    });
  })
));
say(`worker ${workerId} pid ${Deno.pid} listening`);
