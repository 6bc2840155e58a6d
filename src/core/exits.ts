/**
 * How the core judges a worker's end — once, here: the metrics reason
 * ({@link exitReason}), the log line, the slot's back-off, whether a boot
 * failure halts the master or abandons a reload. Functions over the core's
 * {@link CoreState}; nothing else classifies exits.
 *
 * Exit codes that mean "this app cannot start" halt the master (Gunicorn's 3
 * and 4), as do the exec shim's 126/127 (the command cannot be executed) —
 * but only while no worker has been ready yet. Availability over halt: once
 * workers have served, the same failures abandon a reload (the old
 * generation keeps serving) or, outside a rollout, are retried with back-off
 * like any failed boot, and reported as "cannot boot".
 *
 * @module
 */

import type { ExitReason } from "./exit_reasons.ts";
import {
  ABANDON_AFTER_FAILURES,
  BACKOFF_BASE_MS,
  BACKOFF_MAX_MS,
  CANNOT_BOOT_AFTER,
  type CoreState,
  STABLE_MS,
  stopReasonText,
  type WorkerRecord,
  workerRef,
} from "./state.ts";
import type { Level } from "./events.ts";
import { backOffEarlyEnd, endsEarly } from "./restarts.ts";
import { endRollout } from "./rollout.ts";

/** Exit codes of a worker that mean "this app cannot start" (Gunicorn's). */
const HALTING_CODES = new Set([3, 4]);
/** Exit codes of the exec shim: the command could not be executed. */
const EXEC_FAILURE_CODES = new Set([126, 127]);

/** The fields of a worker record that decide why it exited. */
export type ExitingWorker = Pick<WorkerRecord, "state" | "stopReason" | "killSent" | "readyAt">;

/** Why a worker exited, for `arbiter_worker_exits_total{reason}`; `w` is its record at exit. */
export function exitReason(w: ExitingWorker, code: number, signal: string | null): ExitReason {
  if (w.stopReason === "watchdog-timeout") return "timeout";
  if (w.stopReason === "boot-timeout") return "boot_failure";
  if (w.stopReason === "max-memory") return w.killSent ? "killed_after_grace" : "memory";
  if (w.state === "stopping") return w.killSent ? "killed_after_grace" : "stopped";
  if (w.state === "booting" && w.readyAt === undefined) return "boot_failure";
  if (signal === "SIGKILL") return "sigkill";
  if (signal !== null) return "signal";
  return code === 0 ? "exited" : "error";
}

/** Counts one exit in the metrics counters. */
function countExit<C>(state: CoreState<C>, reason: ExitReason): void {
  const c = state.counters;
  c.exits[reason] = (c.exits[reason] ?? 0) + 1;
  if (reason === "timeout") c.timeouts++;
  if (reason === "boot_failure") c.bootFailures++;
  // A worker that was asked to go is not replaced; none is while the master stops.
  const replaced = reason !== "stopped" && reason !== "killed_after_grace" && reason !== "memory";
  if (replaced && state.running) c.restarts++;
}

