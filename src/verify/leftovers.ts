/**
 * The last check of `arbiter verify`: once the private master has exited,
 * nothing it started may still run. Two sources are compared: every process
 * seen under the master while it ran (pid and start time), and every process
 * now under verify itself — verify is the child subreaper of its tree, so a
 * process the worker left behind (double-forked, or orphaned when the worker
 * exited) is reparented to verify, not to PID 1.
 *
 * Whatever is left is reported, then killed, and orphans that already exited
 * are reaped, so verify never leaves anything behind itself.
 *
 * @module
 */

import { reapIfExited } from "../sys/process.ts";
import { delay, type RunContext } from "./context.ts";
import type { SeenProcess } from "./private_master.ts";
import { commandLine, descendantsOf, readStat, stillRunning } from "./proc.ts";
import type { CheckResult } from "./report.ts";

/** How long processes may take to go after the master has exited (they are being killed). */
const SETTLE_MS = 1000;

/** Processes below verify other than the master, running or not. */
function underVerify(masterPid: number): SeenProcess[] {
  return descendantsOf(Deno.pid)
    .filter((p) => p.pid !== masterPid)
    .map((p) => ({ pid: p.pid, starttime: p.starttime, command: commandLine(p.pid) }));
}

/** Reaps orphans that were reparented to verify and have exited. */
function reapOrphans(masterPid: number): void {
  for (const p of descendantsOf(Deno.pid)) {
    if (p.ppid === Deno.pid && p.pid !== masterPid && p.state === "Z") reapIfExited(p.pid);
  }
}

/** Checks that nothing survived the private master, and cleans up what did. */
export async function checkLeftovers(ctx: RunContext): Promise<CheckResult> {
  const { master } = ctx;
  const left = () => {
    reapOrphans(master.pid);
    for (const p of underVerify(master.pid)) master.adopt(p);
    return master.survivors();
  };
  const until = performance.now() + SETTLE_MS;
  while (left().length > 0 && performance.now() < until) await delay(20);
  const survivors = left();
  if (survivors.length === 0) {
    return {
      id: "leftovers",
      status: "pass",
      evidence: `the master exited and none of the ${master.workers.all().length} worker ` +
        "process(es) it ran, nor anything they started, is still running",
    };
  }
  for (const p of survivors) {
    if (stillRunning(p.pid, p.starttime)) {
      try {
        Deno.kill(p.pid, "SIGKILL");
      } catch { /* gone meanwhile */ }
    }
  }
  const list = survivors.slice(0, 3).map((p) => {
    const parent = readStat(p.pid)?.ppid;
    return `pid ${p.pid} "${p.command.slice(0, 60)}"` +
      (parent === Deno.pid ? " (orphaned)" : "");
  });
  return {
    id: "leftovers",
    status: "fail",
    evidence: `${survivors.length} process(es) still ran ${SETTLE_MS / 1000} s after the master ` +
      `exited (verify killed them): ${list.join(", ")}${survivors.length > 3 ? ", …" : ""}`,
    fix: "make what your worker starts exit with it: arbiter stops the worker's whole " +
      "process group, so never let a child leave it (setsid, setpgid, daemonizing); stop " +
      "children on TERM and wait for them, or have them exit when their parent dies " +
      "(PR_SET_PDEATHSIG)",
  };
}
