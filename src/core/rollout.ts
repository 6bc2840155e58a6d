/**
 * The outcome of a reload or an upgrade, kept so that someone who asked for
 * one (`arbiter ctl reload --wait`, a deploy script) can learn how it ended:
 * done (the new generation serves and nothing older is left), abandoned (its
 * workers could not boot; the old generation keeps serving) or refused (the
 * new config or binary failed its check). Each end is also a
 * `rollout-ended` effect.
 *
 * @module
 */

import type { CoreState } from "./state.ts";

/**
 * The latest reload or upgrade and how it ended. `attempt` counts rollouts
 * since this master image started: a waiter reads it first, then waits for a
 * larger one with a final `outcome`.
 */
export interface RolloutRecord {
  attempt: number;
  kind: "reload" | "upgrade";
  /** The generation it started (unset while the config is read, or when it was refused). */
  generation?: number;
  outcome: "in-progress" | "done" | "abandoned" | "refused";
  /** Why it was abandoned or refused. */
  reason?: string;
}

/** Records that a rollout begins (`generation` unset while its config is being read). */
export function beginRollout<C>(
  state: CoreState<C>,
  kind: RolloutRecord["kind"],
  generation?: number,
): void {
  const attempt = (state.rollout?.attempt ?? 0) + 1;
  state.rollout = { attempt, kind, generation, outcome: "in-progress" };
}

/** Names the generation the rollout under way started. */
export function rolloutStarted<C>(state: CoreState<C>, generation: number): void {
  if (state.rollout?.outcome === "in-progress") state.rollout.generation = generation;
}

/** Records how the rollout under way ended; a final outcome is never changed. */
export function endRollout<C>(
  state: CoreState<C>,
  outcome: Exclude<RolloutRecord["outcome"], "in-progress">,
  reason?: string,
): void {
  const r = state.rollout;
  if (!r || r.outcome !== "in-progress") return;
  r.outcome = outcome;
  if (reason !== undefined) r.reason = reason;
  state.emit({ type: "rollout-ended", rollout: { ...r } });
}
