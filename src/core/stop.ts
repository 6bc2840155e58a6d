/**
 * The stop sequence and the process-group sweep, decided here and carried
 * out by the executor (docs/stopping.md).
 *
 * A graceful stop (TERM, `ctl stop`) goes through these steps, each one
 * started by the end of the one before:
 * 1. `delay`: `/readyz` already says 503 and `ctl status` says stopping
 *    (the `stopping` effect went out when the stop began), but the workers
 *    go on serving for `shutdown_delay`, while load balancers notice.
 * 2. `drain`: new handshakes are stopped at every listener
 *    (`close-handshakes`) and the accept queues are read every
 *    {@link DRAIN_POLL_MS} until they are empty, so every connection the
 *    kernel accepted reaches a worker. A booting worker counts as one that
 *    may accept: many servers accept before they are ready (and `ready =
 *    "spawn"` calls none ready for a second). The reading is skipped, and
 *    the queues are left to close, only when no worker is ready or booting
 *    (nobody would accept); the handshakes are stopped all the same, so a
 *    client arriving while the workers exit is refused, not reset.
 * 3. SIGTERM to every worker's process group, SIGKILL when the grace ends.
 *    The drain and the workers' own stop share one `graceful_timeout`,
 *    counted from the start of the drain; a worker always gets at least
 *    {@link QUICK_GRACE_MS} between SIGTERM and SIGKILL.
 * A quick stop (INT, QUIT, `ctl quick-stop`), or one during the steps,
 * skips to `quick_stop_signal` and SIGKILL after {@link QUICK_GRACE_MS}.
 *
 * Leftover groups: when a worker has gone, whatever is left in its process
 * group gets SIGTERM, and SIGKILL {@link LEFTOVER_GRACE_MS} later; the master
 * exits only once every such group is empty (or was refused as not ours:
 * the executor checks membership before each signal).
 *
 * @module
 */

import { type CoreState, QUICK_GRACE_MS, type WorkerRecord } from "./state.ts";
import type { WorkerRef } from "./log_events.ts";
import type { Reply } from "./events.ts";

/**
 * Grace between SIGTERM to what a gone worker left in its process group and
 * SIGKILL to it.
 */
export const LEFTOVER_GRACE_MS = 1000;
/**
 * Where a graceful stop is before the workers get SIGTERM (stop.ts):
 * `delay` while `shutdown_delay` runs, `drain` while the workers empty the
 * accept queues after new handshakes were stopped.
 */
export interface StopSteps {
  step: "delay" | "drain";
  /** When the step ends at the latest. */
  until: number;
  /** When the drain began: the workers' stop is bounded from here. */
  drainFrom?: number;
  /** When to read the queues next (drain). */
  sampleAt?: number;
  /** A `sample-drain` is out and not yet answered. */
  sampling?: boolean;
}

/** What a gone worker left in its process group, until the group is empty. */
export interface LeftoverGroup {
  slot: number;
  generation: number;
  /** When SIGKILL goes to the group. */
  killAt: number;
  killSent: boolean;
  /** After SIGKILL: when to count the group again (until it is empty or `giveUpAt`). */
  checkAt?: number;
  giveUpAt?: number;
  /** A `sweep-group` is out and not yet answered. */
  asking: boolean;
}

/** How often the accept queues are read while they drain. */
export const DRAIN_POLL_MS = 20;
/** After SIGKILL to a leftover group: how often to look whether it is empty. */
export const LEFTOVER_CHECK_MS = 50;
/** After SIGKILL to a leftover group: how long to wait for it to empty before giving up. */
export const LEFTOVER_GIVE_UP_MS = 2000;

/** TERM or INT/QUIT (or their requests) from `source`: begins (or quickens) the stop. */
export function beginStop<C>(
  state: CoreState<C>,
  quick: boolean,
  source: string,
  now: number,
): Reply {
  const delayMs = quick ? 0 : state.current.settings.shutdownDelayMs ?? 0;
  const how = quick
    ? "stopping quickly"
    : delayMs > 0
    ? `stopping gracefully after shutdown_delay (${delayMs / 1000} s)`
    : "stopping gracefully";
  state.stop({ quick, code: 0, reason: `${source}: ${how}`, delayMs }, now);
  return { ok: true, message: how };
}

/** Moves a graceful stop on as its steps end; called on every event while stopping. */
export function advanceStop<C>(state: CoreState<C>, now: number): void {
  const steps = state.stopSteps;
  if (!steps || state.phase.kind !== "stopping") return;
  if (steps.step === "delay") {
    if (now < steps.until) return;
    state.emit({ type: "close-handshakes" });
    if (!someMayAccept(state)) {
      stopWorkers(state, now, now);
      return;
    }
    state.log(
      "info",
      "stop.draining",
      "new connections are no longer accepted; draining the accept queues",
    );
    steps.step = "drain";
    steps.drainFrom = now;
    steps.until = now + state.current.settings.gracefulTimeoutMs;
    steps.sampleAt = now;
  }
  if (now >= steps.until) {
    state.log(
      "warning",
      "stop.drain_unfinished",
      "the accept queues did not empty within graceful_timeout",
    );
    stopWorkers(state, steps.drainFrom ?? now, now);
  } else if (!steps.sampling && steps.sampleAt !== undefined && now >= steps.sampleAt) {
    steps.sampling = true;
    state.emit({ type: "sample-drain" });
  }
}

