/**
 * `max_worker_memory`: which workers have used too much memory
 * for long enough to be recycled. Pure: the executor reads each ready
 * worker's memory — its process group's PSS, or RSS where PSS cannot be
 * read (src/observe/tree.ts) — every {@link memorySampleIntervalMs}
 * and feeds it here with the monotonic time; the core acts on the answer.
 *
 * Rules (uWSGI `reload-on-rss` and PM2 `max_memory_restart`, with a guard
 * against spikes):
 * - A worker is *over* from the first sample above the limit; one sample at
 *   or below the limit clears it. It becomes *due* once it has been over for
 *   the whole confirmation window (`max_worker_memory_window`) — so a
 *   short spike (a big upload, a GC peak) never triggers a recycle, and with
 *   a window of 0 the first sample over the limit does.
 * - Only ready workers are judged (a booting one is still loading, a
 *   stopping one is already going); a worker missing from a round of samples
 *   is forgotten.
 * - The answer is every due worker, most over the limit first. The core
 *   recycles them like `max_worker_lifetime` does: the replacement first,
 *   the old one retired once it is ready, at most one recycle (age or
 *   memory) in flight at a time — so all workers leaking at the same rate
 *   are never replaced at once. The others stay due and go one after the
 *   other.
 * - A worker due within {@link YOUNG_FACTOR} windows of its first sample is
 *   flagged `young`: the limit is probably below what a fresh worker needs,
 *   and the core should say so in its log (it would otherwise recycle
 *   forever, quietly).
 *
 * @module
 */

import type { Config } from "../config/types.ts";

/** What the memory watch needs to know. */
export interface MemorySettings {
  /** The limit in bytes; 0 turns the watch off. */
  limitBytes: number;
  /** How long a worker must stay above the limit before it is recycled, in ms. */
  windowMs: number;
}

/** The memory watch's settings from a config (`max_worker_memory` is in MiB there). */
export function memorySettingsOf(config: Config): MemorySettings {
  return {
    limitBytes: Math.round(config.max_worker_memory * 1024 * 1024),
    windowMs: config.max_worker_memory_window * 1000,
  };
}

/** One ready worker's memory (its process group's) in a sampling round. */
export interface MemorySample {
  /** The worker's serial (the core's identity of a worker record). */
  serial: number;
  memoryBytes: number;
}

/** A worker that has been above the limit for the whole window. */
export interface MemoryVerdict {
  serial: number;
  memoryBytes: number;
  /** When it was first seen above the limit (monotonic ms). */
  overSince: number;
  /** Due soon after it was first sampled: the limit may be too low for a fresh worker. */
  young: boolean;
}

/** A due worker this soon (in windows, at least one interval) after its first sample is "young". */
export const YOUNG_FACTOR = 2;

/**
 * How often to sample memory: twice per window so a worker over the limit is
 * confirmed within about 1.5 windows, but at most every second and at least
 * every 5 s. With the default window (10 s) that is one wake-up every 5 s.
 */
export function memorySampleIntervalMs(windowMs: number): number {
  return Math.min(5000, Math.max(1000, windowMs / 2));
}

/** The state of the watch: when each worker was first seen over the limit. */
export class MemoryWatch {
  #over = new Map<number, { since: number; firstSeen: number }>();
  #firstSeen = new Map<number, number>();

  constructor(readonly settings: MemorySettings) {}

  /** Whether the watch is on. */
  get enabled(): boolean {
    return this.settings.limitBytes > 0;
  }

  /**
   * Take one round of samples (every ready worker's memory) and return the
   * workers due for a recycle, most over the limit first.
   */
  observe(now: number, samples: readonly MemorySample[]): MemoryVerdict[] {
    if (!this.enabled) return [];
    const seen = new Set<number>();
    const due: MemoryVerdict[] = [];
    for (const { serial, memoryBytes } of samples) {
      seen.add(serial);
      const firstSeen = this.#firstSeen.get(serial) ?? now;
      this.#firstSeen.set(serial, firstSeen);
      if (memoryBytes <= this.settings.limitBytes) {
        this.#over.delete(serial);
        continue;
      }
      const over = this.#over.get(serial) ?? { since: now, firstSeen };
      this.#over.set(serial, over);
      if (now - over.since >= this.settings.windowMs) {
        const youngWithin = Math.max(
          YOUNG_FACTOR * this.settings.windowMs,
          memorySampleIntervalMs(this.settings.windowMs),
        );
        due.push({
          serial,
          memoryBytes,
          overSince: over.since,
          young: over.since - firstSeen <= youngWithin,
        });
      }
    }
    for (const serial of [...this.#firstSeen.keys()]) {
      if (!seen.has(serial)) {
        this.#firstSeen.delete(serial);
        this.#over.delete(serial);
      }
    }
    return due.sort((a, b) => b.memoryBytes - a.memoryBytes || a.serial - b.serial);
  }

  /** Forget a worker (it was recycled or exited), so a stale record cannot fire. */
  forget(serial: number): void {
    this.#over.delete(serial);
    this.#firstSeen.delete(serial);
  }
}
