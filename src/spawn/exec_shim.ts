/**
 * The hidden exec mode: the short-lived process between the master and a
 * worker. `Deno.Command` cannot run code between fork and exec, so the master
 * starts its own executable in this mode; it arranges the fds and process
 * attributes a worker needs and then `execve`s the worker command in place —
 * same pid, so the worker is the master's direct child with no wrapper left.
 *
 * Steps, in the order that matters:
 *   1. parent-death signal (then check the master is still our parent: if it
 *      died before prctl ran we were already reparented and would never get it);
 *   2. own process group, so a terminal's Ctrl-C reaches the master only;
 *   3. listening sockets moved to fds 3, 4, … (via temporaries above the
 *      targets, so a source that sits on a target is never clobbered);
 *   4. every other fd marked close-on-exec, so none of the master's leaks;
 *   5. umask, then supplementary groups, gid, uid dropped (uid last);
 *   6. signal state reset (mask empty, or only SIGUSR1 when the spec says so),
 *      `LISTEN_PID` set to our pid, execve.
 * On failure it prints one line and exits 127 (not found) or 126 (other).
 *
 * @module
 */

import * as libc from "../sys/libc.ts";
import * as proc from "../sys/process.ts";

/** First argument that selects the exec mode. Not a public interface. */
export const EXEC_MODE_ARG = "__arbiter_exec";
/** Environment variable carrying the {@link ExecSpec} as JSON. */
export const EXEC_SPEC_ENV = "ARBITER_EXEC_SPEC";
/** Exit code of the shim when the program was not found (as in shells). */
export const EXIT_NOT_FOUND = 127;
/** Exit code of the shim when execve or the set-up failed otherwise. */
export const EXIT_CANNOT_EXEC = 126;

/** What the master asks the shim to run. */
export interface ExecSpec {
  /** Absolute path of the program (already resolved). */
  program: string;
  argv: string[];
  /** The complete worker environment; the shim adds `LISTEN_PID`. */
  env: Record<string, string>;
  /** The master's fds of the listening sockets, to appear at 3, 4, … */
  fds: number[];
  /** Variables the shim sets to its own pid (the worker's, after exec), e.g. WATCHDOG_PID. */
  pidEnv?: string[];
  /** The master's pid: if our parent is no longer it, we exit at once. */
  masterPid: number;
  umask?: number;
  uid?: number;
  gid?: number;
  /** Start the program with SIGUSR1 blocked (worker_usr1 = "blocked"); never for hooks. */
  blockUsr1?: boolean;
}

const SIGKILL = 9;

function fail(code: number, message: string): never {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(`arbiter: ${message}\n`));
  } catch { /* stderr closed; the exit code still tells */ }
  Deno.exit(code);
}

/** Runs the exec mode; never returns. */
export function runExecShim(): never {
  const raw = Deno.env.get(EXEC_SPEC_ENV);
  if (!raw) fail(EXIT_CANNOT_EXEC, `${EXEC_MODE_ARG} is internal to arbiter`);
  const spec = JSON.parse(raw) as ExecSpec;
  try {
    proc.setParentDeathSignal(SIGKILL);
    if (proc.getppid() !== spec.masterPid) Deno.exit(EXIT_CANNOT_EXEC);
    proc.newProcessGroup();
    const first = 3;
    const temporaries = spec.fds.map((fd) =>
      libc.fcntl(fd, libc.F_DUPFD_CLOEXEC, first + spec.fds.length)
    );
    temporaries.forEach((tmp, i) => libc.dup2(tmp, first + i));
    proc.cloexecFrom(first + spec.fds.length);
    if (spec.umask !== undefined) libc.umask(spec.umask);
    if (spec.uid !== undefined || spec.gid !== undefined) {
      proc.dropPrivileges(spec.uid ?? Deno.uid()!, spec.gid ?? Deno.gid()!);
    }
    proc.resetSignalsForExec(spec.blockUsr1 === true);
  } catch (error) {
    fail(EXIT_CANNOT_EXEC, `cannot prepare worker ${JSON.stringify(spec.argv[0])}: ${error}`);
  }
  const env = { ...spec.env };
  if (spec.fds.length > 0) env.LISTEN_PID = String(Deno.pid);
  for (const key of spec.pidEnv ?? []) env[key] = String(Deno.pid);
  const errno = proc.execve(spec.program, spec.argv, env);
  const ENOENT = 2;
  fail(
    errno === ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC,
    `cannot execute ${JSON.stringify(spec.argv[0])} (${spec.program}): ${libc.strerror(errno)}`,
  );
}
