// USR1 is never lost: a worker still booting when it arrives gets it once it
// is ready (it would otherwise never reopen its logs).
import { ok as assert } from "node:assert/strict";
import { freePort, logEvent, startArbiter } from "./_harness.ts";
import { generationReady, PY_WORKER } from "./_workers.ts";

Deno.test("USR1 during boot reaches the worker once it is ready", async () => {
  await using master = startArbiter(
    ["-w", "1", "-b", `127.0.0.1:${freePort()}`, "--ready", "notify", "--", ...PY_WORKER],
    { env: { NOTIFY_READY: "1", BOOT_DELAY_MS: "1500" } },
  );
  const started = await master.waitForEvent("worker.spawned", /worker 0 \(pid (\d+)\)/);
  master.signal("SIGUSR1");
  await master.waitForLog(generationReady(1));
  await master.waitForLog(new RegExp(`pid ${started[1]} got USR1`), { stream: "stdout" });
  // The worker's handler was in place from its first line (see py_worker.py),
  // so had the master sent USR1 while it booted, it would have printed then.
  assert(logEvent("worker.ready", "READY=1").test(master.stderr()));
});
