/**
 * Chaos: connection floods against the master's own servers. The
 * master runs under `ulimit -n 256` with a control socket and a metrics port;
 * against each server in turn come 400 idle connections, 400 half-sent
 * requests, and 500 slowloris connections (a header line a second, never
 * finishing). A load loop on the app port (new connection per request) runs
 * throughout. Each scenario passes when the master and its workers are alive
 * and the same, the app served every request during the flood, and once the
 * flood is closed `/livez` and `arbiter ctl status` answer again within 5 s;
 * slowloris also needs every connection closed by the server within its
 * header timeout (10 s) plus 3 s. Loopback only; every loop is bounded.
 *
 *   scripts/deno run -A scripts/chaos/flood.ts
 *
 * @module
 */

import {
  type Check,
  fdCount,
  freePort,
  liveChildren,
  MAIN_TS,
  now,
  RawLoad,
  report,
  sleep,
  startArbiter,
  waitFor,
  waitForHttp,
  WSGI_FD,
} from "./_lib.ts";

const IDLE = 400;
const HALF_SENT = 400;
const SLOWLORIS = 500;
/** The bounded server's header timeout (src/http/bounded_server.ts), plus slack. */
const SLOWLORIS_DEADLINE_MS = 10_000 + 3_000;

const appPort = freePort();
const metricsPort = freePort();
const dir = Deno.makeTempDirSync({ prefix: "arbiter-chaos-" });
const socket = `${dir}/ctl.sock`;
const config = `${dir}/app.toml`;
Deno.writeTextFileSync(
  config,
  [
    `command = ["python3", ${JSON.stringify(WSGI_FD)}]`,
    `workers = 2`,
    `bind = "127.0.0.1:${appPort}"`,
    `control_socket = "ctl.sock"`,
    `metrics_bind = "127.0.0.1:${metricsPort}"`,
  ].join("\n") + "\n",
);
await using master = startArbiter(["--config", config], {
  cmd: ["bash", "-c", 'ulimit -n 256 && exec "$@"', "arbiter", Deno.execPath(), "run", "-A"]
    .concat(["--quiet", MAIN_TS]),
});
await master.waitForLog(/generation 1 is ready/, { timeoutMs: 60_000 });
await waitForHttp(`http://127.0.0.1:${appPort}/`);
const workers = liveChildren(master.pid).sort().join(",");

type Target = "metrics" | "control";
const connect = (target: Target): Promise<Deno.Conn> =>
  target === "metrics"
    ? Deno.connect({ hostname: "127.0.0.1", port: metricsPort })
    : Deno.connect({ transport: "unix", path: socket });
const encoder = new TextEncoder();

/** Opens `count` connections and sends `first` on each; counts refusals. */
async function open(target: Target, count: number, first: string) {
  const conns: Deno.Conn[] = [];
  let refused = 0;
  for (let i = 0; i < count; i++) {
    try {
      const conn = await connect(target);
      conns.push(conn);
      if (first) await conn.write(encoder.encode(first)).catch(() => {});
    } catch {
      refused++;
    }
  }
  return { conns, refused };
}

function closeAll(conns: Deno.Conn[]): void {
  for (const conn of conns) {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

/**
 * Slowloris on `conns`: one header line a second until the server closes the
 * connection (a failed write or EOF); resolves with each one's lifetime.
 */
function trickle(conns: Deno.Conn[], startedAt: number, stopAt: number): Promise<number[]> {
  return Promise.all(conns.map(async (conn) => {
    const closed = conn.read(new Uint8Array(1024)).then(() => true, () => true);
    let gone = false;
    void closed.then(() => gone = true);
    while (!gone && now() < stopAt) {
      await Promise.race([closed, sleep(1000)]);
      if (gone) break;
      try {
        await conn.write(encoder.encode("X-Slow: a\r\n"));
      } catch {
        gone = true;
      }
    }
    const lifetime = now() - startedAt;
    try {
      conn.close();
    } catch { /* closed */ }
    await closed;
    return gone ? lifetime : Infinity;
  }));
}

async function ctlStatus(): Promise<boolean> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN_TS, "ctl", "-s", socket, "status", "--json"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  return out.code === 0 &&
    JSON.parse(new TextDecoder().decode(out.stdout)).master?.pid === master.pid;
}

let failures = 0;
for (const target of ["metrics", "control"] as const) {
  for (const kind of ["idle", "half-sent", "slowloris"] as const) {
    const name = `flood-${kind}-${target}`;
    const off = master.logOffset();
    const load = new RawLoad(appPort, 4, 60).start();
    let maxFds = fdCount(master.pid);
    const fdPoll = setInterval(() => {
      if (!master.exited) maxFds = Math.max(maxFds, fdCount(master.pid));
    }, 100);
    const count = kind === "idle" ? IDLE : kind === "half-sent" ? HALF_SENT : SLOWLORIS;
    const first = kind === "idle" ? "" : "GET /livez HTTP/1.1\r\nHost: x\r\n";
    const started = now();
    const { conns, refused } = await open(target, count, first);
    let lifetimes: number[] = [];
    if (kind === "slowloris") {
      lifetimes = await trickle(conns, started, started + SLOWLORIS_DEADLINE_MS + 5_000);
    } else {
      await sleep(2000); // the flood stands a while under load
    }
    const during = load.snapshot();
    const masterAlive = !master.exited;
    const sameWorkers = masterAlive && liveChildren(master.pid).sort().join(",") === workers;
    closeAll(conns);
    clearInterval(fdPoll);
    const closedAt = now();
    const recovered = await Promise.all([
      waitForHttp(`http://127.0.0.1:${metricsPort}/livez`, { timeoutMs: 5000 }).then(() => true)
        .catch(() => false),
      waitFor(() => ctlStatus(), { timeoutMs: 5000 }).catch(() => false),
    ]);
    const recoveryMs = Math.round(now() - closedAt);
    const after = await load.stop();
    const log = master.stderr().slice(off);
    const checks: Check[] = [
      { name: "master alive", ok: masterAlive, detail: `pid ${master.pid}` },
      { name: "workers alive and the same", ok: sameWorkers, detail: workers },
      {
        name: "app served during the flood",
        ok: during.ok > 0 && after.failures.length === 0,
        detail: `${after.ok} ok, ${after.failures.length} failed` +
          (after.failures[0] ? ` (${after.failures[0].message})` : ""),
      },
      { name: "/livez answers after", ok: recovered[0], detail: `${recoveryMs} ms` },
      { name: "ctl status answers after", ok: recovered[1] === true, detail: `${recoveryMs} ms` },
      {
        name: "nothing uncaught",
        ok: !/Uncaught|Too many open files/.test(log),
        detail: log.match(/.*(Uncaught|Too many open files).*/)?.[0] ?? "none",
      },
    ];
    if (kind === "slowloris") {
      const longest = Math.max(...lifetimes);
      checks.push({
        name: "slowloris closed by the server",
        ok: longest <= SLOWLORIS_DEADLINE_MS,
        detail: `longest ${Number.isFinite(longest) ? Math.round(longest) : "never"} ms`,
      });
    }
    failures += report(name, checks, {
      connections: count,
      refusedAtConnect: refused,
      masterMaxFds: maxFds,
      capWarningLines: log.match(/connections open; refusing new ones/g)?.length ?? 0,
    });
    if (master.exited) break;
  }
}
master.signal("SIGTERM");
await master.waitExit(30_000).catch(() => {});
Deno.removeSync(dir, { recursive: true });
Deno.exit(failures);
