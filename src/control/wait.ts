/**
 * `arbiter ctl reload --wait` and `upgrade --wait` (docs/operations.md,
 * "Waiting for a reload or an upgrade"): after the request, poll the status every
 * {@link WAIT_POLL_MS} until the rollout the master's reply named has an
 * outcome, or the timeout passes.
 *
 * Why polling: the control server answers every request within 10 s, while
 * a rollout takes as long as its workers do; and an upgrade re-executes the
 * master, which closes every connection and the socket itself for a moment.
 * A poll that fails (no socket, refused, reset) is simply tried again.
 *
 * How the rollout is recognised (see `master.rollout` in api.ts):
 * - a reload by its attempt number; a later attempt means it was
 *   superseded by another reload, which is then followed instead;
 * - an upgrade in the old image by its attempt (only "refused" ends it
 *   there), in the new image by the generation it starts (the reply names
 *   it), since the new image counts attempts afresh; a new image with no
 *   rollout at all took over no workers, so nothing older is left: done.
 *
 * @module
 */

import type { RolloutRef, StatusReport } from "./api.ts";
import { CTL_TIMEOUT_MS } from "./_client.ts";

/** How often the status is polled while waiting. */
export const WAIT_POLL_MS = 200;
/** `ctl`'s exit code when `--timeout` passed before the outcome was known. */
export const EXIT_TIMED_OUT = 3;
/**
 * How long the master may not answer before the wait gives up (it stopped,
 * or died): an upgrade's re-exec leaves the socket away for a second or two.
 */
export const UNREACHABLE_GIVE_UP_MS = 60_000;

type Rollout = StatusReport["master"]["rollout"];

/** What one status says of the awaited rollout. */
export type Verdict =
  | { kind: "wait" }
  | { kind: "done"; message: string }
  | { kind: "failed"; message: string };

/**
 * Judges the status's `rollout` against `target` (pure). A reload superseded
 * by a later one moves `target` to that one.
 */
export function judgeRollout(target: RolloutRef, rollout: Rollout): Verdict {
  const what = `${target.kind} (attempt ${target.attempt})`;
  if (rollout === undefined) {
    return { kind: "failed", message: `this master does not report rollouts; cannot wait` };
  }
  if (rollout === null) {
    return target.kind === "upgrade"
      ? { kind: "done", message: "upgrade done: the new master runs (it took over no workers)" }
      : { kind: "wait" };
  }
  const newImage = target.kind === "upgrade" && rollout.kind === "upgrade" &&
    rollout.generation !== undefined && rollout.generation === target.generation;
  const oldImage = target.kind === "upgrade" && rollout.generation === undefined;
  const same = newImage ||
    (rollout.attempt === target.attempt && rollout.kind === target.kind &&
      (target.kind === "reload" || oldImage));
  if (!same) {
    if (rollout.attempt < target.attempt) return { kind: "wait" }; // queued: not begun yet
    if (target.kind === "reload" && rollout.kind === "reload" && !target.generation) {
      target.attempt = rollout.attempt; // superseded by a later reload: follow that one
      return judgeRollout(target, rollout);
    }
    return {
      kind: "failed",
      message:
        `the ${what} ended unseen: another rollout (${rollout.kind}, attempt ${rollout.attempt}) began; see \`arbiter ctl status\``,
    };
  }
  switch (rollout.outcome) {
    case "in-progress":
      return { kind: "wait" };
    case "done":
      return {
        kind: "done",
        message: `${target.kind} done: generation ${rollout.generation} serves; ` +
          `the old workers are gone`,
      };
    case "abandoned":
      return {
        kind: "failed",
        message: `${target.kind} abandoned: ${rollout.reason ?? "its workers could not boot"}; ` +
          `the previous generation keeps serving`,
      };
    case "refused":
      return {
        kind: "failed",
        message: `${target.kind} refused, nothing changed: ${rollout.reason ?? "no reason given"}`,
      };
  }
}

/** What {@link waitForRollout} needs. */
export interface WaitIo {
  /** One status report, within `timeoutMs`; throws when it cannot be had. */
  status(timeoutMs: number): Promise<StatusReport>;
  /** Monotonic ms. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** Polls until `target` has an outcome: exit 0 done, 1 failed, {@link EXIT_TIMED_OUT} timed out. */
export async function waitForRollout(
  io: WaitIo,
  target: RolloutRef,
  timeoutMs: number,
): Promise<{ code: number; message: string }> {
  const deadline = io.now() + timeoutMs;
  let unreachable: string | undefined;
  let unreachableSince: number | undefined;
  while (true) {
    const remaining = deadline - io.now();
    if (remaining <= 0) {
      const state = unreachable === undefined
        ? "it is still in progress"
        : `the master does not answer: ${unreachable}`;
      return {
        code: EXIT_TIMED_OUT,
        message: `timed out after ${timeoutMs / 1000} s waiting for the ${target.kind} ` +
          `(attempt ${target.attempt}): ${state}`,
      };
    }
    try {
      const status = await io.status(Math.max(1, Math.min(remaining, CTL_TIMEOUT_MS)));
      unreachable = unreachableSince = undefined;
      const verdict = judgeRollout(target, status.master.rollout);
      if (verdict.kind === "done") return { code: 0, message: verdict.message };
      if (verdict.kind === "failed") return { code: 1, message: verdict.message };
      if (status.master.phase === "stopping") {
        return {
          code: 1,
          message: `the master is stopping: the ${target.kind} (attempt ${target.attempt}) ` +
            `will not finish`,
        };
      }
    } catch (error) {
      // The socket goes away during an upgrade's exec, and comes back.
      unreachable = error instanceof Error ? error.message : String(error);
      unreachableSince ??= io.now();
      if (io.now() - unreachableSince >= UNREACHABLE_GIVE_UP_MS) {
        return {
          code: 1,
          message: `the master has not answered for ${UNREACHABLE_GIVE_UP_MS / 1000} s ` +
            `(stopped?) while waiting for the ${target.kind}: ${unreachable}`,
        };
      }
    }
    await io.sleep(Math.min(WAIT_POLL_MS, Math.max(0, deadline - io.now())));
  }
}
