/**
 * Back-off for workers that end soon after they became ready — the restart
 * paths that boot back-off (exits.ts) does not see: a worker that exits
 * (with any code) or says STOPPING=1 within {@link STABLE_MS} of its
 * readiness counts toward its slot's failures, so a worker that is "ready"
 * and then leaves at once is retried with the same growing delay as one that
 * never booted. Together with {@link MAX_STOPPING_PER_SLOT} (reconcile.ts),
 * this keeps every crash loop slow and the number of processes bounded.
 *
 * @module
 */

import {
  BACKOFF_BASE_MS,
  BACKOFF_MAX_MS,
  type CoreState,
  STABLE_MS,
  type WorkerRecord,
  workerRef,
} from "./state.ts";

/**
 * Most stopping workers one slot may have at once: while it has this many,
 * no replacement starts in it (the rest wait), so workers that linger after
 * leaving on their own cannot pile up.
 */
export const MAX_STOPPING_PER_SLOT = 2;

/** How many of slot `slot`'s workers are stopping (any generation). */
export function stoppingIn<C>(state: CoreState<C>, slot: number): number {
  let n = 0;
  for (const w of state.workers.values()) if (w.slot === slot && w.state === "stopping") n++;
  return n;
}

/**
 * The wait before refilling a slot after its `failures`-th early end in a
 * row: the first is immediate (one crash of a healthy app is replaced at
 * once), then 100 ms, doubling up to {@link BACKOFF_MAX_MS}.
 */
export function earlyEndDelay(failures: number): number {
  if (failures <= 1) return 0;
  return Math.min(BACKOFF_BASE_MS * 2 ** (failures - 2), BACKOFF_MAX_MS);
}

/** Whether `w`, ready at some point, ends soon enough after it to count as a failure. */
export function endsEarly(w: Readonly<WorkerRecord>, now: number): boolean {
  return w.readyAt !== undefined && now - w.readyAt < STABLE_MS;
}

/**
 * Counts an early end of ready worker `w` (`what`: how it ended) toward its
 * slot's back-off and delays the slot's refill accordingly.
 */
export function backOffEarlyEnd<C>(
  state: CoreState<C>,
  w: Readonly<WorkerRecord>,
  now: number,
  what: string,
): void {
  const slot = state.slot(w.slot);
  slot.bootFailures++;
  const delay = earlyEndDelay(slot.bootFailures);
  slot.retryAt = delay === 0 ? 0 : now + delay;
  if (slot.bootFailures < 2) return; // one early end is news enough in the exit line
  state.log(
    delay === BACKOFF_MAX_MS && slot.bootFailures > 10 ? "debug" : "warning",
    "worker.backed_off",
    "worker {worker.id} {what} {after} s after it became ready, {count} time(s) in a row; " +
      "its replacement waits {delay} s",
    {
      worker: workerRef(w),
      what,
      after: Math.round(now - (w.readyAt ?? now)) / 1000,
      count: slot.bootFailures,
      delay: delay / 1000,
    },
  );
}
