/**
 * The one object the master's core holds for saturation (docs/saturation.md): it owns the
 * {@link Autoscaler} and the {@link MemoryWatch}, says when the next
 * sample is due, and turns samples into decisions. Pure (no I/O, time
 * passed in), so the core stays testable on a simulated clock; the core
 * only wires it.
 *
 * Invariants:
 * - With `autoscale` off and `max_worker_memory` 0, {@link nextSampleAt} is
 *   undefined: the idle master gets no extra wake-up.
 * - The queue is sampled every `autoscale_interval`; memory every
 *   {@link memorySampleIntervalMs}. A late sample (a busy loop) does not
 *   cause a burst of catch-up samples: the next one is scheduled from now.
 *   Samples due within {@link COALESCE_MS} of each other share one wake-up.
 * - A manual change (TTIN, TTOU, `ctl scale`) stays within the bounds when
 *   autoscale is on, and ≥ 1 always.
 *
 * @module
 */

import type { Config } from "../config/types.ts";
import {
  type AutoscaleDecision,
  Autoscaler,
  type AutoscaleSettings,
  autoscaleSettingsOf,
  clampWorkers,
} from "./autoscale.ts";
import {
  type MemorySample,
  memorySampleIntervalMs,
  type MemorySettings,
  memorySettingsOf,
  type MemoryVerdict,
  MemoryWatch,
} from "./memory.ts";

/** How early a sample may be taken to share a wake-up with another one. */
export const COALESCE_MS = 1000;

/** What the policy needs of a config. */
export interface SaturationSettings {
  /** Undefined when `autoscale` is off. */
  autoscale?: AutoscaleSettings;
  memory: MemorySettings;
}

/** The policy's settings from a config (for `settingsOf` in generation.ts). */
export function saturationSettingsOf(config: Config): SaturationSettings {
  const autoscale = autoscaleSettingsOf(config);
  return { ...(autoscale ? { autoscale } : {}), memory: memorySettingsOf(config) };
}

/** The samples due at a deadline. */
export interface DueSamples {
  /** Sample the accept queues and call {@link SaturationPolicy.queueSample}. */
  queue: boolean;
  /** Sample the ready workers' memory and call {@link SaturationPolicy.memorySample}. */
  memory: boolean;
}

/** The autoscaler, the memory watch and their sampling times. */
export class SaturationPolicy {
  #settings: SaturationSettings;
  #autoscaler?: Autoscaler;
  #memory!: MemoryWatch;
  #queueAt?: number;
  #memoryAt?: number;

  constructor(settings: SaturationSettings, now: number) {
    this.#settings = settings;
    this.#memory = new MemoryWatch(settings.memory);
    this.#configureAutoscale(now);
    this.#configureMemory(now);
  }

  /** The autoscaling bounds, or undefined when autoscale is off. */
  get bounds(): { min: number; max: number } | undefined {
    const a = this.#settings.autoscale;
    return a ? { min: a.min, max: a.max } : undefined;
  }

  /** The earliest sample due, or undefined when neither feature is on. */
  nextSampleAt(): number | undefined {
    const times = [this.#queueAt, this.#memoryAt].filter((t): t is number => t !== undefined);
    return times.length === 0 ? undefined : Math.min(...times);
  }

  /** Which samples are due at `now`; each one due is scheduled again from `now`. */
  due(now: number): DueSamples {
    const dueBy = (at: number | undefined, by: number) => at !== undefined && at <= by;
    // A sample due within COALESCE_MS of another one rides along with it:
    // one wake-up instead of two.
    const any = dueBy(this.#queueAt, now) || dueBy(this.#memoryAt, now);
    const queue = any && dueBy(this.#queueAt, now + COALESCE_MS);
    const memory = any && dueBy(this.#memoryAt, now + COALESCE_MS);
    if (queue) this.#queueAt = now + this.#settings.autoscale!.intervalMs;
    if (memory) this.#memoryAt = now + memorySampleIntervalMs(this.#settings.memory.windowMs);
    return { queue, memory };
  }

  /**
   * One accept-queue sample (all listeners summed). `desired` is the core's
   * count; `ready` its ready current workers not being replaced.
   */
  queueSample(
    now: number,
    queued: number,
    desired: number,
    ready: number,
  ): AutoscaleDecision | undefined {
    return this.#autoscaler?.observe({ now, queued, desired, ready });
  }

  /** One round of memory samples of the ready workers: the ones due for a recycle. */
  memorySample(now: number, samples: readonly MemorySample[]): MemoryVerdict[] {
    return this.#memory.observe(now, samples);
  }

  /** A worker left (exited or recycled): forget its memory history. */
  forget(serial: number): void {
    this.#memory.forget(serial);
  }

  /**
   * A manual change of the worker count: what it becomes. Within the bounds
   * when autoscale is on (the judgement restarts from there); at least 1.
   */
  manual(workers: number, now: number): number {
    if (this.#autoscaler) return this.#autoscaler.manual(workers, now);
    return Math.max(1, Math.round(workers));
  }

  /**
   * A reload brought new settings. Returns the worker count to run: with
   * autoscale on, the current count within the new bounds (a reload does
   * not throw away what autoscaling learned); else `configured`.
   */
  reconfigure(
    settings: SaturationSettings,
    now: number,
    current: number,
    configured: number,
  ): number {
    const changed = (a: unknown, b: unknown) => JSON.stringify(a) !== JSON.stringify(b);
    const autoscaleChanged = changed(settings.autoscale, this.#settings.autoscale);
    const memoryChanged = changed(settings.memory, this.#settings.memory);
    this.#settings = settings;
    if (autoscaleChanged) this.#configureAutoscale(now);
    if (memoryChanged) this.#configureMemory(now);
    return settings.autoscale ? clampWorkers(current, settings.autoscale) : configured;
  }

  #configureAutoscale(now: number): void {
    const autoscale = this.#settings.autoscale;
    this.#autoscaler = autoscale ? new Autoscaler(autoscale, now) : undefined;
    this.#queueAt = autoscale ? now + autoscale.intervalMs : undefined;
  }

  #configureMemory(now: number): void {
    const memory = this.#settings.memory;
    this.#memory = new MemoryWatch(memory);
    this.#memoryAt = memory.limitBytes > 0
      ? now + memorySampleIntervalMs(memory.windowMs)
      : undefined;
  }
}
