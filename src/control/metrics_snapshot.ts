/**
 * What `/metrics` renders: {@link MetricsSnapshot}, the master's state and
 * counters at one moment, assembled by the executor on each scrape
 * (src/master/operations.ts) and turned into text by
 * {@link formatPrometheus} (prometheus.ts). Types only.
 *
 * @module
 */

import type { ExitReason } from "../core/exit_reasons.ts";

/** What `/metrics` reports: the master's state and counters at one moment. */
export interface MetricsSnapshot {
  /** Live workers by state. */
  workers: { booting: number; ready: number; stopping: number };
  /** The number of workers the master aims to run. */
  workersDesired: number;
  /** Workers replaced after dying unasked or failing to boot (all slots). */
  restarts: number;
  /** Workers that ended before becoming ready, plus spawns that failed. */
  bootFailures: number;
  /** Workers stopped by the watchdog. */
  timeouts: number;
  /** Reloads that started a new generation. */
  reloads: number;
  /** Exited workers by reason; reasons not given count 0. */
  exits: Partial<Record<ExitReason, number>>;
  uptimeSeconds: number;
  /** The current generation. */
  generation: number;
  /**
   * Notify messages dropped because they did not come from the worker the
   * socket belongs to (docs/contract.md, "Security"); absent when the master has no notify hub.
   */
  notifyDropped?: number;
  /** The master's own resilience counters (docs/resilience.md); each absent when not known. */
  resilience?: ResilienceCounters;
  /** Saturation: each listener's accept queue, when it could be read. */
  listenQueues?: readonly { listener: string; length: number; capacity: number }[];
  /** Saturation: each live worker's resident memory and CPU time. */
  workerResources?: readonly WorkerResources[];
  /** Saturation: the autoscaling bounds, when autoscale is on. */
  autoscale?: { min: number; max: number };
  /** Every live worker that has a pid: `arbiter_worker_info`, which maps a slot to its pid. */
  workerInfo?: readonly WorkerInfo[];
  /** What this master is built from: `arbiter_build_info`. */
  build?: BuildInfo;
  /** The master process itself, from /proc/self (the standard `process_*` series). */
  process?: ProcessMetrics;
}

/** What `/metrics` says about stalls, lost output and slots that cannot boot. */
export interface ResilienceCounters {
  /** Output lines the master dropped because its output was not read (or failed). */
  logLinesDropped?: number;
  /** Times the master found it had not run (paused, throttled) and re-armed deadlines. */
  stalls: number;
  /** Slots whose worker failed to boot the same way on each of the last tries. */
  cannotBoot: number;
  /** Listeners found not listening (a worker shut one down) and restored. */
  listenersRestored?: number;
}

/**
 * One worker's resources. Its series are labelled by slot (`worker`) and
 * generation, never by pid, so a restarted worker continues its slot's series.
 */
export interface WorkerResources {
  /** The slot. */
  id: number;
  generation: number;
  /** Not a label: `arbiter_worker_info` maps slot and generation to it. */
  pid: number;
  /** The process group's PSS, or RSS where PSS cannot be read (`memorySource`). */
  memoryBytes: number;
  memorySource: "pss" | "rss";
  /** The process group's RSS sum. */
  rssBytes: number;
  /** Processes in the group. */
  processes: number;
  /** The group's CPU seconds, reaped children included. */
  cpuSeconds: number;
}

/** A live worker's identity: slot, pid and generation. */
export interface WorkerInfo {
  id: number;
  pid: number;
  generation: number;
}

/** The versions this master runs: arbiter's, the runtime's, and the commit when stamped. */
export interface BuildInfo {
  version: string;
  deno: string;
  v8: string;
  typescript: string;
  /** The git commit stamped at compile time; undefined under `deno run`. */
  commit?: string;
}

/** The master process's own resources (the Prometheus client libraries' `process_*`). */
export interface ProcessMetrics {
  /** Resident set size, bytes. */
  residentBytes: number;
  /** Virtual memory size, bytes. */
  virtualBytes: number;
  /** User and system CPU time, seconds. */
  cpuSeconds: number;
  /** Open file descriptors. */
  openFds: number;
  /** The soft limit on open file descriptors (RLIMIT_NOFILE); undefined when unlimited. */
  maxFds?: number;
  /** When the process started, seconds since the Unix epoch. */
  startTimeSeconds: number;
}
