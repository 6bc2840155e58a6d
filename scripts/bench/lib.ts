/**
 * Shared helpers of the benchmarks (`scripts/bench/run.ts`) and the chaos and
 * soak scripts (`scripts/chaos/`): /proc readings, wrk and statistics here;
 * the apps, the tools and starting each supervisor under test in
 * supervisors.ts (re-exported). Everything talks to 127.0.0.1 only,
 * and every load loop is bounded in count and time.
 *
 * @module
 */

import {
  type ArbiterProcess,
  childrenOf,
  freePort,
  isWorkerProgram,
  MAIN_TS,
  REPO_ROOT,
  startArbiter,
  waitFor,
  waitForHttp,
} from "../../tests/_harness.ts";
import { allStats, descendantsOf, type ProcStat, readStat } from "../../src/verify/proc.ts";

export { freePort, isWorkerProgram, MAIN_TS, REPO_ROOT, startArbiter, waitFor, waitForHttp };
export type { ArbiterProcess };
export * from "./supervisors.ts";

/** Sleep. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Now, in ms (monotonic). */
export function now(): number {
  return performance.now();
}

// ---------------------------------------------------------------------------
// /proc

/** Clock ticks per second (USER_HZ): 100 on every Linux this targets. */
export const CLK_TCK = 100;

/** utime + stime of a process (all its threads), in seconds. */
export function cpuSeconds(pid: number): number {
  const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = text.slice(text.lastIndexOf(")") + 2).trim().split(/\s+/);
  // Fields 14 and 15 (utime, stime) are at 11 and 12 after comm/state.
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** cutime + cstime: CPU seconds of the process's reaped (waited-for) children. */
export function childCpuSeconds(pid: number): number {
  const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = text.slice(text.lastIndexOf(")") + 2).trim().split(/\s+/);
  return (Number(f[13]) + Number(f[14])) / CLK_TCK;
}

/** A numeric field of /proc/<pid>/status (kB for Vm*), or NaN. */
export function statusField(pid: number, field: string, task?: number): number {
  try {
    const path = task === undefined ? `/proc/${pid}/status` : `/proc/${pid}/task/${task}/status`;
    const m = Deno.readTextFileSync(path).match(new RegExp(`^${field}:\\s*(\\d+)`, "m"));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** VmRSS in kB. */
export function rssKb(pid: number): number {
  return statusField(pid, "VmRSS");
}

/** Open fds of a process. */
export function fdCount(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

/** Threads of a process. */
export function threadIds(pid: number): number[] {
  return [...Deno.readDirSync(`/proc/${pid}/task`)].map((e) => Number(e.name)).sort((a, b) =>
    a - b
  );
}

/** Voluntary context switches per thread (tid → count). */
export function voluntarySwitches(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of threadIds(pid)) {
    const n = statusField(pid, "voluntary_ctxt_switches", tid);
    if (!Number.isNaN(n)) out.set(tid, n);
  }
  return out;
}

/** Sum over threads of the difference of two {@link voluntarySwitches} readings. */
export function switchesBetween(a: Map<number, number>, b: Map<number, number>): number {
  let total = 0;
  for (const [tid, n] of b) total += n - (a.get(tid) ?? 0);
  return total;
}

/**
 * Direct children of `pid`, zombies included: a scan of every
 * `/proc/<pid>/stat` for its ppid (the `children` files of
 * CONFIG_PROC_CHILDREN are not on every kernel, and are exact only while
 * the process is stopped).
 */
export function childPids(pid: number): number[] {
  return childrenOf(pid);
}

/** State letter of a process (R, S, Z, ...), or undefined when gone. */
export function stateOf(pid: number): string | undefined {
  return readStat(pid)?.state;
}

/** Children of `pid` whose stat passes `keep`, from one scan of `/proc`. */
function childrenWhere(pid: number, keep: (stat: ProcStat) => boolean): number[] {
  return allStats().filter((s) => s.ppid === pid && keep(s)).map((s) => s.pid).sort((a, b) =>
    a - b
  );
}

/** Children that are not zombies. */
export function liveChildren(pid: number): number[] {
  return childrenWhere(pid, (s) => s.state !== "Z");
}

/** Zombie children. */
export function zombieChildren(pid: number): number[] {
  return childrenWhere(pid, (s) => s.state === "Z");
}

/** Descendants (children, grandchildren, ...) of `pid`, from one scan of `/proc`. */
export function descendants(pid: number): number[] {
  return descendantsOf(pid).map((s) => s.pid);
}

// ---------------------------------------------------------------------------
// Statistics

/** Median of the values (NaN when empty). */
export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Percentile (nearest rank) of the values. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** "median (min–max)" with `digits` decimals. */
export function spread(xs: number[], digits = 0, unit = ""): string {
  if (xs.length === 0) return "n/a";
  const f = (x: number) => x.toFixed(digits) + unit;
  if (xs.length === 1) return f(xs[0]);
  return `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
}

// ---------------------------------------------------------------------------
// wrk

/** What one wrk run reported. */
export interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  connectErrors: number;
  readErrors: number;
  writeErrors: number;
  timeouts: number;
  non2xx: number;
  /** connect + read + write + timeout + non-2xx. */
  failed: number;
  raw: string;
}

/** wrk's knobs used everywhere: 1 thread, 16 connections, 2 s request timeout. */
export interface WrkOptions {
  seconds: number;
  connections?: number;
  threads?: number;
  /** Send `Connection: close`: a new connection for every request. */
  close?: boolean;
}

/** The exact wrk argv for a run (printed into BENCHMARKS.md). */
export function wrkArgs(url: string, o: WrkOptions): string[] {
  return [
    `-t${o.threads ?? 1}`,
    `-c${o.connections ?? 16}`,
    `-d${o.seconds}s`,
    "--timeout",
    "2s",
    ...(o.close ? ["-H", "Connection: close"] : []),
    url,
  ];
}

/** Run wrk to completion (bounded by its -d plus a margin) and parse its report. */
export async function runWrk(url: string, o: WrkOptions): Promise<WrkResult> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), (o.seconds + 15) * 1000);
  try {
    const out = await new Deno.Command("wrk", {
      args: wrkArgs(url, o),
      stdout: "piped",
      stderr: "piped",
      signal: ac.signal,
    }).output();
    const raw = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return parseWrk(raw);
  } finally {
    clearTimeout(timer);
  }
}

/** Parse wrk's text report. */
export function parseWrk(raw: string): WrkResult {
  const num = (re: RegExp) => Number(raw.match(re)?.[1] ?? 0);
  const m = raw.match(/(\d+) requests in ([\d.]+)(ms|s|m)/);
  const requests = m ? Number(m[1]) : 0;
  const seconds = m ? Number(m[2]) * (m[3] === "ms" ? 0.001 : m[3] === "m" ? 60 : 1) : NaN;
  const se = raw.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  const r: WrkResult = {
    requests,
    seconds,
    rps: num(/Requests\/sec:\s*([\d.]+)/),
    connectErrors: se ? Number(se[1]) : 0,
    readErrors: se ? Number(se[2]) : 0,
    writeErrors: se ? Number(se[3]) : 0,
    timeouts: se ? Number(se[4]) : 0,
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
    failed: 0,
    raw,
  };
  r.failed = r.connectErrors + r.readErrors + r.writeErrors + r.timeouts + r.non2xx;
  return r;
}

/** "connect/read/write/timeout/non2xx" of a wrk result. */
export function errorBreakdown(r: WrkResult): string {
  return `c${r.connectErrors}/r${r.readErrors}/w${r.writeErrors}/t${r.timeouts}/n${r.non2xx}`;
}