/** Worker `serial` exited. */
export function onExited<C>(
  state: CoreState<C>,
  serial: number,
  code: number,
  signal: string | null,
  now: number,
  lastStderr?: string[],
): void {
  const w = state.workers.get(serial);
  if (!w) return state.emit({ type: "worker-gone", serial });
  countExit(state, exitReason(w, code, signal));
  state.workers.delete(serial);
  const slot = state.slot(w.slot);
  const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
  const props = { worker: workerRef(w), how, reason: stopReasonText(w.stopReason) };
  const wasStopping = w.state === "stopping";
  const failedBoot = w.stopReason === "boot-timeout";
  const ready = w.state === "ready" || w.readyAt !== undefined;
  slot.lastExit = signal ?? `code ${code}`;

  if (wasStopping && !failedBoot) {
    state.log(
      "info",
      "worker.exited",
      "worker {worker.id} (pid {worker.pid}) stopped ({reason}): {how}",
      props,
    );
  } else if (!wasStopping && signal === null && code === 0) {
    state.log(
      "info",
      "worker.exited",
      "worker {worker.id} (pid {worker.pid}) exited on its own with code 0; replacing it",
      props,
    );
  } else if (signal === "SIGKILL" && !w.killSent) {
    state.log(
      "error",
      "worker.exited",
      "worker {worker.id} (pid {worker.pid}) was killed by SIGKILL (perhaps out of memory?)",
      props,
    );
  } else if (!wasStopping) {
    state.log("error", "worker.exited", "worker {worker.id} (pid {worker.pid}) {how}", props);
  }

  if (state.running && !ready && (!wasStopping || failedBoot)) {
    onBootFailure(state, w, code, signal, now, lastStderr);
  } else if (!wasStopping || w.stopReason === "watchdog-timeout") {
    slot.restarts++;
    // A worker that served a while clears its slot's record; one that ended
    // soon after becoming ready counts toward its back-off (restarts.ts).
    if (state.running && endsEarly(w, now)) {
      backOffEarlyEnd(
        state,
        w,
        now,
        signal ? `was killed by ${signal}` : `exited with code ${code}`,
      );
    } else {
      if (w.readyAt !== undefined && now - w.readyAt >= STABLE_MS) slot.bootFailures = 0;
      slot.retryAt = 0;
    }
  }
  // Before any retirement: the executor must no longer count its listeners.
  const exited = { slot: w.slot, pid: w.pid, generation: w.generation, code, signal };
  state.emit({ type: "worker-gone", serial, exited });
  state.churned(now);
  state.retireEmptyGenerations();
}

/** The process for worker `serial` could not even be created. */
export function onSpawnFailed<C>(
  state: CoreState<C>,
  serial: number,
  error: string,
  now: number,
): void {
  const w = state.workers.get(serial);
  if (!w) return state.emit({ type: "worker-gone", serial });
  const c = state.counters;
  c.bootFailures++;
  if (state.running) c.restarts++;
  state.workers.delete(serial);
  state.log(
    "error",
    "worker.spawn_failed",
    "worker {worker.id}: could not start a process: {error}",
    { worker: workerRef(w), error },
  );
  countBootFailure(state, w, now, "spawn failed");
  abandonIfHopeless(state, w, now);
  state.emit({ type: "worker-gone", serial });
  state.retireEmptyGenerations();
}

function onBootFailure<C>(
  state: CoreState<C>,
  w: WorkerRecord,
  code: number,
  signal: string | null,
  now: number,
  lastStderr?: string[],
): void {
  const inRollout = inRolloutOf(state, w);
  const execFailed = signal === null && EXEC_FAILURE_CODES.has(code);
  const halting = signal === null && HALTING_CODES.has(code);
  if (execFailed || halting) {
    const exitCode = execFailed ? 3 : code;
    const reason = execFailed
      ? `cannot execute the worker command ${JSON.stringify(state.settingsOf(w).commandName)}`
      : `worker ${w.slot} failed to boot (exit code ${code}${
        code === 4 ? ": the app could not be loaded" : ""
      })`;
    if (inRollout) {
      abandonRollout(state, reason, now);
      return;
    } else if (w.generation === state.current.number && !state.served) {
      state.log("error", "master.halting", "halting: {reason}", { reason });
      state.stop(
        { quick: false, code: exitCode, reason: `halting with exit code ${exitCode}` },
        now,
      );
      return;
    } else if (w.generation !== state.current.number) return;
    // Availability over halt: workers have served, so the healthy ones stay
    // and this slot is retried with back-off, as any other failed boot.
    state.log(
      "error",
      "master.not_halting",
      "{reason}; not halting: other workers have served, retrying with back-off",
      {
        reason,
      },
    );
  }
  const what = execFailed
    ? `exit code ${code} (the command cannot be executed)`
    : signal
    ? `killed by ${signal}`
    : `exit code ${code}`;
  countBootFailure(state, w, now, what, lastStderr);
  abandonIfHopeless(state, w, now);
}

