/**
 * Turns what the master knows (the core's {@link CoreSnapshot} and a few
 * counters) into the control API's {@link StatusReport}, the metrics
 * endpoint's {@link MetricsSnapshot} and its readiness. Pure functions and
 * one small counter class, so the master loop only has to call them.
 *
 * Times: the core measures on the monotonic clock (`performance.now()`, in
 * ms); every `now` and `startedAt` here must be on that same clock.
 *
 * @module
 */

import type { CoreSnapshot, WorkerRecord } from "../master/core.ts";
import type { StatusReport } from "./api.ts";
import { EXIT_REASONS, type ExitReason, type MetricsSnapshot } from "./metrics.ts";

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
export function isReady(core: CoreSnapshot, minReady = 1): boolean {
  if (core.phase !== "running") return false;
  const ready = core.workers.filter((w) => w.state === "ready").length;
  return ready >= Math.max(1, minReady);
}

/** The fields of a worker record that decide why it exited. */
export type ExitingWorker = Pick<
  WorkerRecord,
  "state" | "stopReason" | "failedBoot" | "killSent" | "readyAt"
>;

/**
 * Why a worker exited, for `arbiter_worker_exits_total{reason}`. Call it with
 * the worker's record as it was just before the core handled its `exited`
 * event (the core forgets the record while handling it).
 */
export function exitReason(w: ExitingWorker, code: number, signal: string | null): ExitReason {
  if (w.stopReason === "timeout") return "timeout";
  if (w.failedBoot) return "boot_failure";
  if (w.state === "stopping") return w.killSent ? "killed_after_grace" : "stopped";
  if (w.state === "booting" && w.readyAt === undefined) return "boot_failure";
  if (signal === "SIGKILL") return "sigkill";
  if (signal !== null) return "signal";
  return code === 0 ? "exited" : "error";
}

/**
 * The master's counters for `/metrics`. The master loop calls
 * {@link workerExited} for every `exited` event, {@link spawnFailed} for every
 * `spawn-failed` event, and {@link reloaded} for every `config-loaded` event.
 */
export class MasterCounters {
  restarts = 0;
  bootFailures = 0;
  timeouts = 0;
  reloads = 0;
  readonly exits: Record<ExitReason, number> = Object.fromEntries(
    EXIT_REASONS.map((r) => [r, 0]),
  ) as Record<ExitReason, number>;

  /**
   * Count one exited worker. `w` is its record before the core handled the
   * exit; `masterStopping` whether the master was stopping at that moment
   * (no worker is replaced then, so nothing counts as a restart).
   */
  workerExited(
    w: ExitingWorker,
    code: number,
    signal: string | null,
    masterStopping: boolean,
  ): ExitReason {
    const reason = exitReason(w, code, signal);
    this.exits[reason]++;
    if (reason === "timeout") this.timeouts++;
    if (reason === "boot_failure") this.bootFailures++;
    const replaced = reason !== "stopped" && reason !== "killed_after_grace";
    if (replaced && !masterStopping) this.restarts++;
    return reason;
  }

  /** Count a worker whose process could not even be created. */
  spawnFailed(masterStopping: boolean): void {
    this.bootFailures++;
    if (!masterStopping) this.restarts++;
  }

  /** Count a reload that started a new generation. */
  reloaded(): void {
    this.reloads++;
  }
}

/** The snapshot `/metrics` renders, from the core and the counters. */
export function metricsSnapshot(
  core: CoreSnapshot,
  counters: MasterCounters,
  uptimeSeconds: number,
): MetricsSnapshot {
  const workers = { booting: 0, ready: 0, stopping: 0 };
  for (const w of core.workers) workers[w.state]++;
  return {
    workers,
    workersDesired: core.desiredWorkers,
    restarts: counters.restarts,
    bootFailures: counters.bootFailures,
    timeouts: counters.timeouts,
    reloads: counters.reloads,
    exits: { ...counters.exits },
    uptimeSeconds,
    generation: core.generation,
  };
}
