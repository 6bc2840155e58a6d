/**
 * The master process's own resources, for the standard `process_*` series
 * of `/metrics` (docs/operations.md, "Metrics"), read from /proc/self on
 * each scrape and never on a timer: `stat` (CPU time, RSS, virtual size,
 * start time), `/proc/stat`'s boot time, the entries of `fd`, and `limits`.
 *
 * Invariants: never throws; undefined when /proc cannot be read (not
 * Linux, or /proc not mounted), so the series are left out rather than 0.
 *
 * @module
 */

import { procUnits } from "./tree.ts";
import type { ProcessMetrics } from "../control/metrics_snapshot.ts";

/** The fields of `/proc/<pid>/stat` the `process_*` series need, in /proc's units. */
export interface SelfStat {
  /** utime + stime, clock ticks. */
  ticks: number;
  /** Clock ticks after boot when the process started. */
  startTicks: number;
  virtualBytes: number;
  residentPages: number;
}

/** Parses `/proc/self/stat`; undefined for text of another shape. Exported for tests. */
export function parseSelfStat(text: string): SelfStat | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  // Fields after ")": state(3) … utime(14) stime(15) … starttime(22) vsize(23) rss(24).
  const f = text.slice(close + 2).split(" ");
  const [utime, stime, startTicks, virtualBytes, residentPages] = [11, 12, 19, 20, 21].map((i) =>
    Number(f[i])
  );
  const all = [utime, stime, startTicks, virtualBytes, residentPages];
  if (!all.every((n) => Number.isFinite(n) && n >= 0)) return undefined;
  return { ticks: utime + stime, startTicks, virtualBytes, residentPages };
}

/** The soft "Max open files" of `/proc/<pid>/limits`; undefined when unlimited or absent. */
export function parseMaxOpenFiles(text: string): number | undefined {
  const m = text.match(/^Max open files\s+(\d+|unlimited)\s/m);
  return m && m[1] !== "unlimited" ? Number(m[1]) : undefined;
}

/** The `btime` line of `/proc/stat`: when the machine booted, seconds since the epoch. */
export function parseBootTime(text: string): number | undefined {
  const m = text.match(/^btime (\d+)$/m);
  return m ? Number(m[1]) : undefined;
}

/**
 * Reads the master's `process_*` figures now.
 *
 * @example Usage
 * ```ts
 * import { sampleSelf } from "./self.ts";
 * sampleSelf()?.openFds; // e.g. 23
 * ```
 */
export function sampleSelf(): ProcessMetrics | undefined {
  try {
    const stat = parseSelfStat(Deno.readTextFileSync("/proc/self/stat"));
    const boot = parseBootTime(Deno.readTextFileSync("/proc/stat"));
    if (stat === undefined || boot === undefined) return undefined;
    const { pageSize, ticks } = procUnits();
    let openFds = 0;
    // The listing's own fd is among the entries; it is open only while listing.
    for (const _ of Deno.readDirSync("/proc/self/fd")) openFds++;
    return {
      residentBytes: stat.residentPages * pageSize,
      virtualBytes: stat.virtualBytes,
      cpuSeconds: stat.ticks / ticks,
      openFds: Math.max(0, openFds - 1),
      maxFds: parseMaxOpenFiles(Deno.readTextFileSync("/proc/self/limits")),
      startTimeSeconds: boot + stat.startTicks / ticks,
    };
  } catch {
    return undefined;
  }
}
