/**
 * The core's side of saturation (docs/saturation.md: autoscaling on the accept queue and
 * `max_worker_memory`): functions over {@link CoreState} that ask for
 * samples when the {@link SaturationPolicy} says they are due, and turn the
 * executor's answers into decisions. The policy itself (saturation.ts,
 * autoscale.ts, memory.ts) decides; this file only wires it to workers.
 *
 * Invariants:
 * - Samples are asked for only while the master runs, and only when the
 *   policy has one due (so with both features off nothing is ever asked).
 * - Memory (the process group's) is read of ready workers only; a worker found over the limit for the
 *   whole window is marked `memoryDue` once, and recycled by reconcile like
 *   an age recycle (replacement first, one at a time), before any age
 *   recycle.
 * - A manual count (TTIN, TTOU, `ctl scale`) stays within the autoscaling
 *   bounds when autoscale is on, within 1…{@link MAX_WORKERS} always.
 *
 * @module
 */

import { MAX_WORKERS } from "./limits.ts";
import type { CoreState, WorkerRecord } from "./state.ts";
import { workerRef } from "./state.ts";
import type { AutoscaleDecision } from "./autoscale.ts";
import type { MemorySample } from "./memory.ts";

/** Asks the executor for the samples due at `now`, if any. */
export function requestDueSamples<C>(state: CoreState<C>, now: number): void {
  if (!state.running) return;
  const at = state.policy.nextSampleAt();
  if (at === undefined || at > now) return;
  const due = state.policy.due(now);
  if (due.queue) state.emit({ type: "sample-queue" });
  if (due.memory) {
    const workers = [...state.workers.values()]
      .filter((w) => w.state === "ready" && w.pid !== undefined)
      .map((w) => ({ serial: w.serial, pid: w.pid! }));
    state.emit({ type: "sample-memory", workers });
  }
}

/** One accept-queue sample: the new worker count, when autoscaling decides one. */
export function onQueueSampled<C>(
  state: CoreState<C>,
  queued: number,
  now: number,
): AutoscaleDecision | undefined {
  if (!state.running || state.previous !== undefined) return undefined; // not mid-rollout
  return state.policy.queueSample(now, queued, state.desired, state.readyCurrent());
}

/** One round of memory samples: marks the workers due for a memory recycle. */
export function onMemorySampled<C>(
  state: CoreState<C>,
  samples: readonly MemorySample[],
  now: number,
): void {
  const live = samples.filter((x) => state.workers.get(x.serial)?.state === "ready");
  for (const verdict of state.policy.memorySample(now, live)) {
    const w = state.workers.get(verdict.serial)!;
    if (w.memoryDue || w.superseded) continue;
    w.memoryDue = true;
    const limit = state.settingsOf(w).saturation?.memory;
    state.log(
      "warning",
      "worker.over_memory",
      "worker {worker.id} (pid {worker.pid}) and its processes have used {memory} MiB, over " +
        "max_worker_memory ({limit} MiB), for {window} s; it will be replaced",
      {
        worker: workerRef(w),
        memory: mib(verdict.memoryBytes),
        limit: mib(limit?.limitBytes ?? 0),
        window: (now - verdict.overSince) / 1000,
      },
    );
    if (verdict.young) {
      state.log(
        "warning",
        "worker.over_memory_young",
        "worker {worker.id} went over max_worker_memory soon after it started: the limit may be " +
          "below what a fresh worker needs, and its replacements will be recycled too",
        { worker: workerRef(w) },
      );
    }
  }
}

/** The worker to recycle for memory next (oldest first), if any. */
export function memoryDueWorker<C>(state: CoreState<C>): WorkerRecord | undefined {
  let due: WorkerRecord | undefined;
  for (const w of state.workers.values()) {
    if (w.memoryDue && w.state === "ready" && !w.superseded && (!due || w.serial < due.serial)) {
      due = w;
    }
  }
  return due;
}

/**
 * A manual worker count, as it will be: within the autoscaling bounds when
 * autoscale is on (autoscaling then judges from there), 1…{@link MAX_WORKERS}.
 */
export function manualCount<C>(state: CoreState<C>, count: number, now: number): number {
  return Math.min(MAX_WORKERS, state.policy.manual(count, now));
}

/** Said with a scale request's answer when autoscale is on: the bounds it keeps to. */
export function boundsNote<C>(state: CoreState<C>): string {
  const bounds = state.policy.bounds;
  return bounds ? ` (autoscale on, within ${bounds.min}..${bounds.max})` : "";
}

function mib(bytes: number): number {
  return Math.round(bytes / 1024 / 1024 * 10) / 10;
}
