// Saturation (docs/saturation.md) end to end:
// `arbiter ctl top` against a real master, piped (plain lines).
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  arbiterCommand,
  freePort,
  httpGetJson,
  httpRequest,
  LoadGenerator,
  startArbiter,
  waitFor,
  WORKERS_DIR,
} from "./_harness.ts";
import { generationReady, PY_WORKER, tempDir } from "./_workers.ts";

Deno.test("arbiter ctl top -n 2, piped: one master line and one line per worker per refresh", async () => {
  await using dir = await tempDir();
  const socket = `${dir.path}/ctl.sock`;
  const config = `${dir.path}/app.toml`;
  await Deno.writeTextFile(
    config,
    `command = ${JSON.stringify(PY_WORKER)}\nworkers = 2\nbind = "127.0.0.1:${freePort()}"\n` +
      `control_socket = "ctl.sock"\n`,
  );
  await using master = startArbiter(["--config", config]);
  await master.waitForLog(generationReady(1));
  const out = await arbiterCommand(["ctl", "-s", socket, "top", "-n", "2", "--interval", "0.2"], {
    stdin: "null",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const lines = stdout.trimEnd().split("\n");
  assertEquals(lines.filter((l) => l.includes(` master pid=${master.pid} `)).length, 2, stdout);
  assertEquals(lines.filter((l) => / worker id=[01] pid=\d+ /.test(l)).length, 4, stdout);
  assert(!stdout.includes("\x1b"), "no escape sequences when piped");
});

// ---- saturation integrated: the sampler's view in status and metrics, and the
// master acting on it ----

const SYNC_WORKER = ["python3", `${WORKERS_DIR}/sync_worker.py`];

interface SatStatus {
  master: {
    workers_desired: number;
    listeners: { address: string; queue_length: number; queue_capacity: number }[];
    autoscale: { min: number; max: number } | null;
    max_worker_memory_bytes: number | null;
  };
  workers: {
    id: number;
    pid: number | null;
    state: string;
    rss_bytes: number | null;
    cpu_s: number | null;
    stop_reason: string | null;
  }[];
}

/** A master on a sync worker, with control socket and metrics; `extra` is appended to the config. */
async function startSync(dir: string, extra: string, env: Record<string, string> = {}) {
  const port = freePort();
  const metricsPort = freePort();
  const config = `${dir}/app.toml`;
  await Deno.writeTextFile(
    config,
    `command = ${JSON.stringify(SYNC_WORKER)}\nbind = "127.0.0.1:${port}"\nbacklog = 64\n` +
      `control_socket = "ctl.sock"\nmetrics_bind = "127.0.0.1:${metricsPort}"\n` +
      `graceful_timeout = 10\n${extra}`,
  );
  const master = startArbiter(["--config", config], { env });
  const socket = `${dir}/ctl.sock`;
  const status = () => httpGetJson<SatStatus>("http://localhost/v1/status", { unixSocket: socket });
  const metrics = async () => (await httpRequest(`http://127.0.0.1:${metricsPort}/metrics`)).text;
  return { master, port, socket, status, metrics };
}

/** The value of one sample line of a Prometheus text (first match), or undefined. */
function metric(text: string, name: string, labels = ""): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(name + (labels ? `{${labels}` : "")) && !line.startsWith("#")) {
      const [head, value] = [
        line.slice(0, line.lastIndexOf(" ")),
        line.slice(line.lastIndexOf(" ")),
      ];
      if (labels || !head.includes("{") || head.startsWith(name + "{")) return Number(value);
    }
  }
  return undefined;
}

Deno.test("a real accept queue: status (JSON and ctl) and /metrics show its length and capacity, and each worker's rss/cpu", async () => {
  await using dir = await tempDir();
  const sat = await startSync(dir.path, "workers = 1\n", { SERVICE_MS: "2500" });
  await using master = sat.master;
  await master.waitForLog(generationReady(1));
  // 4 clients on 1 sync worker busy for 2.5 s each: 3 of them wait in the kernel's queue.
  const clients = await Promise.all(
    [0, 1, 2, 3].map(async () => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: sat.port });
      await c.write(new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
      return c;
    }),
  );
  try {
    const status = await waitFor(async () => {
      const s = await sat.status();
      return s.master.listeners[0]?.queue_length > 0 && s;
    }, { message: "a non-empty accept queue in the status" });
    assertEquals(status.master.listeners.length, 1);
    assertEquals(status.master.listeners[0].queue_capacity, 64);
    const w = status.workers[0];
    assert(w.rss_bytes !== null && w.rss_bytes > 1024 * 1024, JSON.stringify(w));
    assert(w.cpu_s !== null && w.cpu_s >= 0, JSON.stringify(w));
    const text = await sat.metrics();
    assert((metric(text, "arbiter_listen_queue_length", "listener=") ?? 0) > 0, text);
    assertEquals(metric(text, "arbiter_listen_queue_capacity", "listener="), 64);
    assert((metric(text, "arbiter_worker_resident_memory_bytes", "") ?? 0) > 0, text);
    const ctl = await arbiterCommand(["ctl", "-s", sat.socket, "status", "--json"], {
      stdin: "null",
    }).output();
    assertEquals(ctl.code, 0, new TextDecoder().decode(ctl.stderr));
    const json: SatStatus = JSON.parse(new TextDecoder().decode(ctl.stdout));
    assert(json.master.listeners[0].queue_length > 0, JSON.stringify(json.master));
    assertEquals(json.master.autoscale, null);
  } finally {
    for (const c of clients) c.close();
  }
});

