/**
 * A worker's process group is its boundary: the exec shim makes every worker
 * (and hook) the leader of a group named by its pid, and whatever it starts
 * stays in that group unless it leaves on purpose (`setsid`, `setpgid`).
 * This module signals such a group, and only when it is provably ours.
 *
 * - While the leader is unreaped (a live worker, or one whose exit the loop
 *   has not handled), its pid — and so its group's number — cannot be
 *   reused: {@link signalWorkerGroup} signals the group once the leader's
 *   own pgid says the shim has made it.
 * - Once the leader has been reaped and the group has emptied, the kernel
 *   may hand the number out again, to a stranger or to another of our own
 *   workers. So {@link sweepGroup} checks before each signal that a live
 *   process with that pid does not exist (one would be a newcomer that took
 *   the number), that every member is in the master's session (the shim
 *   calls setpgid, never setsid; a stranger's group lives in its own
 *   session) and that no member is another live worker. Only then does one
 *   kill(-pgid) reach them all at once, including any child forked
 *   meanwhile. What is left of the race (the group emptying and its number
 *   being reused between the scan and the signal) needs the kernel's pid
 *   counter to wrap within microseconds.
 *
 * Cost: an empty group (the common case) is one kill(-pgid, 0); only a group
 * that still has processes is looked up in /proc.
 *
 * @module
 */

import { parseStat, type ProcStat, readStat } from "../verify/proc.ts";
import { processGroupExists } from "../sys/process.ts";

/** What a sweep found. */
export interface GroupSignalResult {
  /** Processes found in the group (not counting zombies), before the signal. */
  members: number;
  /** Why the group was left alone, when it was. */
  refused?: string;
}

/** Every process in /proc, as read now (ones that vanish midway are skipped). */
function allProcesses(): ProcStat[] {
  const found: ProcStat[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = parseStat(Deno.readTextFileSync(`/proc/${entry.name}/stat`));
      if (stat) found.push(stat);
    } catch { /* exited while we looked */ }
  }
  return found;
}

let ownSession: number | undefined;

function mySession(): number {
  ownSession ??= readStat(Deno.pid)!.sid;
  return ownSession;
}

function plausibleGroup(pgid: number): boolean {
  return Number.isSafeInteger(pgid) && pgid > 1 && pgid !== Deno.pid;
}

/**
 * Signals the group of the unreaped worker `pid`. Returns false when it has
 * no group of its own yet (still the exec shim) or is gone: the caller then
 * signals the process itself.
 */
export function signalWorkerGroup(pid: number, signal: Deno.Signal): boolean {
  if (!plausibleGroup(pid) || readStat(pid)?.pgid !== pid) return false;
  try {
    Deno.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Signals (without `signal`: only counts) what is left in group `pgid`
 * after its leader was reaped, if the group is provably ours (see the
 * module text).
 *
 * @param otherWorkers pids of every live worker of the master
 */
export function sweepGroup(
  pgid: number,
  signal: Deno.Signal | undefined,
  otherWorkers: ReadonlySet<number>,
): GroupSignalResult {
  if (!plausibleGroup(pgid)) return { members: 0, refused: `${pgid} is not a worker's group` };
  if (!processGroupExists(pgid)) return { members: 0 };
  const leader = readStat(pgid);
  if (leader && leader.state !== "Z") {
    return { members: 0, refused: `pid ${pgid} belongs to a newer process` };
  }
  const session = mySession();
  let members = 0;
  for (const p of allProcesses()) {
    if (p.pgid !== pgid || p.state === "Z") continue;
    if (p.sid !== session) return { members: 0, refused: `group ${pgid} is in another session` };
    if (otherWorkers.has(p.pid)) {
      return { members: 0, refused: `group ${pgid} holds another worker (pid ${p.pid})` };
    }
    members++;
  }
  if (members > 0 && signal !== undefined) {
    try {
      Deno.kill(-pgid, signal);
    } catch { /* emptied in between: nothing left to signal */ }
  }
  return { members };
}
