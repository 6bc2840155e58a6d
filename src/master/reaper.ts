/**
 * Reaps the children `Deno.Command` does not know: workers inherited across
 * an in-place upgrade (their exit is reported), and orphans reparented to the
 * master when it runs as PID 1 in a container (reaped silently, as tini does).
 * It scans `/proc` for zombies whose parent is this process and waits only for
 * those, never with `waitpid(-1)`, so it cannot steal a status Deno waits for.
 *
 * Part of the executor: it decides nothing; every decision is the core's
 * (src/core/), and this only carries one out or reports what happened.
 *
 * @module
 */

import type { ChildRegistry } from "../spawn/children.ts";
import { reapIfExited } from "../sys/process.ts";

/** An exit the reaper collected. */
export interface ReapedExit {
  pid: number;
  code: number;
  /** Signal name when a signal ended it. */
  signal: string | null;
}

const SIGNAL_NAMES: Record<number, string> = {
  1: "SIGHUP",
  2: "SIGINT",
  3: "SIGQUIT",
  4: "SIGILL",
  6: "SIGABRT",
  7: "SIGBUS",
  8: "SIGFPE",
  9: "SIGKILL",
  11: "SIGSEGV",
  13: "SIGPIPE",
  14: "SIGALRM",
  15: "SIGTERM",
};

/** Our zombie children, from /proc (state Z, parent = us). */
function zombieChildren(): number[] {
  const me = Deno.pid;
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z" && Number(fields[1]) === me) found.push(Number(entry.name));
    } catch { /* gone meanwhile */ }
  }
  return found;
}

/**
 * Reaps every zombie child that `registry` does not own. Returns the exits
 * of the ones in `watched` (inherited workers); others (orphans) are dropped.
 */
export function reapForeignChildren(
  registry: ChildRegistry,
  watched: ReadonlySet<number>,
): ReapedExit[] {
  const exits: ReapedExit[] = [];
  for (const pid of zombieChildren()) {
    if (registry.owns(pid)) continue;
    const status = reapIfExited(pid);
    if (status && watched.has(pid)) {
      const signal = status.signal
        ? SIGNAL_NAMES[status.signal] ?? `signal ${status.signal}`
        : null;
      exits.push({ pid, code: status.code, signal });
    }
  }
  return exits;
}