/** Whether `w` belongs to a rollout's new generation while an older one still serves. */
function inRolloutOf<C>(state: CoreState<C>, w: WorkerRecord): boolean {
  return state.previous !== undefined && w.generation === state.current.number &&
    state.hasReadyOlderWorkers();
}

/** A rollout whose new workers failed to boot {@link ABANDON_AFTER_FAILURES} times is abandoned. */
function abandonIfHopeless<C>(state: CoreState<C>, w: WorkerRecord, now: number): void {
  if (inRolloutOf(state, w) && state.current.bootFailures >= ABANDON_AFTER_FAILURES) {
    abandonRollout(state, `${state.current.bootFailures} workers failed to boot`, now);
  }
}

function countBootFailure<C>(
  state: CoreState<C>,
  w: WorkerRecord,
  now: number,
  what: string,
  lastStderr?: string[],
) {
  const slot = state.slot(w.slot);
  slot.restarts++;
  slot.bootFailures++;
  const generation = state.generations.get(w.generation);
  if (generation) generation.bootFailures++;
  const delay = Math.min(BACKOFF_BASE_MS * 2 ** (slot.bootFailures - 1), BACKOFF_MAX_MS);
  slot.retryAt = now + delay;
  const same = slot.bootFailure?.what === what;
  // A try whose stderr was not kept (or said nothing) keeps the lines of an earlier one.
  const kept = lastStderr?.length ? lastStderr : same ? slot.bootFailure!.lastStderr : undefined;
  slot.bootFailure = {
    what,
    inARow: same ? slot.bootFailure!.inARow + 1 : 1,
    lastStderr: kept,
  };
  if (slot.bootFailure.inARow === CANNOT_BOOT_AFTER) {
    // Said once, plainly: retrying quietly forever hides a command that cannot work.
    state.log(
      "error",
      "worker.cannot_boot",
      "worker {worker.id} cannot boot: it ended with {what} before it was ready on each of the last " +
        "{count} tries; still retrying, with back-off. {output}(arbiter ctl status shows this too)",
      { worker: workerRef(w), what, count: CANNOT_BOOT_AFTER, output: stderrText(kept) },
    );
  }
  const level: Level = delay === BACKOFF_MAX_MS && slot.bootFailures > 8 ? "debug" : "warning";
  state.log(
    level,
    "worker.boot_failed",
    "worker {worker.id} failed to boot ({what}), {count} time(s) in a row; retrying in {delay} s",
    { worker: workerRef(w), what, count: slot.bootFailures, delay: delay / 1000 },
  );
}

/** The "cannot boot" line's account of the worker's stderr. */
function stderrText(lines: string[] | undefined): string {
  if (!lines?.length) return "Check the command and its output above ";
  return `The last lines of its stderr: ${lines.map((l) => JSON.stringify(l)).join(" | ")} `;
}

/** The new generation cannot boot: stop it; the previous one serves again, under its config. */
function abandonRollout<C>(state: CoreState<C>, reason: string, now: number): void {
  const previous = state.previous!;
  const failed = state.current;
  state.log(
    "error",
    "reload.abandoned",
    "reload abandoned ({reason}); generation {old} keeps serving",
    { reason, old: previous.number },
  );
  for (const w of state.workers.values()) {
    if (w.generation === failed.number && w.state !== "stopping") {
      state.stopWorker(
        w,
        "SIGTERM",
        "reload-abandoned",
        now,
        state.settingsOf(w).gracefulTimeoutMs,
      );
    }
  }
  state.serve(previous, now);
  state.previous = undefined;
  state.upgrading = false;
  endRollout(state, "abandoned", reason);
  state.emit({ type: "reload-done" });
  state.resetBackoff();
}
