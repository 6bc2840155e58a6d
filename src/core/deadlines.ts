/**
 * The one deadline table of the master: {@link workerDeadlines} says when
 * each timed thing is due for a worker under its settings, {@link slotRetryAt}
 * when a failed slot is tried again, and {@link masterDeadlines} when the
 * master itself owes something (a systemd watchdog ping, a poll of inherited
 * workers). The same table arms the executor's one timer
 * ({@link nextDeadline}) and acts when it fires ({@link handleDeadlines},
 * {@link handleMasterDeadlines}), so nothing can be counted as due that
 * nothing acts on — that mismatch once re-armed a zero-delay timer in a loop.
 * The executor arms no other timer.
 *
 * The executor's single timer is clamped by {@link timerDelay} to what
 * `setTimeout` can hold; a clamped timer fires early, finds nothing due and
 * is armed again, so any accepted duration (a 30-day lifetime) works.
 *
 * @module
 */

import type { Settings, StopReason, TimeoutHook, WorkerIdentity } from "./events.ts";
import type { LogEvent } from "./log_events.ts";
import {
  type CoreState,
  QUICK_GRACE_MS,
  SETTLE_MS,
  stopReasonText,
  TRIM_AFTER_COLLECT_MS,
  type WorkerRecord,
  workerRef,
} from "./state.ts";
import { MAX_STOPPING_PER_SLOT, stoppingIn } from "./restarts.ts";
import { stopDeadline } from "./stop.ts";

import { MAX_TIMER_MS } from "./limits.ts";

export { MAX_TIMER_MS };

/** What falls due for a worker. */
export type DeadlineKind =
  /** Its stop grace ran out: SIGKILL. */
  | "kill"
  /** `ready = "notify"` and no READY=1 within `boot_timeout`: abort it. */
  | "boot-timeout"
  /** `ready = "spawn"` and it ran the settle delay: it is ready. */
  | "settle"
  /** No WATCHDOG=1 within `timeout` since the last one: abort it. */
  | "watchdog"
  /** It reached its maximum age: start its replacement. */
  | "recycle";

/** One entry of the table. */
export interface Deadline {
  kind: DeadlineKind;
  at: number;
}

/** What falls due for the master as a whole. */
export type MasterDeadlineKind =
  /** systemd asked for watchdog pings: `WATCHDOG=1`. */
  | "service-ping"
  /** Inherited workers are not the runtime's children: reap to learn of their exits. */
  | "reap-poll"
  /** Workers came or went and things are quiet again: collect the garbage. */
  | "collect-garbage"
  /** A moment after that collection: give the freed C heap back. */
  | "trim-heap";

/** How often inherited workers are polled for exit, besides every SIGCHLD. */
export const INHERITED_POLL_MS = 500;

/**
 * A ping is sent once this share of systemd's interval has passed, so one
 * due a little early (the timer fired for something else) still goes out.
 */
const PING_EARLY_SHARE = 0.9;

/** What the master owes at which time, whatever the workers do. */
export function masterDeadlines<C>(
  state: CoreState<C>,
): { kind: MasterDeadlineKind; at: number }[] {
  const due: { kind: MasterDeadlineKind; at: number }[] = [];
  const ping = state.servicePing;
  if (ping && !state.exited) {
    due.push({ kind: "service-ping", at: ping.lastAt + ping.intervalMs * PING_EARLY_SHARE });
  }
  if (state.workers.values().some((w) => w.inherited)) {
    due.push({ kind: "reap-poll", at: state.reapPollAt });
  }
  if (state.releaseMemoryAt !== undefined && !state.exited) {
    due.push({ kind: "collect-garbage", at: state.releaseMemoryAt });
  }
  if (state.trimHeapAt !== undefined && !state.exited) {
    due.push({ kind: "trim-heap", at: state.trimHeapAt });
  }
  return due;
}

/** Acts on the master's deadlines that are due at `now`. */
export function handleMasterDeadlines<C>(state: CoreState<C>, now: number): void {
  for (const { kind, at } of masterDeadlines(state)) {
    if (at > now) continue;
    if (kind === "service-ping") {
      state.servicePing!.lastAt = now;
      state.emit({ type: "ping-service-manager" });
    } else if (kind === "reap-poll") {
      state.reapPollAt = now + INHERITED_POLL_MS;
      state.emit({ type: "reap-children" });
    } else if (kind === "collect-garbage") {
      state.releaseMemoryAt = undefined;
      state.churnSince = undefined;
      state.trimHeapAt = now + TRIM_AFTER_COLLECT_MS;
      state.emit({ type: "collect-garbage" });
    } else {
      state.trimHeapAt = undefined;
      state.emit({ type: "trim-heap" });
    }
  }
}

/** When free slot `slot` may be filled again (0: now; a failed slot backs off). */
export function slotRetryAt<C>(state: CoreState<C>, slot: number): number {
  return state.slot(slot).retryAt;
}

/**
 * The worker longest past its maximum age, due a replacement at `now`; none
 * while a replacement wave is under way.
 */
export function dueForRecycle<C>(state: CoreState<C>, now: number): WorkerRecord | undefined {
  let due: { w: WorkerRecord; at: number } | undefined;
  for (const w of state.workers.values()) {
    for (const d of workerDeadlines(w, state.settingsOf(w), false)) {
      if (d.kind === "recycle" && d.at <= now && (!due || d.at < due.at)) due = { w, at: d.at };
    }
  }
  return due?.w;
}

/**
 * Everything due for `w` under `s`. `recycling` says a replacement wave is
 * under way, which holds back further recycling until it ends.
 */
