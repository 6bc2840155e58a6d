/**
 * Deadlines after a stall: time the master itself did not run does not
 * count against a worker. When the executor sees that its timer fired
 * {@link STALL_MS} or more late (the master was stopped, throttled, or its
 * thread blocked), it reports a `stalled` event naming the last time the
 * loop ran, then every notify message that waited meanwhile, and only then
 * the event that woke it — so no deadline is judged before both. Every running
 * worker's watchdog and boot deadlines are moved on by the time since then,
 * so each keeps the time it had left when the master last ran: a worker
 * that pinged meanwhile is judged on that ping; a genuinely hung one is
 * still caught, at most one pause later.
 *
 * @module
 */

import type { CoreState } from "./state.ts";

/**
 * How late the executor's timer may fire before the master counts itself
 * as having not run (paused or starved) rather than merely busy.
 */
export const STALL_MS = 500;

/** The loop did not run from `since` to `now`: re-arm the deadlines that time would expire. */
export function onStalled<C>(state: CoreState<C>, since: number, now: number): void {
  const pausedMs = now - since;
  if (!(pausedMs > 0)) return;
  state.stalls++;
  let rearmed = 0;
  for (const w of state.workers.values()) {
    if (w.state === "stopping") continue; // a stop's grace is the worker's time, not ours
    // A ping read after `since` (the drained backlog) is fresh already.
    if (w.lastPing !== undefined && w.lastPing <= since) {
      w.lastPing = Math.min(now, w.lastPing + pausedMs);
      rearmed++;
    }
    if (w.state === "booting") {
      w.bootCreditMs = (w.bootCreditMs ?? 0) + pausedMs;
      rearmed++;
    }
  }
  state.log(
    "warning",
    "master.stalled",
    "the master did not run for {seconds} s (paused, throttled or blocked); " +
      "{count} worker deadline(s) re-armed instead of acted on",
    { seconds: Math.round(pausedMs) / 1000, count: rearmed },
  );
}
