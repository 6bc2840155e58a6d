// The master never stalls or spins: a paused master kills no healthy worker,
// restart storms are backed off, and a boot failure after serving halts nothing.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  freePort,
  httpGetJson,
  httpRequest,
  runCtl,
  startArbiter,
  waitFor,
  WORKERS_DIR,
} from "./_harness.ts";
import { generationReady, PY_WORKER, startServing, tempDir } from "./_workers.ts";

const FLAP_WORKER = ["python3", `${WORKERS_DIR}/flap_worker.py`];

/** Stops the master (not its workers) for `ms`, as a VM pause or CPU throttling would. */
async function pauseMaster(pid: number, ms: number): Promise<void> {
  Deno.kill(pid, "SIGSTOP");
  // The pause itself is the condition under test, not a wait for something.
  await new Promise((resolve) => setTimeout(resolve, ms));
  Deno.kill(pid, "SIGCONT");
}

/** The `status` (STATUS=) of each worker, as the master's control socket reports them. */
async function workerStatuses(socket: string): Promise<(string | null)[]> {
  const out = await runCtl(["-s", socket, "status", "--json"]);
  if (out.code !== 0) return [];
  const report: { workers: { status: string | null }[] } = JSON.parse(out.stdout);
  return report.workers.map((w) => w.status);
}

Deno.test("a 5 s SIGSTOP of the master kills no worker that kept pinging; a hung one is still caught", async () => {
  const port = freePort();
  await using dir = await tempDir();
  const socket = `${dir.path}/ctl.sock`;
  await Deno.writeTextFile(`${dir.path}/app.toml`, `control_socket = "${socket}"\n`);
  await using master = await startServing(PY_WORKER, {
    port,
    workers: 3,
    args: ["--config", `${dir.path}/app.toml`, "--ready", "notify", "-t", "2"],
    env: { NOTIFY_READY: "1", WATCHDOG_PING: "1", PING_STATUS: "pinging" },
  });
  // The pause must find every watchdog armed: the master has read a ping of
  // each (a worker's own "first watchdog ping" says only that it sent one).
  await waitFor(async () => {
    const statuses = await workerStatuses(socket);
    return statuses.length === 3 && statuses.every((s) => s === "pinging");
  }, { timeoutMs: 20_000, message: "a ping of each worker read by the master" });
  const before = master.children().sort();
  const at = master.logOffset();
  await pauseMaster(master.pid, 5000);
  await master.waitForLog(/the master did not run for \d/, { after: at });
  // One full watchdog period after the resume: every pinging worker is still the same.
  await master.waitForLog(/re-armed/, { after: at });
  const probe = master.logOffset();
  await httpRequest(`http://127.0.0.1:${port}/stop-watchdog`);
  const [, hung] = await master.waitForLog(/\(pid (\d+)\) timeout: no WATCHDOG=1/, {
    after: probe,
  });
  const timeouts = master.stderr().slice(at).match(/timeout: no WATCHDOG=1/g) ?? [];
  assertEquals(timeouts.length, 1, master.stderr().slice(at));
  const healthy = before.filter((p) => p !== Number(hung));
  assertEquals(healthy.length, 2);
  assert(healthy.every((p) => master.children().includes(p)), "the pinging workers survived");
});

Deno.test("boot_timeout = 2 and READY=1 queued during a 5 s pause: no worker is aborted", async () => {
  await using master = startArbiter(
    [
      "-w",
      "2",
      "-b",
      `127.0.0.1:${freePort()}`,
      "--ready",
      "notify",
      "--boot-timeout",
      "2",
      "--",
      ...PY_WORKER,
    ],
    { env: { NOTIFY_READY: "1", BOOT_DELAY_MS: "1000" } },
  );
  // Pause once both are started and before either can be ready (it waits 1 s first).
  await master.waitForLog(/worker 1 \(pid \d+\) started/);
  const at = master.logOffset();
  await pauseMaster(master.pid, 5000);
  await master.waitForLog(generationReady(1), { after: at });
  assert(!/did not become ready/.test(master.stderr()), master.stderr());
});

