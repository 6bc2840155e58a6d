/**
 * The core's answers to requests that change what the master wants: a
 * reload or upgrade asked for, a stop, a new worker count (TTIN, TTOU,
 * WINCH, `arbiter ctl scale N`, `scale +N`/`-N`). Each handler changes the
 * desired state only and returns the {@link Reply} the caller hears; the
 * reconcile step (reconcile.ts) then makes the workers match. Replacing or
 * signalling single workers is operator.ts's.
 *
 * @module
 */

import { MAX_WORKERS } from "./limits.ts";
import type { Reply, RequestAction } from "./events.ts";
import * as reload from "./reload.ts";
import { beginRollout, endRollout } from "./rollout.ts";
import * as saturation from "./saturation.ts";
import type { CoreState } from "./state.ts";
import { beginStop } from "./stop.ts";

/** What every request that starts something hears while the master stops. */
export const STOPPING: Reply = { ok: false, error: "the master is stopping" };

/** False (and logged) when the master is stopping: signals that start things are ignored. */
export function running<C>(s: CoreState<C>, source: string): boolean {
  if (s.running) return true;
  s.log("info", "signal.ignored", "{signal} ignored: the master is stopping", { signal: source });
  return false;
}

/** Reload, upgrade, stop or quick stop asked for by `source` (a request, not a signal). */
export function onRequest<C>(
  s: CoreState<C>,
  action: RequestAction,
  source: string,
  now: number,
): Reply {
  if (action === "stop" || action === "quick-stop") {
    return beginStop(s, action === "quick-stop", source, now);
  }
  if (!s.running) {
    s.log("info", "signal.ignored", "{source} ignored: the master is stopping", { source });
    return STOPPING;
  }
  return action === "reload" ? reload.requestReload(s, source) : requestUpgrade(s, source);
}

/**
 * `ctl scale N` (`relative` false) or `ctl scale +N`/`-N` (`relative`: N is
 * added to the desired count at the moment the request is handled). The
 * result must be from 1 to {@link MAX_WORKERS}, as for `scale N`; it is
 * then kept within autoscale's bounds.
 */
export function onScale<C>(
  s: CoreState<C>,
  workers: number,
  relative: boolean,
  now: number,
): Reply {
  if (!s.running) return STOPPING;
  const from = s.desired;
  const wanted = relative ? from + workers : workers;
  if (wanted < 1 || wanted > MAX_WORKERS) {
    const error = `${from} ${workers < 0 ? "-" : "+"} ${Math.abs(workers)} = ${wanted} ` +
      `workers: expected a result from 1 to ${MAX_WORKERS}`;
    s.log("info", "scale.refused", "scale refused: {error}", { error });
    return { ok: false, error };
  }
  const count = saturation.manualCount(s, wanted, now); // within autoscale's bounds
  scaleTo(s, count, "control request");
  return { ok: true, message: `workers ${from} -> ${count}${saturation.boundsNote(s)}` };
}

/** Sets the desired count (logged), unless stopping or unchanged. */
export function scaleTo<C>(s: CoreState<C>, count: number, why: string): void {
  if (!s.running || count === s.desired) return;
  s.log("info", "scale.changed", "{why}: workers {from} -> {to}", {
    why,
    from: s.desired,
    to: count,
  });
  s.desired = count;
}

/** TTIN: one worker more. */
export function scaleUp<C>(s: CoreState<C>, now: number): void {
  if (running(s, "SIGTTIN")) scaleTo(s, saturation.manualCount(s, s.desired + 1, now), "SIGTTIN");
}

/** TTOU: one worker fewer, never below the minimum. */
export function scaleDown<C>(s: CoreState<C>, now: number): void {
  if (!running(s, "SIGTTOU")) return;
  const min = s.policy.bounds?.min ?? 1; // autoscale's workers_min
  if (s.desired <= min) {
    s.log(
      "info",
      "scale.refused",
      "SIGTTOU ignored: already at {count} worker(s), the minimum is {min}",
      { count: s.desired, min },
    );
  } else scaleTo(s, saturation.manualCount(s, s.desired - 1, now), "SIGTTOU");
}

/** WINCH: every worker stops and the master stays, unless it has a terminal. */
export function winch<C>(s: CoreState<C>, hasTerminal: boolean): void {
  if (!running(s, "SIGWINCH")) return;
  if (hasTerminal) {
    s.log("debug", "signal.ignored", "SIGWINCH ignored: the master has a controlling terminal");
    return;
  }
  s.log(
    "info",
    "scale.stopped_all",
    "SIGWINCH: stopping all workers; the master stays (HUP or TTIN restarts them)",
  );
  s.desired = 0;
}

/**
 * USR2 or `ctl upgrade`: check the new master, then re-execute in place.
 * The reply names the rollout and the generation the new image will start
 * (this one + 1), so `ctl upgrade --wait` can recognise its outcome in the
 * new image's status.
 */
export function requestUpgrade<C>(s: CoreState<C>, source: string): Reply {
  const busy = s.upgrading
    ? "an upgrade is already in progress"
    : s.reloading || s.previous
    ? "a reload is in progress"
    : undefined;
  if (busy) {
    s.log("warning", "upgrade.refused", "{source} refused: {busy}", { source, busy });
    return { ok: false, error: busy };
  }
  s.upgrading = true;
  beginRollout(s, "upgrade");
  s.log(
    "info",
    "upgrade.checking",
    "{source}: checking the new master before upgrading in place",
    { source },
  );
  s.emit({ type: "check-upgrade" });
  return {
    ok: true,
    message: "upgrading in place (see the master's log for the outcome)",
    rollout: { attempt: s.rollout!.attempt, kind: "upgrade", generation: s.current.number + 1 },
  };
}

/** The pre-upgrade check (or the exec) ended: exec now, or the upgrade is refused. */
export function onUpgradeChecked<C>(s: CoreState<C>, error: string | undefined): void {
  if (error === undefined && s.running && !s.reloading) {
    s.log("info", "upgrade.started", "upgrading in place: re-executing the master (pid kept)");
    s.emit({ type: "exec-upgrade", generation: s.current.number });
    return; // if the exec fails, another upgrade-checked event with the error follows
  }
  s.upgrading = false;
  const why = error ?? "the master is stopping or reloading";
  s.log("error", "upgrade.refused", "upgrade refused, nothing changed: {error}", { error: why });
  endRollout(s, "refused", why);
}