Deno.test("max_worker_memory: the worker over the limit is replaced (new one first), reason in log, status and metrics, 0 failed requests", async () => {
  await using dir = await tempDir();
  const sat = await startSync(
    dir.path,
    "workers = 2\nmax_worker_memory = 48\nmax_worker_memory_window = 1\n",
    {
      SERVICE_MS: "5",
      ALLOC_ONCE_FILE: `${dir.path}/allocated`,
      ALLOC_MB: "96",
      TERM_DELAY_MS: "1500",
    },
  );
  await using master = sat.master;
  await master.waitForLog(generationReady(1));
  const hog = Number(
    (await master.waitForLog(/pid (\d+) allocated 96 MiB/, { stream: "stdout" }))[1],
  );
  const load = new LoadGenerator().start(`http://127.0.0.1:${sat.port}/`, {
    concurrency: 2,
    connection: "close",
  });
  try {
    await master.waitForEvent("worker.recycling", "max_worker_memory");
    const stopping = await waitFor(async () => {
      const s = await sat.status();
      return s.workers.find((w) => w.pid === hog && w.state === "stopping");
    }, { message: "the worker over the limit stopping" });
    assertEquals(stopping.stop_reason, "max_worker_memory");
    const status = await sat.status();
    assertEquals(status.master.max_worker_memory_bytes, 48 * 1024 * 1024);
    assertEquals(status.workers.filter((w) => w.state === "ready").length, 2, "new one first");
    await master.waitForEvent(
      "worker.exited",
      new RegExp(`\\(pid ${hog}\\) stopped \\(max_worker_memory\\)`),
    );
    const text = await waitFor(async () => {
      const t = await sat.metrics();
      return metric(t, "arbiter_worker_exits_total", 'reason="memory"') === 1 && t;
    }, { message: "exits_total{reason=memory} = 1" });
    assertEquals(metric(text, "arbiter_worker_restarts_total"), 0);
  } finally {
    const result = await load.stop();
    assertEquals(result.failed, 0, result.errors.join("\n"));
    assert(result.ok > 0);
  }
});

Deno.test("autoscale: up under a sustained queue (never above workers_max), down after the quiet period, 0 failed requests", async () => {
  await using dir = await tempDir();
  const sat = await startSync(
    dir.path,
    "workers = 1\nautoscale = true\nworkers_min = 1\nworkers_max = 3\n" +
      "autoscale_interval = 0.2\nautoscale_quiet_period = 1.5\n",
    { SERVICE_MS: "40" },
  );
  await using master = sat.master;
  await master.waitForLog(generationReady(1));
  const load = new LoadGenerator().start(`http://127.0.0.1:${sat.port}/`, {
    concurrency: 8,
    connection: "close",
  });
  let result;
  try {
    const up = await waitFor(async () => {
      const s = await sat.status();
      assert(s.master.workers_desired <= 3, `above workers_max: ${s.master.workers_desired}`);
      return s.workers.filter((w) => w.state === "ready").length === 3 && s;
    }, { message: "3 ready workers under load" });
    assertEquals(up.master.autoscale, { min: 1, max: 3 });
    await master.waitForEvent("scale.changed", "autoscale: accept queue non-empty");
  } finally {
    result = await load.stop();
  }
  assertEquals(result.failed, 0, result.errors.join("\n"));
  await waitFor(async () => (await sat.status()).master.workers_desired === 1, {
    message: "back to workers_min after the quiet period",
  });
  await master.waitForChildren(1);
  const changes = [...master.stderr().matchAll(/\[scale\.changed\] .*workers (\d+) -> (\d+)/g)]
    .map((m) => Number(m[2]));
  assert(changes.every((n) => n >= 1 && n <= 3), changes.join(","));
  assertEquals(metric(await sat.metrics(), "arbiter_autoscale_workers_max"), 3);
});
