/**
 * Per-worker CPU percentages and sizes for people. The figures themselves
 * are read from `/proc` per process group by tree.ts.
 *
 * {@link CpuMeter} is pure state: it turns successive CPU-time samples into
 * a percentage, like `pidusage` does for PM2.
 *
 * @module
 */

/**
 * Recent CPU use per process, in percent of one core (100 = one core busy,
 * as `top` and `pm2 list` show it). The first sample of a pid gives its
 * average over its life; later ones the average since the previous sample
 * at least {@link CpuMeter.minIntervalMs} earlier (so two quick calls do not
 * divide by nearly nothing).
 */
export class CpuMeter {
  static readonly minIntervalMs = 500;
  #last = new Map<number, { at: number; cpuSeconds: number; percent: number }>();

  /**
   * @param pid The process.
   * @param cpuSeconds Its CPU time now ({@link ProcSample.cpuSeconds}).
   * @param now Monotonic ms.
   * @param ageMs How long the process has lived (for its first sample).
   */
  percent(pid: number, cpuSeconds: number, now: number, ageMs: number): number {
    const last = this.#last.get(pid);
    let percent: number;
    if (last === undefined || cpuSeconds < last.cpuSeconds) {
      percent = ageMs > 0 ? (100 * cpuSeconds * 1000) / ageMs : 0;
    } else if (now - last.at < CpuMeter.minIntervalMs) {
      return last.percent;
    } else {
      percent = (100 * (cpuSeconds - last.cpuSeconds) * 1000) / (now - last.at);
    }
    percent = Math.max(0, Math.round(percent * 10) / 10);
    this.#last.set(pid, { at: now, cpuSeconds, percent });
    return percent;
  }

  /** Drop every pid not in `alive`, so the meter does not grow with dead workers. */
  retain(alive: Iterable<number>): void {
    const keep = new Set(alive);
    for (const pid of this.#last.keys()) if (!keep.has(pid)) this.#last.delete(pid);
  }
}

/** Sizes for people: `512.0 MiB`, `1.5 GiB`, `800 KiB`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}
