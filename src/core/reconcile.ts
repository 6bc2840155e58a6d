/**
 * Reconcile: one step that makes the workers match the core's desired state
 * (count, current generation, phase), after every event. Handlers elsewhere
 * only change what is desired; this is where workers are started and retired.
 *
 * Invariants:
 * - Replaced workers (older generation, or past their age) go only as new
 *   ones become ready, so the number of ready workers never drops during a
 *   rollout; at most one replacement wave runs at a time.
 * - With `max_surge` set, no more than `workers + max_surge` workers are
 *   alive (stopping ones included) while a rollout runs: a new worker starts
 *   only once an old one has exited.
 * - While stopping, nothing starts; once no worker is left, one `exit`.
 *
 * @module
 */

import type { CoreState, WorkerRecord } from "./state.ts";
import { workerRef } from "./state.ts";
import { dueForRecycle, handleDeadlines, handleMasterDeadlines, slotRetryAt } from "./deadlines.ts";
import { memoryDueWorker } from "./saturation.ts";
import { MAX_STOPPING_PER_SLOT, stoppingIn } from "./restarts.ts";
import { endRollout } from "./rollout.ts";
import { advanceLeftovers, advanceStop } from "./stop.ts";

/** Makes the processes match the desired state; also acts on due deadlines. */
export function reconcile<C>(state: CoreState<C>, now: number): void {
  handleMasterDeadlines(state, now);
  handleDeadlines(state, now);
  advanceLeftovers(state, now);
  if (state.phase.kind === "stopping") {
    advanceStop(state, now);
    // Nothing of a worker may outlive the master: its leftover group too.
    if (state.workers.size === 0 && state.leftovers.size === 0 && !state.exited) {
      state.exited = true;
      state.stopSteps = undefined;
      state.log("info", "master.exiting", "all workers are gone; exiting with code {code}", {
        code: state.phase.code,
      });
      state.emit({ type: "exit", code: state.phase.code });
    }
    return;
  }
  recycleOne(state, now);
  const gen = state.current;
  const active = (w: WorkerRecord) => w.state !== "stopping";
  const current = [...state.workers.values()].filter(
    (w) => active(w) && w.generation === gen.number && !w.superseded,
  );
  // Too many current workers (TTOU, scale down): the oldest go first, as in Gunicorn.
  if (current.length > state.desired) {
    const victims = current.sort(byAge).slice(0, current.length - state.desired);
    for (const w of victims) {
      state.stopWorker(w, "SIGTERM", "scaled-down", now, gen.settings.gracefulTimeoutMs);
    }
  }
  // Too few: fill the lowest free slots whose back-off has passed, as far as
  // the surge allows, unless the slot has as many stopping workers as it may
  // (one exiting frees it).
  let room = surgeRoom(state);
  for (const slot of state.freeSlots()) {
    if (room <= 0) break;
    if (slotRetryAt(state, slot) > now) continue;
    if (stoppingIn(state, slot) >= MAX_STOPPING_PER_SLOT) continue;
    state.spawn(slot, now);
    room--;
  }
  const replaced = [...state.workers.values()].filter(
    (w) => active(w) && (w.generation !== gen.number || w.superseded),
  );
  const readyCurrent = state.readyCurrent();
  const surplus = replaced.length + readyCurrent - state.desired;
  if (surplus > 0) {
    for (const w of replaced.sort(byRetirementOrder).slice(0, surplus)) {
      const reason = !w.superseded
        ? "replaced"
        : w.restartRequested
        ? "restarted"
        : w.memoryDue
        ? "max-memory"
        : "max-age";
      state.stopWorker(w, "SIGTERM", reason, now, state.settingsOf(w).gracefulTimeoutMs);
    }
  }
  if (
    state.previous &&
    !state.workers.values().some((w) => active(w) && w.generation !== gen.number)
  ) {
    state.previous = undefined; // rollout complete: nothing older is serving
    state.upgrading = false;
  }
  const rollout = state.rollout;
  if (
    rollout?.outcome === "in-progress" && rollout.generation === gen.number &&
    !state.previous && readyCurrent >= state.desired &&
    !state.workers.values().some((w) => w.generation !== gen.number)
  ) {
    endRollout(state, "done"); // the new generation serves and the old one is gone
  }
  if (!gen.readyAnnounced && state.desired > 0 && readyCurrent >= state.desired) {
    gen.readyAnnounced = true;
    state.log("info", "generation.ready", "generation {generation} is ready: {count} worker(s)", {
      generation: gen.number,
      count: readyCurrent,
    });
    state.emit({ type: "generation-ready", generation: gen.number });
  }
}

/**
 * Starts recycling one worker when no replacement wave runs: one over
 * `max_worker_memory` first, else the one longest past its age.
 */
function recycleOne<C>(state: CoreState<C>, now: number): void {
  if (state.recycleInProgress()) return;
  const overMemory = memoryDueWorker(state);
  if (overMemory) {
    recycle(
      state,
      overMemory,
      "worker {worker.id} (pid {worker.pid}) is over max_worker_memory; starting its replacement",
    );
    return;
  }
  const due = dueForRecycle(state, now);
  if (!due) return;
  recycle(
    state,
    due,
    "worker {worker.id} (pid {worker.pid}) reached its maximum age; starting its replacement",
  );
}

/** Marks `w` for replacement (it goes once its replacement is ready) and says why. */
function recycle<C>(state: CoreState<C>, w: WorkerRecord, message: string): void {
  w.superseded = true;
  state.log("info", "worker.recycling", message, { worker: workerRef(w) });
}

/**
 * How many workers may start now under `max_surge`: every live process
 * counts, the stopping ones too (they still hold their memory), so a rollout
 * never has more than `workers + max_surge` alive. A serving generation that
 * lost workers (a crash, a watchdog kill) is refilled regardless: capacity
 * comes before the bound, and a worker that died holds nothing.
 */
function surgeRoom<C>(state: CoreState<C>): number {
  const maxSurge = state.current.settings.maxSurge;
  if (maxSurge === undefined) return Infinity;
  const serving = [...state.workers.values()].filter((w) => w.state !== "stopping").length;
  const bound = state.desired + maxSurge - state.workers.size;
  const refill = state.desired - serving;
  return Math.max(bound, refill);
}

/** Oldest first. */
function byAge(a: WorkerRecord, b: WorkerRecord): number {
  return a.spawnedAt - b.spawnedAt || a.serial - b.serial;
}

/** Rollout retirement order: workers not serving yet first, then the oldest. */
function byRetirementOrder(a: WorkerRecord, b: WorkerRecord): number {
  const rank = (w: WorkerRecord) => (w.state === "ready" ? 1 : 0);
  return rank(a) - rank(b) || a.spawnedAt - b.spawnedAt || a.serial - b.serial;
}
