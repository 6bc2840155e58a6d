/**
 * Adds what the saturation sampler saw to the control API's
 * {@link StatusReport} and to the metrics endpoint's {@link MetricsSnapshot}.
 * Pure; kept apart from report.ts so the core refactor and this feature do
 * not edit the same file: the master calls `statusReport(...)` and then
 * {@link withSaturationStatus}, `metricsSnapshot(...)` and then
 * {@link withSaturationMetrics}.
 *
 * @module
 */

import type { ListenerQueue } from "../observe/queue.ts";
import type { WorkerUsage } from "../observe/sampler.ts";
import type { StatusReport } from "./api.ts";
import type { MetricsSnapshot } from "./metrics.ts";

/** What the master knows about saturation at the time of a request. */
export interface SaturationView {
  queues: readonly ListenerQueue[];
  /** Usage by pid. */
  usage: ReadonlyMap<number, WorkerUsage>;
  /** Stop reasons of stopping workers, by pid (`"max_worker_memory"`, `"scaled down"` …). */
  stopReasons?: ReadonlyMap<number, string>;
  /** The autoscaling bounds, when autoscale is on. */
  autoscale?: { min: number; max: number };
  /** `max_worker_memory` in bytes; 0 or undefined when off. */
  maxWorkerMemoryBytes?: number;
}

/** The status report with the saturation fields filled in. */
export function withSaturationStatus(report: StatusReport, view: SaturationView): StatusReport {
  return {
    master: {
      ...report.master,
      listeners: view.queues.map((q) => ({
        address: q.listener,
        queue_length: q.length,
        queue_capacity: q.capacity,
      })),
      autoscale: view.autoscale ?? null,
      max_worker_memory_bytes: view.maxWorkerMemoryBytes ? view.maxWorkerMemoryBytes : null,
    },
    workers: report.workers.map((w) => {
      const usage = w.pid === null ? undefined : view.usage.get(w.pid);
      return {
        ...w,
        memory_bytes: usage?.memoryBytes ?? null,
        memory_source: usage?.memorySource ?? null,
        rss_bytes: usage?.rssBytes ?? null,
        processes: usage?.processes ?? null,
        cpu_s: usage === undefined ? null : Math.round(usage.cpuSeconds * 100) / 100,
        cpu_percent: usage?.cpuPercent ?? null,
        stop_reason: w.pid === null ? null : view.stopReasons?.get(w.pid) ?? null,
      };
    }),
  };
}

/**
 * The metrics snapshot with the saturation families' data. `workerIds`
 * maps each live worker's pid to its slot (the `worker` label) and generation.
 */
export function withSaturationMetrics(
  snapshot: MetricsSnapshot,
  view: SaturationView,
  workerIds: ReadonlyMap<number, { slot: number; generation: number }>,
): MetricsSnapshot {
  const workerResources = [...view.usage.values()]
    .filter((u) => workerIds.has(u.pid))
    .map((u) => ({
      id: workerIds.get(u.pid)!.slot,
      generation: workerIds.get(u.pid)!.generation,
      pid: u.pid,
      memoryBytes: u.memoryBytes,
      memorySource: u.memorySource,
      rssBytes: u.rssBytes,
      processes: u.processes,
      cpuSeconds: u.cpuSeconds,
    }))
    .sort((a, b) => a.id - b.id || a.generation - b.generation || a.pid - b.pid);
  return {
    ...snapshot,
    listenQueues: view.queues,
    workerResources,
    ...(view.autoscale ? { autoscale: view.autoscale } : {}),
  };
}
