/**
 * Stopping, end to end with real processes (docs/stopping.md):
 * - the process group is a worker's boundary: a worker started as
 *   `sh -c 'helper & exec server'` leaves nothing after a HUP replaced it,
 *   nor after TERM, and the next master can bind the port at once; a helper
 *   that ignores SIGTERM is SIGKILLed after the short grace;
 * - a stop under load resets no accepted connection (closed-loop clients, a
 *   new connection per request, and keep-alive), with the Python and the
 *   Deno worker, and before any worker is ready (a booting worker that
 *   already accepts is drained too);
 * - `shutdown_delay`: /readyz 503 and `ctl status` stopping at once, the
 *   workers serve on; INT during it is a quick stop;
 * - `quick_stop_signal`: what workers get on INT.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  childrenOf,
  freePort,
  httpRequest,
  isAlive,
  logEvent,
  MAIN_TS,
  REPO_ROOT,
  startArbiter,
  waitFor,
  waitForHttp,
} from "./_harness.ts";
import {
  DENO_WORKER,
  generationReady,
  PY_WORKER,
  reloadGenerations,
  startServing,
  tempDir,
} from "./_workers.ts";
import { StopLoad } from "./_stop_load.ts";

/** A worker whose start script leaves a helper behind, holding fd 3 as such helpers do. */
function withHelper(helper: string): string[] {
  return ["sh", "-c", `${helper} & exec "$@"`, "sh", ...PY_WORKER];
}

/** The helper processes (children of the worker, which the shell exec'd into). */
async function helpersOf(master: { children(): number[] }): Promise<number[]> {
  return await waitFor(() => {
    const found = master.children().flatMap((w) => childrenOf(w));
    return found.length >= master.children().length ? found : undefined;
  }, { timeoutMs: 10_000, message: "the workers' helpers" });
}

/** True once the port can be bound again (no process holds the listening socket). */
function portIsFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

Deno.test("a worker's helper goes with it: after a HUP replaced it and after TERM; the port is free", async () => {
  const port = freePort();
  await using master = await startServing(withHelper("sleep 1000"), { workers: 2, port });
  const first = await helpersOf(master);
  await reloadGenerations(master, 1);
  await waitFor(() => first.every((pid) => !isAlive(pid)) || undefined, {
    timeoutMs: 10_000,
    message: "the old workers' helpers to be gone",
  });
  const second = await helpersOf(master);
  master.signal("SIGTERM");
  assertEquals((await master.waitExit(20_000)).code, 0);
  assertEquals(second.filter(isAlive), [], "no helper outlives the master");
  assert(portIsFree(port), "the next master can bind the port");
});

Deno.test("a helper that ignores SIGTERM is SIGKILLed after the short grace", async () => {
  const port = freePort();
  await using master = await startServing(
    withHelper(`(trap '' TERM; exec sleep 1000)`),
    { workers: 1, port },
  );
  const [helper] = await helpersOf(master);
  master.signal("SIGTERM");
  await master.waitForEvent("group.leftover", "left 1 process(es)");
  assertEquals((await master.waitExit(20_000)).code, 0);
  assert(!isAlive(helper), "SIGKILLed");
  await master.waitForEvent("group.killed");
  assert(portIsFree(port));
});

/** The Deno example (the worker helper, whose drain answers keep-alive clients cleanly). */
async function startDenoExample(port: number) {
  const path = `${Deno.execPath().replace(/\/[^/]*$/, "")}:${Deno.env.get("PATH") ?? ""}`;
  const master = startArbiter(
    ["--config", `${REPO_ROOT}/examples/deno/app.toml`, "-b", `127.0.0.1:${port}`],
    { env: { PATH: path } },
  );
  await master.waitForLog(generationReady(1), { timeoutMs: 30_000 });
  await waitForHttp(`http://127.0.0.1:${port}/`);
  return master;
}

const UNDER_LOAD = [
  {
    name: "Python worker",
    connection: "close",
    start: (port: number) => startServing(PY_WORKER, { port }),
  },
  {
    name: "Deno worker",
    connection: "close",
    start: (port: number) => startServing(DENO_WORKER, { port }),
  },
  { name: "examples/deno", connection: "close", start: startDenoExample },
  { name: "examples/deno", connection: "keep-alive", start: startDenoExample },
] as const;

for (const { name, connection, start } of UNDER_LOAD) {
  Deno.test(`TERM under ${connection} load resets no accepted connection (${name})`, async () => {
    const port = freePort();
    await using master = await start(port);
    const load = new StopLoad({ port, connection, concurrency: 8 });
    await load.answered(200);
    master.signal("SIGTERM");
    assertEquals((await master.waitExit(30_000)).code, 0);
    const result = await load.done();
    assertEquals(result.lost, 0, `lost after connecting: ${result.errors.join("; ")}`);
    assert(result.answered >= 200);
    assert(logEvent("stop.draining").test(master.stderr()), master.stderr());
  });
}

