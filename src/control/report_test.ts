import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { MasterCore, SETTLE_MS } from "../core/core.ts";
import type { Effect, Settings } from "../core/events.ts";
import { formatPrometheus } from "./metrics.ts";
import { metricsSnapshot, statusReport } from "./report.ts";

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
      cannot_boot: [],
      rollout: null,
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

Deno.test("metricsSnapshot: counters come from the core's snapshot, every reason listed", () => {
  const { core, serials, absorb } = runningCore();
  absorb(core.handle({ type: "tick" }, 1000 + SETTLE_MS), 1000 + SETTLE_MS);
  // A ready worker dies with code 1: an "error" exit and a restart.
  absorb(core.handle({ type: "exited", serial: serials[0], code: 1, signal: null }, 3000), 3000);
  const snap = metricsSnapshot(core.snapshot(), 12.5);
  assertEquals(snap, {
    workers: { booting: 1, ready: 1, stopping: 0 },
    workersDesired: 2,
    restarts: 1,
    bootFailures: 0,
    timeouts: 0,
    reloads: 0,
    exits: {
      stopped: 0,
      killed_after_grace: 0,
      exited: 0,
      error: 1,
      signal: 0,
      sigkill: 0,
      timeout: 0,
      boot_failure: 0,
      memory: 0,
    },
    uptimeSeconds: 12.5,
    generation: 1,
  });
  // The snapshot is a copy: later exits do not change it.
  absorb(core.handle({ type: "exited", serial: serials[1], code: 1, signal: null }, 3100), 3100);
  assertEquals(snap.exits.error, 1);
  formatPrometheus(snap);
});
