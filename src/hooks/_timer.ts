/**
 * A timeout of any length. `setTimeout` holds at most 2^31 − 1 ms (about
 * 24.8 days) and fires a longer delay after 1 ms, so a `hook_timeout` above
 * that would kill every hook at once. {@link longTimeout} waits in steps of at
 * most that size instead.
 *
 * @module
 */

import { MAX_TIMER_MS } from "../core/limits.ts";

/**
 * Calls `fn` once after `ms` milliseconds, however large.
 *
 * @param fn what to call
 * @param ms the delay; must be finite and ≥ 0
 * @param maxStep the longest single `setTimeout` (tests make it small)
 * @returns a function that cancels the call if it has not happened yet
 * @throws {RangeError} when `ms` or `maxStep` is not a usable number
 *
 * @example
 * ```ts
 * import { longTimeout } from "./_timer.ts";
 * const cancel = longTimeout(() => console.log("30 days later"), 30 * 86_400_000);
 * cancel();
 * ```
 */
export function longTimeout(fn: () => void, ms: number, maxStep = MAX_TIMER_MS): () => void {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new RangeError(`ms: expected a finite delay ≥ 0, got ${ms}`);
  }
  if (!(maxStep >= 1 && maxStep <= MAX_TIMER_MS)) {
    throw new RangeError(`maxStep: expected 1 to ${MAX_TIMER_MS}, got ${maxStep}`);
  }
  // Measured against the clock, not by counting steps: a timer may fire late.
  const due = performance.now() + ms;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    const left = due - performance.now();
    if (left <= 0) {
      timer = undefined;
      fn();
      return;
    }
    timer = setTimeout(arm, Math.min(left, maxStep));
  };
  timer = setTimeout(arm, Math.min(ms, maxStep));
  return () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
}
