// A real master's /metrics (docs/operations.md, "Metrics"): Prometheus's own
// linter accepts it; per-worker series are keyed by slot and generation, so a
// restarted worker continues its slot's series and arbiter_worker_info maps the
// slot to its new pid; arbiter_build_info and the master's process_* series.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { freePort, httpGetJson, httpRequest, startArbiter, waitFor } from "./_harness.ts";
import { generationReady, PY_WORKER, tempDir, which } from "./_workers.ts";

const PROMTOOL = which("promtool");

type Sample = { name: string; labels: Record<string, string>; value: number };

/** The sample lines of a text exposition (labels without escapes, as arbiter's are here). */
function samples(text: string): Sample[] {
  return text.split("\n").filter((l) => l !== "" && !l.startsWith("#")).map((line) => {
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/);
    assert(m, `sample line: ${line}`);
    const labels = Object.fromEntries(
      [...(m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)].map((l) => [l[1], l[2]]),
    );
    return { name: m[1], labels, value: Number(m[3]) };
  });
}

function only(all: Sample[], name: string, labels: Record<string, string> = {}): Sample {
  const found = all.filter((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
  assertEquals(found.length, 1, `one ${name}${JSON.stringify(labels)}: ${JSON.stringify(found)}`);
  return found[0];
}

/** `promtool check metrics` on `text`: its exit code and what it said. */
async function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  const child = new Deno.Command(PROMTOOL!, {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, output: decode(out.stdout) + decode(out.stderr) };
}

async function startWithMetrics(dir: string, extra = "", env: Record<string, string> = {}) {
  const port = freePort();
  const metricsPort = freePort();
  const config = `${dir}/app.toml`;
  await Deno.writeTextFile(
    config,
    `command = ${JSON.stringify(PY_WORKER)}\nworkers = 2\nbind = "127.0.0.1:${port}"\n` +
      `metrics_bind = "127.0.0.1:${metricsPort}"\n${extra}`,
  );
  const master = startArbiter(["--config", config], { env });
  await master.waitForLog(generationReady(1));
  const scrape = async () => (await httpRequest(`http://127.0.0.1:${metricsPort}/metrics`)).text;
  return { master, port, scrape };
}

Deno.test({
  name: PROMTOOL
    ? "promtool check metrics accepts a real master's /metrics"
    : "SKIPPED (promtool not on PATH; Debian's prometheus package has it): promtool check metrics",
  ignore: PROMTOOL === undefined,
  fn: async () => {
    await using dir = await tempDir();
    // Every optional family on: notify sockets, prefixed output, autoscaling.
    const { master, scrape } = await startWithMetrics(
      dir.path,
      'ready = "notify"\nworker_output = "prefix"\nautoscale = true\nworkers_max = 3\n',
      { NOTIFY_READY: "1" },
    );
    await using _ = master;
    const text = await scrape();
    for (
      const name of [
        "arbiter_worker_info",
        "arbiter_build_info",
        "process_open_fds",
        "arbiter_notify_dropped_total",
        "arbiter_log_lines_dropped_total",
        "arbiter_autoscale_workers_max",
        "arbiter_listen_queue_length",
        "arbiter_worker_memory_bytes",
      ]
    ) {
      assert(text.includes(`# TYPE ${name} `), `${name} in:\n${text}`);
    }
    const check = await promtoolCheck(text);
    assertEquals(check, { code: 0, output: "" }, text);
    // The check itself works: it refuses a counter named like a gauge.
    const bad = await promtoolCheck("# HELP x_seconds a\n# TYPE x_seconds counter\nx_seconds 1\n");
    assert(bad.code !== 0, bad.output);
  },
});

Deno.test("metrics: worker series follow the slot, not the pid; worker_info maps the slot to its pid", async () => {
  await using dir = await tempDir();
  const { master, port, scrape } = await startWithMetrics(dir.path);
  await using _ = master;
  let all = samples(await scrape());
  for (const s of all.filter((s) => s.name.startsWith("arbiter_worker_") && s.labels.worker)) {
    if (s.name !== "arbiter_worker_info") assert(!("pid" in s.labels), `no pid label: ${s.name}`);
  }
  const info = all.filter((s) => s.name === "arbiter_worker_info");
  assertEquals(info.map((s) => [s.labels.worker, s.labels.generation, s.value]), [
    ["0", "1", 1],
    ["1", "1", 1],
  ]);
  for (const s of info) {
    const comm = Deno.readTextFileSync(`/proc/${s.labels.pid}/cmdline`);
    assert(comm.includes("py_worker.py"), `pid ${s.labels.pid} is a worker: ${comm}`);
  }
  // Kill the worker that answers; its slot's series continue under the same labels.
  const { pid } = await httpGetJson<{ pid: number }>(`http://127.0.0.1:${port}/`);
  const slot = info.find((s) => s.labels.pid === String(pid))!.labels.worker;
  Deno.kill(pid, "SIGKILL");
  await waitFor(async () => {
    all = samples(await scrape());
    const now = all.find((s) => s.name === "arbiter_worker_info" && s.labels.worker === slot);
    return now !== undefined && now.labels.pid !== String(pid) &&
      all.some((s) => s.name === "arbiter_worker_memory_bytes" && s.labels.worker === slot);
  }, { message: `slot ${slot} to get a new worker` });
  const memory = only(all, "arbiter_worker_memory_bytes", { worker: slot, generation: "1" });
  assert(memory.value > 0, JSON.stringify(memory));
  only(all, "arbiter_worker_cpu_seconds_total", { worker: slot, generation: "1" });
});

Deno.test("metrics: arbiter_build_info and the master's process_* series", async () => {
  await using dir = await tempDir();
  const { master, scrape } = await startWithMetrics(dir.path);
  await using _ = master;
  const all = samples(await scrape());
  const build = only(all, "arbiter_build_info");
  assertEquals(build.value, 1);
  assertEquals(
    [build.labels.deno, build.labels.v8, build.labels.typescript],
    [Deno.version.deno, Deno.version.v8, Deno.version.typescript],
  );
  const denoJson = JSON.parse(Deno.readTextFileSync(new URL("../deno.json", import.meta.url)));
  assertEquals(build.labels.version, denoJson.version);
  const fds = Deno.readDirSync(`/proc/${master.pid}/fd`).toArray().length;
  const open = only(all, "process_open_fds").value;
  assert(Math.abs(open - fds) <= 3, `process_open_fds ${open}, /proc/${master.pid}/fd has ${fds}`);
  const limits = Deno.readTextFileSync(`/proc/${master.pid}/limits`);
  const max = limits.match(/^Max open files\s+(\d+)/m)?.[1];
  if (max) assertEquals(only(all, "process_max_fds").value, Number(max));
  const rss = Number(
    Deno.readTextFileSync(`/proc/${master.pid}/status`).match(/^VmRSS:\s+(\d+) kB/m)![1],
  ) * 1024;
  const resident = only(all, "process_resident_memory_bytes").value;
  assert(resident > rss / 2 && resident < rss * 2, `RSS ${resident}, /proc says ${rss}`);
  assert(only(all, "process_cpu_seconds_total").value > 0);
  const start = only(all, "process_start_time_seconds").value;
  const now = Date.now() / 1000;
  assert(start <= now + 1 && start > now - 120, `start time ${start}, now ${now}`);
});
