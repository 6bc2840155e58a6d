import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { MasterCore, SETTLE_MS } from "../master/core.ts";
import type { Effect, Settings } from "../master/events.ts";
import { formatPrometheus } from "./metrics.ts";
import {
  type ExitingWorker,
  exitReason,
  isReady,
  MasterCounters,
  metricsSnapshot,
  statusReport,
} from "./report.ts";

const SETTINGS: Settings = {
  workers: 2,
  gracefulTimeoutMs: 30_000,
  bootTimeoutMs: 30_000,
  ready: "spawn",
  watchdogMs: 0,
  maxLifetimeMs: 0,
  maxLifetimeJitterMs: 0,
  commandName: "app",
};

/** A real core with its spawns answered, as the master loop would. */
function runningCore() {
  const core = new MasterCore(SETTINGS, {});
  let pid = 500;
  const serials: number[] = [];
  const absorb = (effects: Effect<unknown>[], now: number) => {
    for (const e of effects) {
      if (e.type === "spawn") {
        serials.push(e.serial);
        absorb(core.handle({ type: "spawned", serial: e.serial, pid: pid++ }, now), now);
      }
    }
  };
  absorb(core.start(1000), 1000);
  return { core, serials, absorb };
}

Deno.test("statusReport: the core's workers, ages and master info", () => {
  const { core, serials, absorb } = runningCore();
  absorb(core.handle({ type: "tick" }, 1000 + SETTLE_MS), 1000 + SETTLE_MS);
  absorb(
    core.handle({ type: "notify", serial: serials[1], fields: { STATUS: "busy" } }, 2500),
    2500,
  );
  // Worker 0 dies; its replacement is spawned and inherits the slot's history.
  absorb(core.handle({ type: "exited", serial: serials[0], code: 1, signal: null }, 3000), 3000);
  const report = statusReport(core.snapshot(), {
    pid: 42,
    version: "9.9.9",
    configFile: "/etc/app.toml",
    startedAt: 500,
    now: 4000.4,
  });
  assertEquals(report, {
    master: {
      pid: 42,
      version: "9.9.9",
      uptime_s: 3.5,
      config_file: "/etc/app.toml",
      generation: 1,
      workers_desired: 2,
      phase: "running",
      reloading: false,
    },
    workers: [
      {
        id: 0,
        pid: 502,
        generation: 1,
        state: "booting",
        age_s: 1,
        restarts: 1,
        last_exit: "code 1",
        status: null,
      },
      {
        id: 1,
        pid: 501,
        generation: 1,
        state: "ready",
        age_s: 3,
        restarts: 0,
        last_exit: null,
        status: "busy",
      },
    ],
  });
  assertEquals(
    statusReport(core.snapshot(), { pid: 1, version: "x", startedAt: 0, now: 0 }).master
      .config_file,
    null,
  );
});

Deno.test("isReady: running with enough ready workers; never while stopping", () => {
  const { core, absorb } = runningCore();
  assertEquals(isReady(core.snapshot()), false, "booting workers are not ready");
  absorb(core.handle({ type: "tick" }, 1000 + SETTLE_MS), 1000 + SETTLE_MS);
  assertEquals(isReady(core.snapshot()), true);
  assertEquals(isReady(core.snapshot(), 2), true);
  assertEquals(isReady(core.snapshot(), 3), false);
  assertEquals(isReady(core.snapshot(), 0), true, "at least one, whatever is asked");
  absorb(core.handle({ type: "signal", signal: "SIGTERM" }, 3000), 3000);
  assertEquals(isReady(core.snapshot()), false);
});

Deno.test("exitReason: each reason", () => {
  const base: ExitingWorker = {
    state: "ready",
    stopReason: undefined,
    failedBoot: false,
    killSent: false,
    readyAt: 1,
  };
  const cases: [Partial<ExitingWorker>, number, string | null, string][] = [
    [{ state: "stopping", stopReason: "stop" }, 0, null, "stopped"],
    [{ state: "stopping", stopReason: "scaled down" }, 0, "SIGTERM", "stopped"],
    [
      { state: "stopping", stopReason: "stop", killSent: true },
      137,
      "SIGKILL",
      "killed_after_grace",
    ],
    [{ state: "stopping", stopReason: "timeout" }, 134, "SIGABRT", "timeout"],
    [
      { state: "stopping", stopReason: "boot timeout", failedBoot: true },
      0,
      "SIGABRT",
      "boot_failure",
    ],
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

Deno.test("MasterCounters and metricsSnapshot", () => {
  const counters = new MasterCounters();
  const ready: ExitingWorker = { state: "ready", failedBoot: false, killSent: false, readyAt: 1 };
  counters.workerExited(ready, 1, null, false);
  counters.workerExited({ ...ready, state: "booting", readyAt: undefined }, 1, null, false);
  counters.workerExited(
    { ...ready, state: "stopping", stopReason: "timeout" },
    0,
    "SIGABRT",
    false,
  );
  counters.workerExited({ ...ready, state: "stopping", stopReason: "stop" }, 0, null, true);
  counters.workerExited(ready, 0, "SIGKILL", true); // the master was stopping: not replaced
  counters.spawnFailed(false);
  counters.reloaded();

  const { core, absorb } = runningCore();
  absorb(core.handle({ type: "tick" }, 1000 + SETTLE_MS), 1000 + SETTLE_MS);
  const snap = metricsSnapshot(core.snapshot(), counters, 12.5);
  assertEquals(snap, {
    workers: { booting: 0, ready: 2, stopping: 0 },
    workersDesired: 2,
    restarts: 4,
    bootFailures: 2,
    timeouts: 1,
    reloads: 1,
    exits: {
      stopped: 1,
      killed_after_grace: 0,
      exited: 0,
      error: 1,
      signal: 0,
      sigkill: 1,
      timeout: 1,
      boot_failure: 1,
    },
    uptimeSeconds: 12.5,
    generation: 1,
  });
  // The snapshot is a copy: later counts do not change it.
  counters.workerExited(ready, 1, null, false);
  assertEquals(snap.exits.error, 1);
  formatPrometheus(snap);
});
