/**
 * Turns what the master knows (the core's snapshot, counters included) into
 * the control API's {@link StatusReport}, the metrics endpoint's
 * {@link MetricsSnapshot} and its readiness. Pure formatting: every decision
 * (why a worker exited, what counts as a restart) was made by the core.
 *
 * The {@link MasterView} type says what is read; the core's snapshot has this
 * shape, so this module needs nothing from the master.
 *
 * Times: the core measures on the monotonic clock (`performance.now()`, in
 * ms); every `now` and `startedAt` here must be on that same clock.
 *
 * @module
 */

import type { StatusReport } from "./api.ts";
import { EXIT_REASONS, type ExitReason, type MetricsSnapshot } from "./metrics.ts";

/** What the reports read of the master's state (the core's snapshot has this shape). */
export interface MasterView {
  generation: number;
  desiredWorkers: number;
  phase: "running" | "stopping";
  reloading: boolean;
  workers: ReadonlyArray<{
    slot: number;
    pid?: number;
    generation: number;
    state: "booting" | "ready" | "stopping";
    spawnedAt: number;
    restarts: number;
    lastExit?: string;
    status?: string;
  }>;
  counters: {
    restarts: number;
    bootFailures: number;
    timeouts: number;
    reloads: number;
    exits: Partial<Record<ExitReason, number>>;
  };
  failing: ReadonlyArray<{ slot: number; what: string; tries: number; lastStderr?: string[] }>;
}

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
export function statusReport(core: MasterView, info: MasterInfo): StatusReport {
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
    },
    workers,
  };
}

function seconds(ms: number): number {
  return Math.max(0, Math.round(ms) / 1000);
}

/**
 * Whether `/readyz` should answer 200: the master is running (not stopping)
 * and at least `minReady` workers are ready. One ready worker is enough to
 * serve (the shared socket queues connections for whichever worker accepts),
 * so the default is 1: a pod stays in its Service while one worker crashes
 * or a reload rolls, and leaves it as soon as a stop begins.
 */
export function isReady(core: MasterView, minReady = 1): boolean {
  if (core.phase !== "running") return false;
  const ready = core.workers.filter((w) => w.state === "ready").length;
  return ready >= Math.max(1, minReady);
}

/** The snapshot `/metrics` renders, from the core's view (every reason listed, 0 when none). */
export function metricsSnapshot(core: MasterView, uptimeSeconds: number): MetricsSnapshot {
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