export function workerDeadlines(
  w: Readonly<WorkerRecord>,
  s: Settings,
  recycling: boolean,
): Deadline[] {
  const due: Deadline[] = [];
  if (w.killAt !== undefined && !w.killSent) due.push({ kind: "kill", at: w.killAt });
  if (w.state === "stopping") return due;
  if (w.state === "booting") {
    if (s.ready === "notify" && s.bootTimeoutMs > 0) {
      due.push({
        kind: "boot-timeout",
        at: w.spawnedAt + s.bootTimeoutMs + (w.bootCreditMs ?? 0),
      });
    }
    // Not before its pid is known: only then is it a running process.
    if (s.ready === "spawn" && w.pid !== undefined) {
      due.push({ kind: "settle", at: w.spawnedAt + SETTLE_MS });
    }
  }
  if (s.watchdogMs > 0 && w.lastPing !== undefined) {
    due.push({ kind: "watchdog", at: w.lastPing + s.watchdogMs });
  }
  if (w.state === "ready" && w.recycleAt !== undefined && !w.superseded && !recycling) {
    due.push({ kind: "recycle", at: w.recycleAt });
  }
  return due;
}

/** The earliest time at which something is due, or undefined when nothing is. */
export function nextDeadline<C>(state: CoreState<C>): number | undefined {
  let next = Infinity;
  const recycling = state.recycleInProgress();
  for (const w of state.workers.values()) {
    for (const d of workerDeadlines(w, state.settingsOf(w), recycling)) {
      next = Math.min(next, d.at);
    }
  }
  for (const d of masterDeadlines(state)) next = Math.min(next, d.at);
  next = Math.min(next, stopDeadline(state) ?? Infinity);
  if (state.running) {
    // Saturation (docs/saturation.md): the next accept-queue or RSS sample (none when both features are off).
    next = Math.min(next, state.policy.nextSampleAt() ?? Infinity);
    for (const slot of state.freeSlots()) {
      // A slot at its stopping cap waits for an exit (an event), not a time.
      if (stoppingIn(state, slot) >= MAX_STOPPING_PER_SLOT) continue;
      const retryAt = slotRetryAt(state, slot);
      if (retryAt > 0) next = Math.min(next, retryAt);
    }
  }
  return Number.isFinite(next) ? next : undefined;
}

/** How long the executor's timer waits for `deadline`: never negative, never past {@link MAX_TIMER_MS}. */
export function timerDelay(deadline: number, now: number): number {
  return Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(deadline - now)));
}

/**
 * Acts on the per-worker deadlines that are due at `now`, except recycling,
 * which reconcile starts one worker at a time.
 */
export function handleDeadlines<C>(state: CoreState<C>, now: number): void {
  for (const w of state.workers.values()) {
    const s = state.settingsOf(w);
    const due = workerDeadlines(w, s, true).filter((d) => d.at <= now);
    for (const { kind } of due) {
      if (kind === "kill") {
        w.killSent = true;
        state.log(
          "warning",
          "worker.killed",
          "worker {worker.id} (pid {worker.pid}) did not exit in time ({reason}); sending SIGKILL",
          { worker: workerRef(w), reason: stopReasonText(w.stopReason) },
        );
        state.emit({ type: "kill", serial: w.serial, signal: "SIGKILL", group: true });
        break;
      } else if (kind === "settle") {
        state.markReady(w, now, "running for 1 s");
      } else if (kind === "boot-timeout" || kind === "watchdog") {
        abort(state, w, now, ABORTS[kind], s);
        break;
      }
    }
  }
}

/** Why a worker is aborted: its log line, the timeout that ran out, its stop reason and hook. */
interface AbortCause {
  event: LogEvent;
  /** Says `{timeout}`: the seconds that ran out. */
  message: string;
  timeoutMs: (settings: Settings) => number;
  reason: StopReason;
  hook: TimeoutHook;
}

/** The deadlines that abort a worker. */
const ABORTS: Record<"boot-timeout" | "watchdog", AbortCause> = {
  "boot-timeout": {
    event: "worker.boot_timeout",
    message:
      "worker {worker.id} (pid {worker.pid}) did not become ready within {timeout} s; aborting it",
    timeoutMs: (s) => s.bootTimeoutMs,
    reason: "boot-timeout",
    hook: "boot_timeout",
  },
  watchdog: {
    event: "worker.watchdog_timeout",
    message:
      "worker {worker.id} (pid {worker.pid}) timeout: no WATCHDOG=1 for {timeout} s; aborting it",
    timeoutMs: (s) => s.watchdogMs,
    reason: "watchdog-timeout",
    hook: "worker_timeout",
  },
};

/**
 * A worker past its boot timeout or watchdog: logged, sent SIGABRT with the
 * short grace before SIGKILL, and named to the `worker_timeout` hook.
 */
function abort<C>(
  state: CoreState<C>,
  w: WorkerRecord,
  now: number,
  cause: AbortCause,
  settings: Settings,
): void {
  const timeoutMs = cause.timeoutMs(settings);
  state.log("error", cause.event, cause.message, {
    worker: workerRef(w),
    timeout: timeoutMs / 1000,
  });
  state.stopWorker(w, "SIGABRT", cause.reason, now, QUICK_GRACE_MS);
  state.emit({ type: "worker-timed-out", hook: cause.hook, worker: identity(w) });
}

function identity(w: WorkerRecord): WorkerIdentity {
  return { slot: w.slot, pid: w.pid, generation: w.generation };
}