Deno.test("TERM before any worker is ready resets no accepted connection: booting ones drain", async () => {
  // ready = "notify" and the Python worker never sends READY=1: it serves, but
  // stays booting for the master (boot_timeout 30 s) through the whole stop.
  const port = freePort();
  await using master = startArbiter(
    ["-w", "2", "-b", `127.0.0.1:${port}`, "--ready", "notify", "--", ...PY_WORKER],
  );
  await waitForHttp(`http://127.0.0.1:${port}/`);
  const load = new StopLoad({ port, connection: "close", concurrency: 8 });
  await load.answered(200);
  master.signal("SIGTERM");
  assertEquals((await master.waitExit(30_000)).code, 0);
  const result = await load.done();
  const stderr = master.stderr();
  assert(!generationReady(1).test(stderr), "no worker was ready");
  assert(logEvent("stop.draining").test(stderr), stderr);
  assertEquals(result.lost, 0, `lost after connecting: ${result.errors.join("; ")}`);
});

Deno.test("a listener a reload removed resets no accepted connection while it retires", async () => {
  await using dir = await tempDir();
  const [kept, removed] = [freePort(), freePort()];
  const path = `${dir.path}/app.toml`;
  const write = (ports: number[]) =>
    Deno.writeTextFile(
      path,
      `command = ${JSON.stringify(PY_WORKER)}\nworkers = 2\n` +
        `bind = ${JSON.stringify(ports.map((p) => `127.0.0.1:${p}`))}\n`,
    );
  await write([kept, removed]);
  await using master = startArbiter(["--config", path]);
  await master.waitForLog(generationReady(1), { timeoutMs: 20_000 });
  await waitForHttp(`http://127.0.0.1:${removed}/`);
  const load = new StopLoad({ port: removed, connection: "close", concurrency: 8 });
  await load.answered(200);
  await write([kept]);
  master.signal("SIGHUP");
  await master.waitForEvent("master.listener_closed", undefined, { timeoutMs: 20_000 });
  const result = await load.done();
  assertEquals(result.lost, 0, `lost after connecting: ${result.errors.join("; ")}`);
  assertEquals((await httpRequest(`http://127.0.0.1:${kept}/`)).status, 200);
  master.signal("SIGTERM");
  assertEquals((await master.waitExit(20_000)).code, 0);
});

Deno.test("shutdown_delay: /readyz 503 and ctl status stopping at once, serving on; INT ends it quickly", async () => {
  await using dir = await tempDir();
  const port = freePort();
  const metrics = freePort();
  const socket = `${dir.path}/ctl.sock`;
  await using master = await startServing(PY_WORKER, {
    workers: 2,
    port,
    args: ["--config", await config(dir.path, { shutdown_delay: 60, metrics, socket })],
  });
  assertEquals((await httpRequest(`http://127.0.0.1:${metrics}/readyz`)).status, 200);
  master.signal("SIGTERM");
  await master.waitForEvent("stop.started", "after shutdown_delay (60 s)");
  assertEquals((await httpRequest(`http://127.0.0.1:${metrics}/readyz`)).status, 503);
  const status = await ctl(socket, "status", "--json");
  assertEquals(JSON.parse(status).master.phase, "stopping");
  for (let i = 0; i < 5; i++) {
    assertEquals((await httpRequest(`http://127.0.0.1:${port}/`)).status, 200, "still serving");
  }
  const start = performance.now();
  master.signal("SIGINT");
  assertEquals((await master.waitExit(20_000)).code, 0);
  assert(performance.now() - start < 10_000, "a quick stop does not wait out the delay");
  assert(logEvent("stop.quickened").test(master.stderr()), master.stderr());
});

Deno.test("quick_stop_signal: workers get INT by default and QUIT when configured", async () => {
  for (const signal of ["INT", "QUIT"] as const) {
    await using dir = await tempDir();
    const port = freePort();
    const args = signal === "INT" ? [] : ["--config", await config(dir.path, { quick: signal })];
    await using master = await startServing(
      ["python3", "-c", TRAP_WORKER],
      { workers: 1, port, args },
    );
    master.signal("SIGINT");
    assertEquals((await master.waitExit(20_000)).code, 0);
    assert(master.stdout().includes(`worker got SIG${signal}`), master.stdout());
  }
});

/** A worker that says which signal stopped it (serving fd 3 so the harness sees it answer). */
const TRAP_WORKER = `
import signal, socket, sys, os, threading
def bye(n, _): print("worker got " + signal.Signals(n).name, flush=True); os._exit(0)
for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM): signal.signal(s, bye)
l = socket.socket(fileno=3)
def serve():
    while True:
        c, _ = l.accept(); c.recv(4096)
        c.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok"); c.close()
threading.Thread(target=serve, daemon=True).start()
while True: signal.pause()
`;

async function config(
  dir: string,
  o: { shutdown_delay?: number; metrics?: number; socket?: string; quick?: string },
): Promise<string> {
  const lines = [];
  if (o.shutdown_delay !== undefined) lines.push(`shutdown_delay = ${o.shutdown_delay}`);
  if (o.metrics !== undefined) lines.push(`metrics_bind = "127.0.0.1:${o.metrics}"`);
  if (o.socket !== undefined) lines.push(`control_socket = "${o.socket}"`);
  if (o.quick !== undefined) lines.push(`quick_stop_signal = "${o.quick}"`);
  lines.push(`command = ["true"]`);
  const path = `${dir}/app.toml`;
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  return path;
}

async function ctl(socket: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN_TS, "ctl", "--socket", socket, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  return new TextDecoder().decode(out.stdout);
}
