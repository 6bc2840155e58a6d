/**
 * What every check of `arbiter verify` works with: the private master, the
 * plan of the run, the options, and a few waits the checks share. Each check
 * module exports one async function that takes a {@link RunContext} and
 * returns its {@link CheckResult}s; `run.ts` calls them in order.
 *
 * @module
 */

import type { VerifyPlan } from "./plan.ts";
import type { PrivateMaster } from "./private_master.ts";
import type { CheckResult } from "./report.ts";
import type { WorkerInfo } from "./master_log.ts";
import { readStat } from "./proc.ts";

/** The options of one verify run. */
export interface VerifyOptions {
  /** The URL path requested (default "/"). */
  path: string;
  /** HUPs per connection mode (default 3). */
  reloads: number;
}

/** Shared by the checks of one run. */
export interface RunContext {
  master: PrivateMaster;
  plan: VerifyPlan;
  options: VerifyOptions;
  /** One line of progress on stderr. */
  progress(text: string): void;
}

/** A check's answer: one or more rows of the report. */
export type CheckOutcome = CheckResult[];

/** Resolves after `ms` milliseconds (for the protocol's own timing, never to wait for an event). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Seconds with one decimal (or two below 1 s), for evidence. */
export function secs(ms: number): string {
  const s = ms / 1000;
  return `${s < 1 ? s.toFixed(2) : s.toFixed(1)} s`;
}

/** "worker 0 (pid 1234)". */
export function who(w: Pick<WorkerInfo, "id" | "pid">): string {
  return `worker ${w.id} (pid ${w.pid})`;
}

/**
 * Waits until as many workers of the newest generation are ready as the
 * plan runs (after a worker was killed or replaced). Resolves false on
 * timeout or when the master exits.
 */
export async function waitAllReady(ctx: RunContext, timeoutMs: number): Promise<boolean> {
  const enough = () => ctx.master.workers.readyCurrent().length >= ctx.plan.workers;
  if (enough()) return true;
  return (await ctx.master.waitFor(enough, timeoutMs, ctx.master.events.length)) !== undefined;
}

/** How long the run waits for workers to (re)boot: the boot timeout and a margin, capped. */
export function bootWaitMs(ctx: RunContext): number {
  return Math.min(ctx.plan.bootTimeoutS * 1000, 60_000) + 3000;
}

/** True if `pid` is still a direct child of the private master (so verify may signal it). */
export function isMastersChild(ctx: RunContext, pid: number): boolean {
  const st = readStat(pid);
  return st !== undefined && st.state !== "Z" && st.ppid === ctx.master.pid;
}
