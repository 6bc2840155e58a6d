/**
 * Chaos: the master never stalls and never spins. Five scenarios, each
 * PASS/FAIL with its numbers (docs/resilience.md states the rules):
 * - stalled_reader: the master's stderr is a pipe nobody reads, a chatty
 *   worker under `worker_output = "prefix"`: `/livez` still answers, lines
 *   are dropped and counted, TERM still stops it;
 * - sigstop: SIGSTOP the master for 5 s with `timeout = 2` and workers
 *   pinging: no worker is killed;
 * - exit_storm: workers exit 0 right after READY=1: a few starts, low CPU;
 * - stopping_storm: workers say STOPPING=1 right after READY=1 and linger:
 *   the process count stays bounded;
 * - socket_shutdown: a worker shuts the shared socket down: restored and
 *   serving again without an operator.
 *
 *   scripts/deno run -A scripts/chaos/stall.ts [--seconds 8]
 *
 * Loopback only; each scenario is bounded in time.
 *
 * @module
 */

import {
  type ArbiterProcess,
  type Check,
  cpuSeconds,
  freePort,
  MAIN_TS,
  numArg,
  readMaster,
  REPO_ROOT,
  report,
  sleep,
  startArbiter,
  waitFor,
  waitForHttp,
} from "./_lib.ts";

const seconds = numArg("seconds", 8);
const WORKERS = `${REPO_ROOT}/tests/workers`;
const PY_WORKER = ["python3", `${WORKERS}/py_worker.py`];
const FLAP = ["python3", `${WORKERS}/flap_worker.py`];
const CHATTY = [
  "python3",
  "-c",
  "import sys\ni=0\nwhile True:\n  sys.stderr.write('chatty line %d\\n' % i); i+=1",
];

async function withMaster<T>(master: ArbiterProcess, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } finally {
    await master[Symbol.asyncDispose]();
  }
}

async function config(dir: string, lines: string[]): Promise<string> {
  const path = `${dir}/app.toml`;
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  return path;
}

async function stalledReader(dir: string): Promise<Check[]> {
  const fifo = `${dir}/stderr.fifo`;
  await new Deno.Command("mkfifo", { args: [fifo] }).output();
  const holder = await Deno.open(fifo, { read: true, write: true }); // never read
  const metrics = `127.0.0.1:${freePort()}`;
  const file = await config(dir, [
    `command = ${JSON.stringify(CHATTY)}`,
    "workers = 2",
    `bind = "127.0.0.1:${freePort()}"`,
    'worker_output = "prefix"',
    `metrics_bind = "${metrics}"`,
  ]);
  const master = startArbiter(["--config", file], {
    cmd: ["sh", "-c", `exec "$0" "$@" 2>'${fifo}'`, Deno.execPath(), "run", "-A", MAIN_TS],
  });
  try {
    return await withMaster(master, async () => {
      await waitForHttp(`http://${metrics}/readyz`, { timeoutMs: 20_000 });
      await sleep(seconds * 500);
      const t0 = performance.now();
      const live = await fetch(`http://${metrics}/livez`).then((r) => r.status, () => 0);
      const livezMs = Math.round(performance.now() - t0);
      const text = await (await fetch(`http://${metrics}/metrics`)).text();
      const dropped = Number(/^arbiter_log_lines_dropped_total (\d+)$/m.exec(text)?.[1] ?? 0);
      master.signal("SIGTERM");
      const status = await master.waitExit(15_000).catch(() => undefined);
      return [
        { name: "stalled_reader: /livez", ok: live === 200, detail: `${live} in ${livezMs} ms` },
        { name: "stalled_reader: dropped and counted", ok: dropped > 0, detail: `${dropped}` },
        {
          name: "stalled_reader: TERM stops it",
          ok: status?.code === 0,
          detail: `exit ${status?.code ?? "none in 15 s"}`,
        },
      ];
    });
  } finally {
    holder.close();
  }
}

async function sigstop(): Promise<Check[]> {
  const master = startArbiter(
    [
      "-w",
      "3",
      "-b",
      `127.0.0.1:${freePort()}`,
      "--ready",
      "notify",
      "-t",
      "2",
      "--",
      ...PY_WORKER,
    ],
    { env: { NOTIFY_READY: "1", WATCHDOG_PING: "1" } },
  );
  return await withMaster(master, async () => {
    await master.waitForLog(/generation 1 is ready/, { timeoutMs: 20_000 });
    await waitFor(() => (master.stdout().match(/first watchdog ping/g) ?? []).length >= 3);
    const at = master.logOffset();
    Deno.kill(master.pid, "SIGSTOP");
    await sleep(5000);
    Deno.kill(master.pid, "SIGCONT");
    await master.waitForLog(/re-armed/, { after: at }).catch(() => undefined);
    await sleep(3000); // past a full watchdog period after the resume
    const killed = (master.stderr().slice(at).match(/timeout: no WATCHDOG=1/g) ?? []).length;
    return [{ name: "sigstop: no healthy worker killed", ok: killed === 0, detail: `${killed}` }];
  });
}

async function storm(kind: "exit" | "stopping"): Promise<Check[]> {
  const master = startArbiter(
    ["-w", "2", "-b", `127.0.0.1:${freePort()}`, "--ready", "notify", "--", ...FLAP],
    { env: { FLAP: kind } },
  );
  return await withMaster(master, async () => {
    await waitFor(() => master.stdout().includes("flap "));
    const cpu0 = cpuSeconds(master.pid);
    let most = 0;
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) {
      most = Math.max(most, readMaster(master.pid).descendants);
      await sleep(100);
    }
    const cpu = cpuSeconds(master.pid) - cpu0;
    const starts = (master.stdout().match(/^flap \d+$/gm) ?? []).length;
    const checks: Check[] = [
      {
        name: `${kind}_storm: master CPU`,
        ok: cpu < seconds * 0.25,
        detail: `${cpu.toFixed(2)} s in ${seconds} s`,
      },
      {
        name: `${kind}_storm: starts`,
        ok: starts <= 4 * seconds,
        detail: `${starts} in ${seconds} s (2 slots)`,
      },
    ];
    if (kind === "stopping") {
      checks.push({ name: "stopping_storm: processes at once", ok: most <= 8, detail: `${most}` });
    }
    return checks;
  });
}

async function socketShutdown(): Promise<Check[]> {
  const port = freePort();
  const master = startArbiter([
    "-w",
    "2",
    "-b",
    `127.0.0.1:${port}`,
    "--",
    "python3",
    `${WORKERS}/shutdown_worker.py`,
  ]);
  return await withMaster(master, async () => {
    await waitForHttp(`http://127.0.0.1:${port}/`, { timeoutMs: 20_000 });
    await fetch(`http://127.0.0.1:${port}/shutdown-socket`).then((r) => r.text(), () => "");
    const t0 = performance.now();
    const back = await waitForHttp(`http://127.0.0.1:${port}/`, { timeoutMs: 15_000 })
      .then(() => true, () => false);
    return [{
      name: "socket_shutdown: serving again",
      ok: back,
      detail: back ? `after ${Math.round(performance.now() - t0)} ms` : "not within 15 s",
    }];
  });
}

const dir = await Deno.makeTempDir({ prefix: "arbiter-chaos-stall-" });
const checks: Check[] = [];
try {
  checks.push(...await stalledReader(dir));
  checks.push(...await sigstop());
  checks.push(...await storm("exit"));
  checks.push(...await storm("stopping"));
  checks.push(...await socketShutdown());
} finally {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
Deno.exit(report("stall", checks, { seconds }));