Deno.test("exit 0 right after READY=1 is backed off: a handful of starts, not a tight loop", async () => {
  await using master = startArbiter(
    ["-w", "2", "-b", `127.0.0.1:${freePort()}`, "--ready", "notify", "--", ...FLAP_WORKER],
    { env: { FLAP: "exit" } },
  );
  await master.waitForLog(/its replacement waits 0.4 s/);
  const at = master.stdout().length;
  const start = performance.now();
  await master.waitForLog(/its replacement waits 1.6 s/);
  const seconds = (performance.now() - start) / 1000;
  const starts = master.stdout().slice(at).match(/^flap \d+$/gm)?.length ?? 0;
  // Two slots, delays 0.4 → 0.8 → 1.6 s: a few starts over more than a second.
  assert(seconds >= 1, `${seconds} s`);
  assert(starts <= 8, `${starts} starts in ${seconds} s`);
});

Deno.test("STOPPING=1 right after READY=1 with lingering workers: children stay bounded", async () => {
  await using master = startArbiter(
    ["-w", "2", "-b", `127.0.0.1:${freePort()}`, "--ready", "notify", "--", ...FLAP_WORKER],
    { env: { FLAP: "stopping" } },
  );
  // Each slot: one stopping worker, then a backed-off second, then the cap (2) holds.
  await master.waitForLog(/worker 0 said STOPPING=1 .* 2 time\(s\) in a row/);
  await master.waitForLog(/worker 1 said STOPPING=1 .* 2 time\(s\) in a row/);
  const settled = master.stdout().length;
  // Give a storm the chance it had before (about ten starts a second per slot).
  await master.waitForLog(/arbiter ctl status|NEVER/, { timeoutMs: 2000 }).catch(() => {});
  const later = master.stdout().slice(settled).match(/^flap \d+$/gm)?.length ?? 0;
  assertEquals(later, 0, "no new starts while both slots hold two stopping workers");
  assert(master.children().length <= 6, `${master.children().length} children`);
});

Deno.test("availability over halt: the program goes missing, a worker dies, the other two keep serving", async () => {
  await using dir = await tempDir();
  const program = `${dir.path}/app.py`;
  await Deno.copyFile(PY_WORKER[1], program);
  await Deno.chmod(program, 0o755);
  const port = freePort();
  await using master = await startServing([program], { port, workers: 3 });
  const victim = await httpGetJson<{ pid: number; worker_id: number }>(
    `http://127.0.0.1:${port}/`,
  );
  await Deno.rename(program, `${program}.away`); // a deploy replaces it
  const at = master.logOffset();
  Deno.kill(victim.pid, "SIGKILL");
  await master.waitForLog(/not halting: other workers have served/, { after: at });
  await master.waitForLog(new RegExp(`worker ${victim.worker_id} cannot boot`), { after: at });
  for (let i = 0; i < 6; i++) {
    assertEquals((await httpRequest(`http://127.0.0.1:${port}/`)).status, 200);
  }
  await Deno.rename(`${program}.away`, program); // the deploy finishes
  const back = master.logOffset();
  await master.waitForLog(new RegExp(`worker ${victim.worker_id} \\(pid \\d+\\) is ready`), {
    after: back,
    timeoutMs: 20_000,
  });
  assertEquals(master.children().length, 3);
  assert(!/\[master.halting\]/.test(master.stderr()), master.stderr());
});

Deno.test("a scale survives an upgrade: TTIN to 3, then USR2, and the new master runs 3", async () => {
  const port = freePort();
  await using master = await startServing(PY_WORKER, { port, workers: 2 });
  master.signal("SIGTTIN");
  await master.waitForLog(/SIGTTIN: workers 2 -> 3/);
  await master.waitForLog(/worker 2 \(pid \d+\) is ready/);
  const at = master.logOffset();
  master.signal("SIGUSR2");
  await master.waitForLog(/re-executed in place \(pid \d+\); took over 3 worker\(s\)/, {
    after: at,
  });
  const ready = await master.waitForLog(/generation 2 is ready: (\d+) worker/, {
    after: at,
    timeoutMs: 20_000,
  });
  assertEquals(ready[1], "3");
  assert(!/SIGTTIN|workers 3 -> 2/.test(master.stderr().slice(at)));
});
