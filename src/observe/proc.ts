/**
 * Per-worker resident memory and CPU time from `/proc`, the
 * numbers `pm2 list` and uWSGI's `reload-on-rss` work from.
 *
 * - RSS: `/proc/<pid>/statm` field 2 (resident pages) × the page size
 *   (`sysconf(_SC_PAGESIZE)`: 4 KiB on x86_64, possibly 16 or 64 KiB on
 *   arm64 — never assumed). The worker process only, not its children.
 * - CPU: `/proc/<pid>/stat` `utime + stime` in clock ticks
 *   (`sysconf(_SC_CLK_TCK)`), as seconds. `comm` may hold spaces and
 *   parentheses, so fields are counted after the last `)`.
 *
 * Invariants: the caller passes only pids of its own live workers; a pid
 * that has gone (or cannot be read) gives undefined, never an exception.
 * Reading is two small files per worker, on demand only (no timer here).
 * {@link CpuMeter} is pure state: it turns successive CPU-time samples into
 * a percentage, like `pidusage` does for PM2.
 *
 * @module
 */

import * as libc from "../sys/libc.ts";

/** One process's resources at one moment. */
export interface ProcSample {
  /** Resident set size in bytes. */
  rssBytes: number;
  /** User + system CPU time consumed so far, in seconds. */
  cpuSeconds: number;
}

const _SC_CLK_TCK = 2;
const _SC_PAGESIZE = 30;
let units: { pageSize: number; ticks: number } | undefined;

/** Page size and clock ticks per second, asked of libc once. */
function procUnits(): { pageSize: number; ticks: number } {
  if (!units) {
    const pageSize = libc.sysconf(_SC_PAGESIZE);
    const ticks = libc.sysconf(_SC_CLK_TCK);
    units = { pageSize: pageSize > 0 ? pageSize : 4096, ticks: ticks > 0 ? ticks : 100 };
  }
  return units;
}

/**
 * Parse `/proc/<pid>/stat` and `/proc/<pid>/statm` text. Exported for tests.
 * Returns undefined for text that does not have the expected shape.
 */
export function parseProc(
  stat: string,
  statm: string,
  pageSize: number,
  ticks: number,
): ProcSample | undefined {
  const close = stat.lastIndexOf(")");
  if (close < 0) return undefined;
  // After ")": state (field 3) … utime (14) and stime (15) at offsets 11 and 12.
  const fields = stat.slice(close + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const resident = Number(statm.split(" ")[1]);
  if (![utime, stime, resident].every((n) => Number.isFinite(n) && n >= 0)) return undefined;
  return { rssBytes: resident * pageSize, cpuSeconds: (utime + stime) / ticks };
}

/**
 * The RSS and CPU time of `pid`, or undefined when it has gone or cannot be
 * read.
 *
 * @example Usage
 * ```ts
 * import { readProc } from "./proc.ts";
 * readProc(Deno.pid); // { rssBytes: 52428800, cpuSeconds: 0.42 }
 * ```
 */
export function readProc(pid: number): ProcSample | undefined {
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const statm = Deno.readTextFileSync(`/proc/${pid}/statm`);
    const { pageSize, ticks } = procUnits();
    return parseProc(stat, statm, pageSize, ticks);
  } catch {
    return undefined;
  }
}

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
