/**
 * Who may speak for a worker: the worker's own process or one of its
 * descendants (a shell worker running `systemd-notify --ready` sends from a
 * child), as the kernel reports the sender — never a pid a message claims.
 * systemd's `NotifyAccess=all` within the worker's own tree, so to speak.
 *
 * Ancestry is read from `/proc/<pid>/stat` (field 4, the parent pid; the
 * command name before it may hold spaces and parentheses, so the fields are
 * split after the last ")"). The walk is bounded; a process that exited
 * meanwhile, or one in another pid namespace (pid 0), does not qualify.
 *
 * @module
 */

/** How many generations below the worker a sender may be. */
export const MAX_DEPTH = 32;

function parentOf(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    return Number.isSafeInteger(ppid) ? ppid : undefined;
  } catch {
    return undefined;
  }
}

/** True when `sender` is `worker` or a descendant of it, at most {@link MAX_DEPTH} levels down. */
export function speaksFor(sender: number, worker: number): boolean {
  if (!(sender > 0) || !(worker > 1)) return false;
  let pid: number | undefined = sender;
  for (let depth = 0; depth <= MAX_DEPTH && pid !== undefined && pid > 1; depth++) {
    if (pid === worker) return true;
    pid = parentOf(pid);
  }
  return false;
}