/** The answer to `sample-drain`. */
export function onDrainSampled<C>(state: CoreState<C>, queued: number, now: number): void {
  const steps = state.stopSteps;
  if (!steps || steps.step !== "drain") return;
  steps.sampling = false;
  if (queued === 0 || !someMayAccept(state)) {
    stopWorkers(state, steps.drainFrom ?? now, now);
  } else {
    steps.sampleAt = now + DRAIN_POLL_MS;
  }
}

/** Whether a worker may still take connections from the queues: a ready or a booting one. */
function someMayAccept<C>(state: CoreState<C>): boolean {
  return state.workers.values().some((w) => w.state === "ready" || w.state === "booting");
}

/** SIGTERM to every worker; the grace runs from `from` (the drain's start). */
function stopWorkers<C>(state: CoreState<C>, from: number, now: number): void {
  state.stopSteps = undefined;
  for (const w of state.workers.values()) {
    const end = from + state.settingsOf(w).gracefulTimeoutMs;
    state.stopWorker(w, "SIGTERM", "master-stopping", now, Math.max(end - now, QUICK_GRACE_MS));
  }
}

/** The next time the stop sequence or a leftover group needs the core, if any. */
export function stopDeadline<C>(state: CoreState<C>): number | undefined {
  let next = Infinity;
  const steps = state.stopSteps;
  if (steps && state.phase.kind === "stopping") {
    next = steps.until;
    if (!steps.sampling && steps.sampleAt !== undefined) next = Math.min(next, steps.sampleAt);
  }
  for (const g of state.leftovers.values()) {
    if (g.asking) continue;
    if (!g.killSent) next = Math.min(next, g.killAt);
    else if (g.checkAt !== undefined) next = Math.min(next, g.checkAt);
  }
  return Number.isFinite(next) ? next : undefined;
}

/** Worker `w` has gone (its exit was judged): sweep what it left in its group. */
export function onWorkerGone<C>(state: CoreState<C>, w: WorkerRecord, now: number): void {
  if (w.pid === undefined) return;
  state.leftovers.set(w.pid, {
    slot: w.slot,
    generation: w.generation,
    killAt: now + LEFTOVER_GRACE_MS,
    killSent: false,
    asking: true,
  });
  state.emit({ type: "sweep-group", pgid: w.pid, signal: "SIGTERM" });
}

/** The gone worker a leftover group was, in the shape every worker log line uses. */
function groupWorker(g: LeftoverGroup, pgid: number): WorkerRef {
  return { id: g.slot, pid: pgid, generation: g.generation };
}

/** The answer to `sweep-group`. */
export function onGroupSwept<C>(
  state: CoreState<C>,
  pgid: number,
  members: number,
  now: number,
): void {
  const g = state.leftovers.get(pgid);
  if (!g) return;
  g.asking = false;
  if (members === 0) {
    state.leftovers.delete(pgid);
    return;
  }
  if (!g.killSent) {
    state.log(
      "info",
      "group.leftover",
      "worker {worker.id} (pid {worker.pid}) left {count} process(es) in its group: " +
        "SIGTERM, SIGKILL in {grace} s",
      { worker: groupWorker(g, pgid), count: members, grace: LEFTOVER_GRACE_MS / 1000 },
    );
  } else if (now >= (g.giveUpAt ?? now)) {
    state.log(
      "warning",
      "group.stuck",
      "worker {worker.id} (pid {worker.pid})'s group still has {count} process(es) after SIGKILL",
      { worker: groupWorker(g, pgid), count: members },
    );
    state.leftovers.delete(pgid);
  } else {
    g.checkAt = now + LEFTOVER_CHECK_MS;
  }
}

/** Acts on leftover groups whose time has come; called on every event. */
export function advanceLeftovers<C>(state: CoreState<C>, now: number): void {
  for (const [pgid, g] of state.leftovers) {
    if (g.asking) continue;
    if (!g.killSent && now >= g.killAt) {
      g.killSent = true;
      g.asking = true;
      g.giveUpAt = now + LEFTOVER_GIVE_UP_MS;
      state.log(
        "warning",
        "group.killed",
        "worker {worker.id} (pid {worker.pid}) left a group that did not exit after SIGTERM; " +
          "sending SIGKILL",
        { worker: groupWorker(g, pgid) },
      );
      state.emit({ type: "sweep-group", pgid, signal: "SIGKILL" });
    } else if (g.killSent && g.checkAt !== undefined && now >= g.checkAt) {
      g.checkAt = undefined;
      g.asking = true;
      state.emit({ type: "sweep-group", pgid });
    }
  }
}
