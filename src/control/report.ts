/**
 * Turns what the master knows (the core's snapshot, counters included) into
 * the control API's {@link StatusReport}, the metrics endpoint's
 * {@link MetricsSnapshot}. Pure formatting: every decision
 * (why a worker exited, what counts as a restart) was made by the core.
 *
 * It reads the core's {@link CoreSnapshot} (a type only: nothing from the
 * core runs here), so what is reported is what the core holds.
 *
 * Times: the core measures on the monotonic clock (`performance.now()`, in
 * ms); every `now` and `startedAt` here must be on that same clock.
 *
 * @module
 */

import type { StatusReport } from "./api.ts";
import type { CoreSnapshot } from "../core/state.ts";
import { EXIT_REASONS, type MetricsSnapshot } from "./metrics.ts";

/** What the master adds to the core's view for a status report. */
export interface MasterInfo {
  pid: number;
  version: string;
  /** Absolute path of the config file, if any. */
  configFile?: string;
  /** When the master started (`performance.now()` at start). */
  startedAt: number;
  /** Now (`performance.now()`). */
  now: number;
}

/**
 * The answer to `GET /v1/status`, from the core's snapshot. Workers are
 * listed by id, then generation, then age (oldest first).
 */
export function statusReport(core: CoreSnapshot, info: MasterInfo): StatusReport {
  const workers = [...core.workers]
    .sort((a, b) => a.slot - b.slot || a.generation - b.generation || a.spawnedAt - b.spawnedAt)
    .map((w) => ({
      id: w.slot,
      pid: w.pid ?? null,
      generation: w.generation,
      state: w.state,
      age_s: seconds(info.now - w.spawnedAt),
      restarts: w.restarts,
      last_exit: w.lastExit ?? null,
      status: w.status ?? null,
    }));
  return {
    master: {
      pid: info.pid,
      version: info.version,
      uptime_s: seconds(info.now - info.startedAt),
      config_file: info.configFile ?? null,
      generation: core.generation,
      workers_desired: core.desiredWorkers,
      phase: core.phase,
      reloading: core.reloading,
      cannot_boot: core.failing.map((f) => ({
        id: f.slot,
        ended_with: f.what,
        tries: f.tries,
        last_stderr: f.lastStderr ?? [],
      })),
      rollout: core.rollout ? { ...core.rollout } : null,
    },
    workers,
  };
}

function seconds(ms: number): number {
  return Math.max(0, Math.round(ms) / 1000);
}

/** The snapshot `/metrics` renders, from the core's view (every reason listed, 0 when none). */
export function metricsSnapshot(core: CoreSnapshot, uptimeSeconds: number): MetricsSnapshot {
  const counters = core.counters;
  const workers = { booting: 0, ready: 0, stopping: 0 };
  for (const w of core.workers) workers[w.state]++;
  return {
    workers,
    workersDesired: core.desiredWorkers,
    restarts: counters.restarts,
    bootFailures: counters.bootFailures,
    timeouts: counters.timeouts,
    reloads: counters.reloads,
    exits: Object.fromEntries(EXIT_REASONS.map((r) => [r, counters.exits[r] ?? 0])),
    uptimeSeconds,
    generation: core.generation,
  };
}
