// Exits are judged once, in the core: the metrics reason and the counters.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { QUICK_GRACE_MS, SETTLE_MS } from "./core.ts";
import { type ExitingWorker, exitReason } from "./exits.ts";
import { settings, Sim } from "./_testing.ts";

Deno.test("exitReason: each reason, from the typed stop reason", () => {
  const base: ExitingWorker = { state: "ready", killSent: false, readyAt: 1 };
  const cases: [Partial<ExitingWorker>, number, string | null, string][] = [
    [{ state: "stopping", stopReason: "master-stopping" }, 0, null, "stopped"],
    [{ state: "stopping", stopReason: "scaled-down" }, 0, "SIGTERM", "stopped"],
    [
      { state: "stopping", stopReason: "replaced", killSent: true },
      137,
      "SIGKILL",
      "killed_after_grace",
    ],
    [{ state: "stopping", stopReason: "watchdog-timeout" }, 134, "SIGABRT", "timeout"],
    [{ state: "stopping", stopReason: "boot-timeout" }, 0, "SIGABRT", "boot_failure"],
    [{ state: "booting", readyAt: undefined }, 1, null, "boot_failure"],
    [{}, 0, null, "exited"],
    [{}, 2, null, "error"],
    [{}, 137, "SIGKILL", "sigkill"],
    [{}, 139, "SIGSEGV", "signal"],
  ];
  for (const [over, code, signal, reason] of cases) {
    assertEquals(exitReason({ ...base, ...over }, code, signal), reason, JSON.stringify(over));
  }
});

Deno.test("counters: restarts, boot failures, timeouts and reloads, none counted as restarts while stopping", () => {
  const sim = new Sim(settings({ workers: 2, watchdogMs: 1000 }));
  sim.advance(SETTLE_MS);
  sim.exit(100, 1); // ready worker errors: replaced
  sim.send({ type: "notify", serial: sim.serialOf.get(101)!, fields: { WATCHDOG: "1" } });
  sim.advance(1000); // watchdog fires on 101
  sim.exit(101, 134, "SIGABRT");
  const booting = sim.pidsOf((w) => w.state === "booting");
  sim.exit(booting[0], 1); // failed boot
  sim.send({
    type: "spawn-failed",
    serial: sim.core.snapshot().workers.at(-1)!.serial,
    error: "x",
  });
  sim.send({ type: "signal", signal: "SIGHUP" });
  sim.send({ type: "config-loaded", settings: settings({ workers: 2 }), context: { name: "g2" } });
  sim.send({ type: "signal", signal: "SIGQUIT" });
  sim.advance(QUICK_GRACE_MS);
  for (const pid of sim.pidsOf()) sim.exit(pid, 137, "SIGKILL");
  const c = sim.core.snapshot().counters;
  assertEquals(c.reloads, 1);
  assertEquals(c.timeouts, 1);
  assertEquals(c.bootFailures, 2, "one exit before ready, one spawn that failed");
  assertEquals(c.restarts, 4, "error, timeout, failed boot, failed spawn; not the final stop");
  assertEquals(c.exits.error, 1);
  assertEquals(c.exits.timeout, 1);
  assertEquals(c.exits.boot_failure, 1);
  assert((c.exits.killed_after_grace ?? 0) >= 1, "the quick stop's SIGKILLs");
  assertEquals(sim.core.snapshot().workers.length, 0);
});
