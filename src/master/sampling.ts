/**
 * The executor's side of saturation (docs/saturation.md): carries out the core's `sample-queue` and
 * `sample-memory` effects (answering with `queue-sampled` / `memory-sampled`
 * events), and builds the {@link SaturationView} that status and metrics add
 * to their reports. It holds the {@link SaturationSampler} (the CPU meter
 * lives there between requests).
 *
 * Invariants: sampling happens only when the core asks (its deadline table
 * schedules it) or when someone asks for status or metrics — never on a
 * timer of its own, so an idle master with both features off makes no extra
 * wake-up. Reading a process or socket that is gone is not an error: it is
 * left out of the sample.
 *
 * Part of the executor: it decides nothing; every decision is the core's
 * (src/core/), and this only carries one out or reports what happened.
 *
 * @module
 */

import type { CoreSnapshot } from "../core/core.ts";
import type { Effect, Event } from "../core/events.ts";
import { STOP_REASON_TEXT } from "../core/events.ts";
import { sampleTrees } from "../observe/tree.ts";
import type { ListenerQueue, SampledListener } from "../observe/queue.ts";
import { SaturationSampler } from "../observe/sampler.ts";
import type { SaturationView } from "../control/saturation_report.ts";
import type { Config } from "../config/types.ts";
import { saturationSettingsOf } from "../core/saturation_policy.ts";

/** The sampling effects. */
export type SampleEffect<C> = Extract<Effect<C>, { type: "sample-queue" | "sample-memory" }>;

/** Samples for the core and for the operator's reports. */
export class Sampling<C> {
  readonly #sampler: SaturationSampler;
  readonly #push: (event: Event<C>) => void;

  /**
   * @param listeners The listeners open now.
   * @param push Puts the answer on the master's queue.
   * @param readQueues Reads the accept queues (`Os.sockets.queues`).
   */
  constructor(
    listeners: () => readonly SampledListener[],
    push: (event: Event<C>) => void,
    readQueues: (listeners: readonly SampledListener[]) => ListenerQueue[],
  ) {
    this.#sampler = new SaturationSampler(listeners, readQueues);
    this.#push = push;
  }

  /** Carries out a sampling effect of the core. */
  carryOut(effect: SampleEffect<C>): void {
    if (effect.type === "sample-queue") {
      this.#push({ type: "queue-sampled", queued: this.#sampler.queued() });
      return;
    }
    const samples = [];
    const trees = sampleTrees(effect.workers.map((w) => w.pid));
    for (const { serial, pid } of effect.workers) {
      const tree = trees.get(pid);
      if (tree) samples.push({ serial, memoryBytes: tree.memoryBytes });
    }
    this.#push({ type: "memory-sampled", samples });
  }

  /** What status and metrics show of saturation now; `config` is the serving one. */
  view(snapshot: CoreSnapshot, config: Config, now: number): SaturationView {
    const live = snapshot.workers.filter((w) => w.pid !== undefined);
    const usage = this.#sampler.workers(
      live.map((w) => ({ serial: w.serial, pid: w.pid!, spawnedAt: w.spawnedAt })),
      now,
    );
    const stopReasons = new Map<number, string>();
    for (const w of live) {
      if (w.state === "stopping" && w.stopReason) {
        stopReasons.set(w.pid!, STOP_REASON_TEXT[w.stopReason]);
      }
    }
    const settings = saturationSettingsOf(config);
    return {
      queues: this.#sampler.queues(),
      usage: new Map(usage.map((u) => [u.pid, u])),
      stopReasons,
      autoscale: settings.autoscale
        ? { min: settings.autoscale.min, max: settings.autoscale.max }
        : undefined,
      maxWorkerMemoryBytes: settings.memory.limitBytes,
    };
  }
}
