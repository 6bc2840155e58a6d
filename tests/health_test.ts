// Worker health (docs/contract.md, "What a worker gets", "Worker lifecycle"):
// sd_notify readiness, the stream channel for Node, boot timeout, watchdog,
// reloads gated on readiness, abandoned reloads and recycling by age — real
// workers, real sockets.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  freePort,
  httpGetJson,
  isAlive,
  LoadGenerator,
  startArbiter,
  waitFor,
  WORKERS_DIR,
} from "./_harness.ts";
import { generationReady, PY_WORKER, tempDir } from "./_workers.ts";

const NODE_WORKER = ["node", `${WORKERS_DIR}/node_notify.mjs`];

function toml(port: number, values: Record<string, unknown>): string {
  const lines = [`bind = "127.0.0.1:${port}"`];
  for (const [key, value] of Object.entries(values)) {
    if (key === "env") continue;
    lines.push(`${key} = ${JSON.stringify(value)}`);
  }
  if (values.env) {
    lines.push("[env]");
    for (const [k, v] of Object.entries(values.env as Record<string, string>)) {
      lines.push(`${k} = ${JSON.stringify(v)}`);
    }
  }
  return lines.join("\n") + "\n";
}

Deno.test("ready = notify: a Python worker is ready at READY=1 over its NOTIFY_SOCKET", async () => {
  const port = freePort();
  await using master = startArbiter(
    ["-w", "2", "-b", `127.0.0.1:${port}`, "--ready", "notify", "--", ...PY_WORKER],
    { env: { NOTIFY_READY: "1" } },
  );
  await master.waitForEvent("worker.ready", /worker 0 .*READY=1/);
  await master.waitForLog(generationReady(1));
  const info = await httpGetJson<{ env: Record<string, string> }>(`http://127.0.0.1:${port}/`);
  assert(info.env.NOTIFY_SOCKET?.endsWith(".sock"), JSON.stringify(info.env));
  assertEquals(info.env.WATCHDOG_USEC, "30000000");
});

Deno.test("ready = notify: a Node worker is ready through the stream channel", async () => {
  const port = freePort();
  await using master = startArbiter([
    "-w",
    "2",
    "-b",
    `127.0.0.1:${port}`,
    "--ready",
    "notify",
    "--",
    ...NODE_WORKER,
  ]);
  await master.waitForEvent("worker.ready", "READY=1");
  await master.waitForLog(generationReady(1));
  assertEquals((await httpGetJson<{ lang: string }>(`http://127.0.0.1:${port}/`)).lang, "node");
});

