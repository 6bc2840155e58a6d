// Connection floods against the master's own servers: under
// `ulimit -n 256`, hundreds of idle or half-sent connections to the control
// socket and the metrics port leave the master, its workers and the app
// serving, and both servers answer again once the flood is gone.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  arbiterArgv,
  arbiterCommand,
  type ArbiterProcess,
  freePort,
  httpRequest,
  isAlive,
  startArbiter,
  waitForHttp,
} from "./_harness.ts";
import { generationReady, PY_WORKER, tempDir } from "./_workers.ts";

const FLOOD = 400;

interface Setup {
  master: ArbiterProcess;
  appPort: number;
  metricsPort: number;
  socket: string;
  workers: number[];
}

/** A master with 2 workers, a control socket and metrics, under `ulimit -n 256`. */
async function startLimited(dir: string): Promise<Setup> {
  const appPort = freePort();
  const metricsPort = freePort();
  const socket = `${dir}/ctl.sock`;
  const config = `${dir}/app.toml`;
  await Deno.writeTextFile(
    config,
    `command = ${JSON.stringify(PY_WORKER)}\nworkers = 2\nbind = "127.0.0.1:${appPort}"\n` +
      `control_socket = "ctl.sock"\nmetrics_bind = "127.0.0.1:${metricsPort}"\n`,
  );
  const master = startArbiter(["--config", config], {
    cmd: [
      "bash",
      "-c",
      'ulimit -n 256 && exec "$@"',
      "arbiter",
      ...arbiterArgv(),
    ],
  });
  await master.waitForLog(generationReady(1), { timeoutMs: 20_000 });
  const workers = await master.waitForChildren(2);
  return { master, appPort, metricsPort, socket, workers };
}

/** Opens `count` connections to each server and sends `send` on each (may be nothing). */
async function flood(setup: Setup, send: string): Promise<Deno.Conn[]> {
  const bytes = new TextEncoder().encode(send);
  const conns: Deno.Conn[] = [];
  const open = async (connect: () => Promise<Deno.Conn>) => {
    try {
      const conn = await connect();
      conns.push(conn);
      // The server may already have closed it (past its cap): that is the point.
      if (bytes.length > 0) await conn.write(bytes).catch(() => {});
    } catch { /* refused: also fine */ }
  };
  for (let i = 0; i < FLOOD; i++) {
    await open(() => Deno.connect({ hostname: "127.0.0.1", port: setup.metricsPort }));
    await open(() => Deno.connect({ transport: "unix", path: setup.socket }));
  }
  return conns;
}

async function assertSurvivesAndRecovers(setup: Setup, conns: Deno.Conn[]): Promise<void> {
  const { master } = setup;
  // Both servers hit their cap (the warning comes at the first refusal)...
  await master.waitForEvent("http.limited", "control socket: ");
  await master.waitForEvent("http.limited", "metrics: ");
  // ...while the master, its workers and the app go on.
  const app = await httpRequest(`http://127.0.0.1:${setup.appPort}/`);
  assertEquals(app.status, 200);
  assert(isAlive(master.pid), "the master is alive");
  for (const pid of setup.workers) assert(isAlive(pid), `worker ${pid} is alive`);
  assertEquals(master.children().filter(isAlive).sort((a, b) => a - b), setup.workers);

  for (const conn of conns) {
    try {
      conn.close();
    } catch { /* closed */ }
  }
  // Once the flood is gone both answer again at once (no timeout to wait out).
  await waitForHttp(`http://127.0.0.1:${setup.metricsPort}/livez`, { timeoutMs: 5000 });
  const ctl = await arbiterCommand(["ctl", "-s", setup.socket, "status", "--json"], {
    stdin: "null",
  }).output();
  assertEquals(ctl.code, 0, new TextDecoder().decode(ctl.stderr));
  const status = JSON.parse(new TextDecoder().decode(ctl.stdout));
  assertEquals(status.master.pid, master.pid);
  assert(!master.stderr().includes("Uncaught"), master.stderr());
  assert(!master.stderr().includes("Too many open files"), master.stderr());
  assertEquals(master.exited, false);
}

Deno.test("flood: 400 idle connections to each server under ulimit -n 256", async () => {
  await using dir = await tempDir();
  const setup = await startLimited(dir.path);
  await using _master = setup.master;
  await assertSurvivesAndRecovers(setup, await flood(setup, ""));
});

Deno.test("flood: 400 half-sent requests to each server under ulimit -n 256", async () => {
  await using dir = await tempDir();
  const setup = await startLimited(dir.path);
  await using _master = setup.master;
  const half = "GET /v1/status HTTP/1.1\r\nHost: arbiter\r\nX-Slow: ";
  await assertSurvivesAndRecovers(setup, await flood(setup, half));
});
