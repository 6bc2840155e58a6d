/**
 * Requests that target single workers (docs/operations.md, "arbiter ctl"):
 * `ctl restart ID` replaces one slot's worker, new one first, and `ctl
 * signal SIG [ID]` passes an allowed signal to the workers. Both are
 * decided here and answered with a {@link Reply}; the executor only sends
 * what the effects say.
 *
 * - Restart marks the slot's worker as superseded, like a recycle: the
 *   reconcile step starts its replacement at once and stops the old one
 *   (reason "restarted") only when the new one is ready, so the slot never
 *   stops serving. A slot with no live worker (between crash retries) is
 *   started now instead of waiting out its back-off.
 * - A signal goes to each targeted *ready* worker's process group (as a
 *   stop does). A booting worker is skipped: it may not handle the signal
 *   yet, and most of these end a process by default. Whatever the worker
 *   does then is judged like any exit (a TERMed worker is replaced).
 *
 * @module
 */

import { OPERATOR_SIGNALS, type OperatorSignal, type Reply } from "./events.ts";
import type { WorkerRecord } from "./records.ts";
import { STOPPING } from "./requests.ts";
import { type CoreState, workerRef } from "./state.ts";

/** The allowed signal names, for messages. */
const ALLOWED = OPERATOR_SIGNALS.map((s) => s.slice(3)).join(", ");

/** Whether `name` is a signal `ctl signal` may send. */
export function isOperatorSignal(name: string): name is OperatorSignal {
  return (OPERATOR_SIGNALS as readonly string[]).includes(name);
}

/** `ctl restart ID`: replace slot `slot`'s worker, the new one ready before the old one stops. */
export function restartSlot<C>(s: CoreState<C>, slot: number): Reply {
  if (!s.running) return STOPPING;
  const refused = (error: string): Reply => {
    s.log("info", "restart.refused", "restart of worker {id} refused: {error}", {
      id: slot,
      error,
    });
    return { ok: false, error };
  };
  if (s.reloading || s.previous || s.upgrading) {
    return refused("a reload or upgrade is in progress (it replaces every worker)");
  }
  if (!isSlotId(s, slot)) return refused(unknownSlot(s, slot));
  const live = liveIn(s, slot);
  if (live.length === 0) {
    s.slot(slot).retryAt = 0; // between crash retries: start it now
    s.log("info", "restart.requested", "worker {id} is not running; starting it now", { id: slot });
    return { ok: true, message: `worker ${slot} was not running; starting it now` };
  }
  if (live.some((w) => w.superseded)) return refused(`worker ${slot} is already being replaced`);
  for (const w of live) {
    w.superseded = true;
    w.restartRequested = true;
  }
  s.log(
    "info",
    "restart.requested",
    "worker {worker.id} (pid {worker.pid}): starting its replacement; it stops once that is ready",
    { worker: workerRef(live[0]), id: slot },
  );
  return {
    ok: true,
    message: `restarting worker ${slot}: a new worker starts, the old one (pid ${
      live[0].pid ?? "-"
    }) stops once it is ready`,
  };
}

/** `ctl signal SIG [ID]`: send an allowed signal to every ready worker, or to slot `slot`'s. */
export function signalWorkers<C>(s: CoreState<C>, signal: string, slot?: number): Reply {
  if (!s.running) return STOPPING;
  const refused = (error: string): Reply => {
    s.log("info", "signal.refused", "signal request refused: {error}", { error });
    return { ok: false, error };
  };
  if (!isOperatorSignal(signal)) {
    return refused(`${JSON.stringify(signal)} is not a signal ctl may send; allowed: ${ALLOWED}`);
  }
  if (slot !== undefined && !s.workers.values().some((w) => w.slot === slot)) {
    return refused(unknownSlot(s, slot));
  }
  const targets = [...s.workers.values()].filter((w) =>
    (slot === undefined || w.slot === slot) && w.state !== "stopping"
  );
  const sent: WorkerRecord[] = [];
  let skipped = 0;
  for (const w of targets) {
    const usr1Off = signal === "SIGUSR1" && s.settingsOf(w).workerUsr1 === "off";
    if (w.state !== "ready" || w.pid === undefined || usr1Off) {
      skipped++;
      continue;
    }
    sent.push(w);
    s.emit({ type: "signal-worker", serial: w.serial, signal, group: true });
    s.log("info", "signal.sent", "{signal} sent to worker {worker.id} (pid {worker.pid})", {
      signal,
      worker: workerRef(w),
    });
  }
  if (sent.length === 0) {
    return refused(
      slot === undefined
        ? "no worker is ready to take it"
        : `worker ${slot} is not ready to take it (booting, stopping, or worker_usr1 = "off")`,
    );
  }
  const ids = [...new Set(sent.map((w) => w.slot))].sort((a, b) => a - b).join(", ");
  const note = skipped > 0 ? `; ${skipped} not ready (skipped)` : "";
  return { ok: true, message: `${signal} sent to worker(s) ${ids}${note}` };
}

function liveIn<C>(s: CoreState<C>, slot: number): WorkerRecord[] {
  return [...s.workers.values()].filter((w) =>
    w.slot === slot && w.generation === s.current.number && w.state !== "stopping"
  );
}

/**
 * Why `slot` names no worker (`ctl logs ID`), or undefined when it does:
 * the same answer `ctl restart` gives.
 */
export function unknownWorkerId<C>(s: CoreState<C>, slot: number): string | undefined {
  return isSlotId(s, slot) || s.workers.values().some((w) => w.slot === slot)
    ? undefined
    : unknownSlot(s, slot);
}

/** Whether `slot` is one of the desired worker ids, 0 to `desired - 1`. */
function isSlotId<C>(s: CoreState<C>, slot: number): boolean {
  return Number.isSafeInteger(slot) && slot >= 0 && slot < s.desired;
}

function unknownSlot<C>(s: CoreState<C>, slot: number): string {
  const ids = s.desired === 0 ? "there are no workers" : `ids are 0 to ${s.desired - 1}`;
  return `no worker ${slot}: ${ids}`;
}
