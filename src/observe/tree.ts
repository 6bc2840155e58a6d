/**
 * A worker's memory and CPU as its whole process group's: a preforking server
 * (gunicorn `--preload`, puma in cluster mode) is one arbiter worker whose
 * memory is mostly in its children. The group is the worker's boundary (the
 * exec shim makes each worker the leader of a group of its own, pgid = its
 * pid), so the group is what is summed.
 *
 * - Memory: PSS from `/proc/<pid>/smaps_rollup` where it can be read, so a
 *   copy-on-write page shared by a preloaded master and its forks counts once
 *   over the group, split between its sharers, instead of once per process;
 *   RSS from `statm` for a member whose `smaps_rollup` cannot be read (an
 *   older kernel, another user's process without the right to read it). The
 *   RSS sum is kept beside it: it is what `ps` and most dashboards add up.
 * - CPU: `utime + stime + cutime + cstime` of every live member, so the time
 *   of children that exited and were reaped by a member stays counted (it
 *   moved into the reaper's `cutime`).
 *
 * Cost: one scan of `/proc` per round, whatever the number of workers (one
 * `stat` read per process on the machine), then `smaps_rollup` of the
 * members only. Rounds happen on demand (status, metrics, top) and on the
 * memory watch's slow timer, never on a timer of their own.
 *
 * Invariants: never throws; a process that vanishes mid-scan is left out; a
 * leader that is gone gives no entry (not a zero).
 *
 * @module
 */

import * as libc from "../sys/libc.ts";

/** One worker's process group at one moment. */
export interface TreeSample {
  /** PSS summed over the group, RSS for members whose PSS could not be read. */
  memoryBytes: number;
  /** "pss" when every member's PSS was read; "rss" when any fell back to RSS. */
  memorySource: "pss" | "rss";
  /** RSS summed over the group (shared pages counted once per process). */
  rssBytes: number;
  /** CPU seconds of the group, reaped children included. */
  cpuSeconds: number;
  /** Processes in the group, the leader included. */
  processes: number;
}

/** The fields of `/proc/<pid>/stat` a tree sample needs. */
export interface MemberStat {
  pgid: number;
  /** utime + stime + cutime + cstime, in clock ticks. */
  ticks: number;
  /** Resident pages (stat field 24). */
  residentPages: number;
  /** "Z" for a zombie: it holds no memory any more. */
  state: string;
}

/** Parses `/proc/<pid>/stat`; undefined for text of another shape. Exported for tests. */
export function parseMemberStat(text: string): MemberStat | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  // Fields after ")": state(3) ppid(4) pgrp(5) … utime(14) stime(15) cutime(16) cstime(17) … rss(24).
  const f = text.slice(close + 2).split(" ");
  const pgid = Number(f[2]);
  const times = [f[11], f[12], f[13], f[14]].map(Number);
  const residentPages = Number(f[21]);
  if (![pgid, residentPages, ...times].every((n) => Number.isFinite(n) && n >= 0)) return undefined;
  return { pgid, ticks: times.reduce((a, b) => a + b, 0), residentPages, state: f[0] };
}

/** The `Pss:` and `Rss:` lines of `smaps_rollup`, in bytes; undefined if absent. Exported for tests. */
export function parseRollup(text: string): { pss: number; rss: number } | undefined {
  const kib = (name: string) => {
    const m = text.match(new RegExp(`^${name}:\\s+(\\d+) kB$`, "m"));
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const pss = kib("Pss");
  const rss = kib("Rss");
  return pss === undefined || rss === undefined ? undefined : { pss, rss };
}

const _SC_CLK_TCK = 2;
const _SC_PAGESIZE = 30;
let units: { pageSize: number; ticks: number } | undefined;

/** The page size and clock ticks per second /proc's numbers are in (sysconf, read once). */
export function procUnits(): { pageSize: number; ticks: number } {
  if (!units) {
    const pageSize = libc.sysconf(_SC_PAGESIZE);
    const ticks = libc.sysconf(_SC_CLK_TCK);
    units = { pageSize: pageSize > 0 ? pageSize : 4096, ticks: ticks > 0 ? ticks : 100 };
  }
  return units;
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined; // gone, or not ours to read
  }
}

/**
 * Samples the process group of each leader pid, with one scan of `/proc`.
 *
 * @param leaders Worker pids (each its group's id).
 * @returns One entry per leader that is still there.
 *
 * @example Usage
 * ```ts
 * import { sampleTrees } from "./tree.ts";
 * sampleTrees([Deno.pid]).get(Deno.pid)?.memoryBytes;
 * ```
 */
export function sampleTrees(leaders: readonly number[]): Map<number, TreeSample> {
  const wanted = new Set(leaders.filter((p) => Number.isSafeInteger(p) && p > 0));
  const out = new Map<number, TreeSample>();
  if (wanted.size === 0) return out;
  const { pageSize, ticks } = procUnits();
  const groups = new Map<number, { pid: number; stat: MemberStat }[]>();
  let entries: Iterable<Deno.DirEntry>;
  try {
    entries = Deno.readDirSync("/proc");
  } catch {
    return out;
  }
  for (const entry of entries) {
    const pid = Number(entry.name);
    if (!Number.isSafeInteger(pid) || pid <= 0) continue;
    const text = readText(`/proc/${pid}/stat`);
    const stat = text === undefined ? undefined : parseMemberStat(text);
    // A leader that left its own group (setsid) is still summed under its pid.
    const group = stat && (wanted.has(stat.pgid) ? stat.pgid : wanted.has(pid) ? pid : undefined);
    if (stat === undefined || group === undefined) continue;
    let members = groups.get(group);
    if (!members) groups.set(group, members = []);
    members.push({ pid, stat });
  }
  for (const [leader, members] of groups) {
    if (!members.some((m) => m.pid === leader)) continue; // the worker itself is gone
    const sample: TreeSample = {
      memoryBytes: 0,
      memorySource: "pss",
      rssBytes: 0,
      cpuSeconds: 0,
      processes: members.length,
    };
    let cpuTicks = 0;
    for (const { pid, stat } of members) {
      cpuTicks += stat.ticks;
      if (stat.state === "Z") continue;
      const rollupText = readText(`/proc/${pid}/smaps_rollup`);
      const rollup = rollupText === undefined ? undefined : parseRollup(rollupText);
      const rss = stat.residentPages * pageSize;
      if (rollup) {
        sample.memoryBytes += rollup.pss;
        sample.rssBytes += rollup.rss;
      } else {
        sample.memorySource = "rss";
        sample.memoryBytes += rss;
        sample.rssBytes += rss;
      }
    }
    sample.cpuSeconds = cpuTicks / ticks;
    out.set(leader, sample);
  }
  return out;
}
