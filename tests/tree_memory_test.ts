/**
 * A worker's memory and CPU are its whole process group's, end to end: a
 * preforking Python worker (tests/workers/forking_worker.py: a parent holding
 * a preloaded "app" and children holding memory of their own) under the real
 * master, as status, `ctl status`, `/metrics` and `max_worker_memory` see it.
 */

import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import {
  freePort,
  httpGetJson,
  httpRequest,
  MAIN_TS,
  startArbiter,
  waitFor,
  WORKERS_DIR,
} from "./_harness.ts";
import { generationReady, tempDir } from "./_workers.ts";

const MiB = 1024 * 1024;
const FORKING_WORKER = ["python3", `${WORKERS_DIR}/forking_worker.py`];

interface TreeStatus {
  workers: {
    id: number;
    pid: number | null;
    state: string;
    memory_bytes: number | null;
    memory_source: string | null;
    rss_bytes: number | null;
    processes: number | null;
    cpu_s: number | null;
  }[];
}

/** A master running the forking worker; `extra` is appended to the config. */
async function startForking(dir: string, extra: string, env: Record<string, string>) {
  const port = freePort();
  const metricsPort = freePort();
  const config = `${dir}/app.toml`;
  await Deno.writeTextFile(
    config,
    `command = ${JSON.stringify(FORKING_WORKER)}\nbind = "127.0.0.1:${port}"\n` +
      `ready = "notify"\ncontrol_socket = "ctl.sock"\nmetrics_bind = "127.0.0.1:${metricsPort}"\n` +
      `graceful_timeout = 10\n${extra}`,
  );
  const master = startArbiter(["--config", config], { env });
  const socket = `${dir}/ctl.sock`;
  const status = () =>
    httpGetJson<TreeStatus>("http://localhost/v1/status", { unixSocket: socket });
  const metrics = async () => (await httpRequest(`http://127.0.0.1:${metricsPort}/metrics`)).text;
  return { master, port, socket, status, metrics };
}

/** The resident memory of one process alone, from statm (what the master used to report). */
function ownRss(pid: number): number {
  return Number(Deno.readTextFileSync(`/proc/${pid}/statm`).split(" ")[1]) * 4096;
}

Deno.test("a preforking worker: status, ctl status and /metrics report its process group's memory, processes and CPU", async () => {
  await using dir = await tempDir();
  const env = { PRELOAD_MB: "40", CHILD_MB: "30", CHILDREN: "3", BURN_MS: "200" };
  const app = await startForking(dir.path, "workers = 1\n", env);
  await using master = app.master;
  await master.waitForLog(generationReady(1), { timeoutMs: 30_000 });
  const answer = await httpRequest(`http://127.0.0.1:${app.port}/`);
  match(answer.text, /^\d+ of \d+\n$/, "a child of the worker answers");

  const w = (await app.status()).workers[0];
  assertEquals(w.processes, 4, JSON.stringify(w));
  assertEquals(w.memory_source, "pss");
  // 40 MiB shared by 4 processes + 3 × 30 MiB private (+ 4 interpreters): the tree's, not the leader's.
  assert(w.memory_bytes! >= 130 * MiB, `memory ${w.memory_bytes! / MiB} MiB`);
  assert(w.rss_bytes! >= w.memory_bytes! + 100 * MiB, "RSS counts the shared 40 MiB 4 times");
  assert(ownRss(w.pid!) < 80 * MiB, "the leader alone holds far less");
  assert(w.cpu_s! >= 0.2, `cpu ${w.cpu_s} s: the reaped child's 0.2 s is counted`);

  const text = await app.metrics();
  const line = text.split("\n").find((l) => l.startsWith("arbiter_worker_memory_bytes{"));
  assert(line?.includes('source="pss"'), text);
  assert(Number(line!.split(" ").pop()) >= 130 * MiB, line);
  match(text, /^arbiter_worker_processes\{[^}]*\} 4$/m);
  match(text, /# HELP arbiter_worker_memory_bytes .*PSS/);

  const ctl = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN_TS, "ctl", "-s", app.socket, "status"],
    stdin: "null",
  }).output();
  const table = new TextDecoder().decode(ctl.stdout);
  assertEquals(ctl.code, 0, new TextDecoder().decode(ctl.stderr));
  match(table, /MEM +PROCS +CPU/);
  match(table, new RegExp(`^0 +${w.pid} +1 +ready +\\S+ +\\d+ MiB +4 `, "m"));
});

Deno.test("max_worker_memory recycles a worker whose process group is over the limit, though the worker alone is under it", async () => {
  await using dir = await tempDir();
  const env = { PRELOAD_MB: "1", CHILD_MB: "40", CHILDREN: "3" };
  const app = await startForking(
    dir.path,
    "workers = 1\nmax_worker_memory = 100\nmax_worker_memory_window = 1\n",
    env,
  );
  await using master = app.master;
  await master.waitForLog(generationReady(1), { timeoutMs: 30_000 });
  const first = (await app.status()).workers[0];
  assert(ownRss(first.pid!) < 100 * MiB, "the worker process alone is under the limit");
  await master.waitForEvent("worker.over_memory", new RegExp(`pid ${first.pid}\\b`));
  await master.waitForEvent("worker.recycling", "max_worker_memory");
  await master.waitForEvent(
    "worker.exited",
    new RegExp(`\\(pid ${first.pid}\\) stopped \\(max_worker_memory\\)`),
  );
  const replaced = await waitFor(async () => {
    const s = await app.status();
    return s.workers.find((w) => w.state === "ready" && w.pid !== first.pid);
  }, { message: "a new worker ready in its place" });
  assert(replaced.pid !== first.pid);
});