const systemdNotify = (() => {
  try {
    return Deno.statSync("/usr/bin/systemd-notify").isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "ready = notify: systemd-notify from the OS works unchanged",
  ignore: !systemdNotify,
  async fn() {
    const port = freePort();
    // The shell is the worker (same pid through exec): it says READY=1, then
    // becomes the Python server.
    const script = `systemd-notify --ready --status=booted && exec python3 ${PY_WORKER[1]}`;
    await using master = startArbiter([
      "-b",
      `127.0.0.1:${port}`,
      "--ready",
      "notify",
      "--",
      "sh",
      "-c",
      script,
    ]);
    await master.waitForEvent("worker.ready", /worker 0 .*READY=1/);
  },
});

Deno.test("boot_timeout: a worker silent past it is aborted and counts as a failed boot", async () => {
  const port = freePort();
  await using master = startArbiter([
    "-w",
    "1",
    "-b",
    `127.0.0.1:${port}`,
    "--ready",
    "notify",
    "--boot-timeout",
    "1",
    "--",
    ...PY_WORKER, // never sends READY=1 without NOTIFY_READY
  ]);
  await master.waitForEvent("worker.boot_timeout", /worker 0 .* 1 s/);
  await master.waitForEvent("worker.boot_failed", /worker 0 .*SIGABRT.* 1 time/);
  assert(isAlive(master.pid));
});

Deno.test("watchdog: a worker that stops pinging is aborted, logged as timeout, replaced", async () => {
  const port = freePort();
  await using master = startArbiter(
    ["-w", "1", "-b", `127.0.0.1:${port}`, "-t", "2", "--", ...PY_WORKER],
    { env: { WATCHDOG_PING: "1" } },
  );
  await master.waitForLog(generationReady(1));
  const info = await httpGetJson<{ pid: number; env: Record<string, string> }>(
    `http://127.0.0.1:${port}/`,
  );
  assertEquals(info.env.WATCHDOG_PID, String(info.pid), "WATCHDOG_PID is the worker's pid");
  assertEquals(info.env.WATCHDOG_USEC, "2000000");
  const at = master.logOffset();
  // The watchdog is armed from the first ping on: stop pinging only after it.
  await master.waitForLog(/first watchdog ping/, { stream: "stdout" });
  await httpGetJson(`http://127.0.0.1:${port}/stop-watchdog`).catch(() => {});
  await master.waitForEvent("worker.watchdog_timeout", `worker 0 (pid ${info.pid})`, {
    after: at,
  });
  await master.waitForEvent("worker.spawned", "worker 0 ", { after: at });
  await waitFor(() => !isAlive(info.pid), { message: "the hung worker to be gone" });
});

Deno.test("a worker that never pings is never killed by the watchdog", async () => {
  const port = freePort();
  await using master = startArbiter([
    "-w",
    "1",
    "-b",
    `127.0.0.1:${port}`,
    "-t",
    "0.5",
    "--",
    ...PY_WORKER,
  ]);
  await master.waitForLog(generationReady(1));
  const [pid] = await master.waitForChildren(1);
  // Three watchdog periods of silence: it was never armed.
  const until = performance.now() + 1500;
  await waitFor(() => performance.now() > until, { intervalMs: 100 });
  assert(isAlive(pid));
  assert(!master.stderr().includes("[worker.watchdog_timeout]"));
});

Deno.test("reload gated on readiness: new workers take 2.5 s to be ready, nothing fails", async () => {
  await using dir = await tempDir();
  const port = freePort();
  const config = `${dir.path}/app.toml`;
  const base = { command: PY_WORKER, workers: 2, ready: "notify", graceful_timeout: 10 };
  await Deno.writeTextFile(config, toml(port, { ...base, env: { NOTIFY_READY: "1" } }));
  await using master = startArbiter(["--config", config]);
  await master.waitForLog(generationReady(1));
  const old = await master.waitForChildren(2);
  await Deno.writeTextFile(
    config,
    toml(port, { ...base, env: { NOTIFY_READY: "1", BOOT_DELAY_MS: "2500" } }),
  );
  const load = new LoadGenerator().start(`http://127.0.0.1:${port}/`, { concurrency: 4 });
  const at = master.logOffset();
  master.signal("SIGHUP");
  await master.waitForEvent("worker.spawned", /worker 1 .*generation 2/, { after: at });
  const started = performance.now();
  await master.waitForLog(generationReady(2), { after: at, timeoutMs: 20_000 });
  assert(performance.now() - started >= 2000, "the new generation took its time");
  // The old workers were there the whole time the new ones booted.
  const retired = master.stderr().slice(at).search(/stopped \(replaced by a new generation\)/);
  const ready = master.stderr().slice(at).search(/is ready \(READY=1\)/);
  assert(retired === -1 || retired > ready, "an old worker went before a new one was ready");
  await waitFor(() => old.every((pid) => !isAlive(pid)), { message: "old workers to drain" });
  const result = await load.stop();
  assertEquals(result.failed, 0, result.errors.join("\n"));
  assert(result.ok > 20);
});

Deno.test("a reload whose workers cannot boot is abandoned; the old ones keep serving", async () => {
  await using dir = await tempDir();
  const port = freePort();
  const config = `${dir.path}/app.toml`;
  // Readiness by READY=1, so "before ready" does not depend on how fast a
  // loaded machine starts Python (with ready = spawn it is a 1 s settle).
  const base = { command: PY_WORKER, workers: 2, ready: "notify" };
  await Deno.writeTextFile(config, toml(port, { ...base, env: { NOTIFY_READY: "1" } }));
  await using master = startArbiter(["--config", config]);
  await master.waitForLog(generationReady(1));
  const old = (await master.waitForChildren(2)).sort();
  await Deno.writeTextFile(config, toml(port, { ...base, env: { EXIT_AT_BOOT: "1" } }));
  const load = new LoadGenerator().start(`http://127.0.0.1:${port}/`, { concurrency: 2 });
  master.signal("SIGHUP");
  await master.waitForEvent("reload.abandoned", /3 workers failed to boot.*generation 1 /);
  // The new generation's last booting worker is told to go; the old ones stay.
  await waitFor(() => JSON.stringify(master.children().sort()) === JSON.stringify(old), {
    message: "only the old workers to remain",
  });
  const result = await load.stop();
  assertEquals(result.failed, 0, result.errors.join("\n"));
  // Exit code 4 (app cannot load) during a reload: abandoned at once, no halt.
  await Deno.writeTextFile(
    config,
    toml(port, { ...base, env: { EXIT_AT_BOOT: "4" } }),
  );
  const at = master.logOffset();
  master.signal("SIGHUP");
  await master.waitForEvent("reload.abandoned", /worker \d failed to boot \(exit code 4/, {
    after: at,
  });
  assert(isAlive(master.pid));
});

Deno.test("max_worker_lifetime: workers are recycled one at a time, no request fails", async () => {
  await using dir = await tempDir();
  const port = freePort();
  const config = `${dir.path}/app.toml`;
  await Deno.writeTextFile(
    config,
    toml(port, {
      command: PY_WORKER,
      workers: 2,
      ready: "notify",
      max_worker_lifetime: 1.5,
      env: { NOTIFY_READY: "1" },
    }),
  );
  await using master = startArbiter(["--config", config]);
  await master.waitForLog(generationReady(1));
  const first = await master.waitForChildren(2);
  const load = new LoadGenerator().start(`http://127.0.0.1:${port}/`, { concurrency: 2 });
  await waitFor(() => first.every((pid) => !isAlive(pid)), {
    timeoutMs: 20_000,
    message: "both first workers to be recycled",
  });
  const result = await load.stop();
  assertEquals(result.failed, 0, result.errors.join("\n"));
  // One at a time: between two workers reaching their age, the replacement
  // of the first became ready (capacity never dips by more than the one).
  const log = master.stderr();
  const events = [...log.matchAll(/reached its maximum age; starting|is ready \(READY=1\)/g)]
    .map((m) => m[0].startsWith("reached") ? "age" : "ready");
  const ages = events.flatMap((e, i) => e === "age" ? [i] : []);
  assert(ages.length >= 2, log);
  for (let k = 0; k + 1 < ages.length; k++) {
    assert(events.slice(ages[k], ages[k + 1]).includes("ready"), log);
  }
});
