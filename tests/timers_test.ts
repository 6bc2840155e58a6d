// Durations past setTimeout's range (~24.8 days) work: the master's one
// timer is clamped and re-armed, so it neither warns nor spins.
import { ok as assert } from "node:assert/strict";
import { freePort, readStat, startArbiter, waitFor } from "./_harness.ts";
import { generationReady, PY_WORKER, tempDir } from "./_workers.ts";

/** CPU time (user + system) of a process so far, in clock ticks. */
function cpuTicks(pid: number): number {
  const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
}

Deno.test("max_worker_lifetime = 30 days: no TimeoutOverflowWarning, no busy timer", async () => {
  await using dir = await tempDir();
  const config = `${dir.path}/app.toml`;
  await Deno.writeTextFile(
    config,
    [
      `bind = "127.0.0.1:${freePort()}"`,
      `command = ${JSON.stringify(PY_WORKER)}`,
      "workers = 1",
      "max_worker_lifetime = 2592000",
    ].join("\n") + "\n",
  );
  await using master = startArbiter(["--config", config]);
  await master.waitForLog(generationReady(1));
  // The 30-day deadline is armed now. A 1 ms spin would burn a whole core;
  // over one second an idle master uses a few ticks at most (100 per second).
  const before = cpuTicks(master.pid);
  const until = performance.now() + 1000;
  await waitFor(() => performance.now() >= until, { intervalMs: 50 });
  const used = cpuTicks(master.pid) - before;
  assert(used < 30, `the master used ${used} ticks of CPU in 1 s while idle`);
  assert(readStat(master.pid) !== undefined);
  assert(!master.stderr().includes("TimeoutOverflowWarning"), master.stderr());
});
