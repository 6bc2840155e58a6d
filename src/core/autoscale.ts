/**
 * Autoscaling on the accept queue, uWSGI's "cheaper" subsystem
 * with its `backlog` algorithm, made stable. Pure: the executor samples the
 * listeners' queues (src/observe/queue.ts) every `autoscale_interval` and
 * feeds the total here with the monotonic time; the answer is a new desired
 * worker count, or none. Off by default.
 *
 * The signal: connections waiting in the kernel's accept queue mean every
 * worker is busy. A queue that is non-empty in {@link UP_SAMPLES}
 * consecutive samples, taken while all desired workers were ready, is
 * *sustained* — one sample is noise.
 *
 * Rules:
 * - **Up**: on a sustained queue that is not draining (its last sample is
 *   not below its first — a backlog the workers are catching up with needs
 *   no more of them), add as many workers as the smallest queue length
 *   seen in those samples (a closed-loop load of C clients on N sync
 * workers queues C − N), at least 1 and at most doubling. Then the history is
 * cleared: the new workers must be ready
 *   before the next judgement.
 * - **Down**: one worker at a time, after a quiet period
 *   (`autoscale_quiet_period`) without a sustained queue, on an empty
 *   sample. Lone non-empty samples do not count: with random (Poisson)
 *   arrivals a queue of one or two flickers even with spare workers, and
 *   demanding a spotless period would leave the count stuck high.
 * - **No oscillation**: removing a worker is a probe. If the queue comes
 *   back soon after a removal (the previous action was that removal, less
 *   than a quiet period ago), the
 *   count that was just left was needed: add back exactly one, and double
 *   the quiet period before the next probe (up to {@link MAX_BACKOFF}×).
 *   Under a steady load needing K workers the count therefore settles at K,
 *   probing K−1 ever more rarely. A normal scale-up (the load grew) or a
 *   removal that held through a base quiet period (the load fell) resets
 *   the back-off.
 * - **Bounds**: never below `workers_min` nor above `workers_max`. A manual
 *   change (TTIN, TTOU, `ctl scale`) sets the count within the bounds and
 *   restarts the judgement from there.
 *
 * Limits worth knowing: the accept queue shows saturation of workers that
 * accept only when free (sync Python/Ruby/PHP workers, one connection at a
 * time). An event-loop worker (Node, uvicorn) accepts everything at once and
 * queues inside itself; its accept queue builds only when its loop is
 * saturated, so autoscaling reacts later for those.
 *
 * @module
 */

import type { Config } from "../config/types.ts";

/** What the autoscaler needs to know. */
export interface AutoscaleSettings {
  /** `workers_min`, ≥ 1. */
  min: number;
  /** `workers_max`, ≥ min. */
  max: number;
  /** Sampling period (`autoscale_interval`), ms. */
  intervalMs: number;
  /** How long the queue must stay empty before one worker is removed, ms. */
  quietMs: number;
}

/** One sample of the master's state. */
export interface AutoscaleSample {
  /** Monotonic ms. */
  now: number;
  /** Connections waiting, summed over every listener. */
  queued: number;
  /** The desired worker count right now (the core's). */
  desired: number;
  /** Ready workers of the current generation that are not being replaced. */
  ready: number;
}

/** A change of the desired worker count, with why, for the log. */
export interface AutoscaleDecision {
  workers: number;
  reason: string;
}

/** Consecutive non-empty samples that make a queue "sustained". */
export const UP_SAMPLES = 3;
/** The largest factor the quiet period grows to after probes that bounced. */
export const MAX_BACKOFF = 16;
/** One step adds at most this many times the current count (×4 in all). */
export const MAX_STEP = 3;

/** The autoscaler's settings from a config, or undefined when `autoscale` is off. */
export function autoscaleSettingsOf(config: Config): AutoscaleSettings | undefined {
  if (!config.autoscale) return undefined;
  const min = config.workers_min ?? 1;
  return {
    min,
    max: Math.max(min, config.workers_max ?? config.workers),
    intervalMs: config.autoscale_interval * 1000,
    quietMs: config.autoscale_quiet_period * 1000,
  };
}

/** `n` within the bounds. */
export function clampWorkers(n: number, s: Pick<AutoscaleSettings, "min" | "max">): number {
  return Math.min(s.max, Math.max(s.min, Math.round(n)));
}

