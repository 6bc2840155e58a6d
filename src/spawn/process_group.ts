/**
 * A worker's process group is its boundary: the exec shim makes every worker
 * (and hook) the leader of a group named by its pid, and whatever it starts
 * stays in that group unless it leaves on purpose (`setsid`, `setpgid`).
 * This module signals such a group, and only when it is provably ours.
 *
 * The danger it guards against: once a group's leader has been reaped and
 * the group has emptied, the kernel may hand the number out again, to a
 * stranger or to another of our own workers. So before each signal:
 * - the leader `pgid` must not be a running process other than the worker
 *   it was (a live process with that pid after the worker was reaped is a
 *   newcomer that took the number: refused);
 * - members are the processes whose pgid is `pgid` and whose session is the
 *   master's (the shim calls setpgid, never setsid, so a worker's tree stays
 *   in our session; a stranger's group is in its own session);
 * - no member may be another live worker of ours.
 * Only then does one kill(-pgid) reach them all at once, including any child
 * forked meanwhile. What is left of the race (the group emptying and its
 * number being reused between the scan and the signal) needs the kernel's
 * pid counter to wrap within microseconds.
 *
 * @module
 */

import { parseStat, type ProcStat } from "../verify/proc.ts";

/** What a group signal reached. */
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
  ownSession ??= parseStat(Deno.readTextFileSync("/proc/self/stat"))!.sid;
  return ownSession;
}

/**
 * Signals process group `pgid` if it is one of ours (see the module text).
 *
 * @param pgid the group: the pid its worker had
 * @param signal the signal, or undefined only to count the members
 * @param leader the worker's pid while it is still unreaped (its own group),
 *   undefined once it has been reaped (a leftover group)
 * @param otherWorkers pids of every other live worker of the master
 */
export function signalGroup(
  pgid: number,
  signal: Deno.Signal | undefined,
  leader: number | undefined,
  otherWorkers: ReadonlySet<number>,
): GroupSignalResult {
  if (!Number.isSafeInteger(pgid) || pgid <= 1 || pgid === Deno.pid) {
    return { members: 0, refused: `${pgid} is not a worker's group` };
  }
  const session = mySession();
  let members = 0;
  for (const p of allProcesses()) {
    if (p.pid === pgid && leader === undefined && p.state !== "Z") {
      return { members: 0, refused: `pid ${pgid} belongs to a newer process` };
    }
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
