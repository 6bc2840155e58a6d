/**
 * One object the master's executor holds to see saturation: it
 * samples the listeners' accept queues and the workers' memory and CPU (each
 * worker's whole process group, src/observe/tree.ts), and
 * keeps the CPU meter between samples. Everything is on demand — the
 * executor calls it when `/metrics` or `ctl status` is asked, and on the
 * slow timers of autoscaling and of `max_worker_memory` when those are on —
 * so an idle master with neither makes no extra wake-up.
 *
 * @module
 */

import { CpuMeter } from "./proc.ts";
import { sampleTrees, type TreeSample } from "./tree.ts";
import { type ListenerQueue, type SampledListener, sampleQueues } from "./queue.ts";

/** A live worker to sample, as the executor knows it. */
export interface SampledWorker {
  /** The core's serial of the worker record. */
  serial: number;
  pid: number;
  /** When it was spawned (monotonic ms), for its first CPU figure. */
  spawnedAt: number;
}

/** One worker's resources (its process group's) at one moment. */
export interface WorkerUsage extends TreeSample {
  serial: number;
  pid: number;
  /** Percent of one core since the previous sample (or over its life the first time). */
  cpuPercent: number;
}

/** Samples the master's listeners and workers; holds the CPU meter between calls. */
export class SaturationSampler {
  #cpu = new CpuMeter();

  /**
   * @param listeners The listeners open now (called at every sample: reloads change them).
   * @param readQueues Reads their accept queues (the kernel's, unless a test brings a fake).
   */
  constructor(
    readonly listeners: () => readonly SampledListener[],
    readonly readQueues: (listeners: readonly SampledListener[]) => ListenerQueue[] = sampleQueues,
  ) {}

  /** Each listener's accept queue; listeners that cannot be read are left out. */
  queues(): ListenerQueue[] {
    return this.readQueues(this.listeners());
  }

  /** Connections waiting over all listeners (the autoscaler's input). */
  queued(): number {
    return this.queues().reduce((sum, q) => sum + q.length, 0);
  }

  /**
   * Memory and CPU of each worker's process group that could be read (a
   * worker that exited a moment ago is left out). Forgets the CPU history of
   * workers not listed.
   */
  workers(list: readonly SampledWorker[], now: number): WorkerUsage[] {
    const out: WorkerUsage[] = [];
    const trees = sampleTrees(list.map((w) => w.pid));
    for (const w of list) {
      const sample = trees.get(w.pid);
      if (!sample) continue;
      out.push({
        serial: w.serial,
        pid: w.pid,
        ...sample,
        cpuPercent: this.#cpu.percent(w.pid, sample.cpuSeconds, now, now - w.spawnedAt),
      });
    }
    this.#cpu.retain(list.map((w) => w.pid));
    return out;
  }
}