/** The autoscaler's memory between samples. */
export class Autoscaler {
  /** Recent queue lengths, only of samples taken with every desired worker ready. */
  #busy: number[] = [];
  /** Since when no sustained queue was seen (undefined: there is one now). */
  #quietSince: number | undefined;
  #lastAction: "up" | "down" | "none" = "none";
  #lastDownAt = -Infinity;
  #backoff = 1;

  constructor(readonly settings: AutoscaleSettings, now: number) {
    this.#quietSince = now;
  }

  /** The quiet period in force now (it grows after bounced probes). */
  get quietMs(): number {
    return this.settings.quietMs * this.#backoff;
  }

  /** Take one sample; returns a new desired count, or undefined to keep it. */
  observe(s: AutoscaleSample): AutoscaleDecision | undefined {
    const { min, max } = this.settings;
    if (s.desired < min || s.desired > max) {
      // Outside the bounds (a reload changed them): come back inside first.
      return this.#act(s, clampWorkers(s.desired, this.settings), "outside workers_min..max");
    }
    if (s.queued === 0 || s.ready < s.desired) {
      // Empty, or workers booting or being replaced (capacity unknown until
      // they serve): no streak.
      this.#busy = [];
    } else this.#busy.push(s.queued);
    if (this.#busy.length < UP_SAMPLES) {
      // No sustained queue: a lone busy sample is noise and does not end the quiet.
      this.#quietSince ??= s.now;
      if (this.#lastAction === "down" && s.now - this.#lastDownAt >= this.settings.quietMs) {
        // The last removal held through a base quiet period: the load fell,
        // so the next removals go at the normal pace again.
        this.#backoff = 1;
        this.#lastAction = "none";
      }
      const quietFor = s.now - this.#quietSince;
      if (s.queued === 0 && s.desired > min && s.ready >= s.desired && quietFor >= this.quietMs) {
        const why = `no sustained accept queue for ${Math.round(quietFor / 1000)} s`;
        return this.#act(s, s.desired - 1, why, "down");
      }
      return undefined;
    }
    this.#quietSince = undefined;
    const window = this.#busy.slice(-UP_SAMPLES);
    const sustained = Math.min(...window);
    if (window.some((q, i) => i > 0 && q < window[i - 1])) {
      // Not growing or standing still but falling somewhere: the workers there
      // are catching up with a backlog, and more of them would overshoot.
      return undefined;
    }
    if (s.desired >= max) {
      this.#busy = [];
      return undefined;
    }
    if (this.#lastAction === "down" && s.now - this.#lastDownAt <= this.quietMs) {
      // The probe bounced: the count just left was needed.
      this.#backoff = Math.min(MAX_BACKOFF, this.#backoff * 2);
      return this.#act(
        s,
        s.desired + 1,
        `accept queue non-empty again after a removal (${sustained}+ waiting); ` +
          `next removal after ${Math.round(this.quietMs / 1000)} s of quiet`,
        "up",
      );
    }
    this.#backoff = 1;
    // A standing queue (the same length every time: C clients on N workers)
    // is exactly the shortfall; a growing one (open-loop overload) says only
    // "more", so it at most doubles per step.
    const standing = window.every((q) => q === window[0]);
    const add = Math.min(Math.max(1, sustained), (standing ? MAX_STEP : 1) * s.desired);
    return this.#act(
      s,
      s.desired + add,
      `accept queue non-empty for ${UP_SAMPLES} samples (${sustained}+ waiting)`,
      "up",
    );
  }

  /**
   * A manual change (TTIN, TTOU, `ctl scale`): the count it asked for,
   * within the bounds. The judgement restarts from there.
   */
  manual(workers: number, now: number): number {
    this.#busy = [];
    this.#quietSince = now;
    this.#lastAction = "none";
    this.#backoff = 1;
    return clampWorkers(workers, this.settings);
  }

  #act(
    s: AutoscaleSample,
    workers: number,
    why: string,
    action: "up" | "down" | "none" = "none",
  ): AutoscaleDecision | undefined {
    const target = clampWorkers(workers, this.settings);
    this.#busy = [];
    this.#quietSince = s.now;
    if (target === s.desired) return undefined;
    this.#lastAction = action;
    if (action === "down") this.#lastDownAt = s.now;
    return { workers: target, reason: `autoscale: ${why}` };
  }
}
