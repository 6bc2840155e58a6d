/**
 * Starts one worker: the exec shim (this program in its hidden mode) with an
 * {@link ExecSpec}, which becomes the worker command in place. The returned
 * `Deno.ChildProcess` is the only handle through which the master signals a
 * worker, so it can never signal a process that is not its own child.
 *
 * @module
 */

import { EXEC_MODE_ARG, EXEC_SPEC_ENV, type ExecSpec } from "./exec_shim.ts";
import type { SelfInvocation } from "./self.ts";

/** What one worker process needs. */
export interface WorkerLaunch {
  spec: ExecSpec;
  /** The worker's starting directory. */
  cwd?: string;
  /** The environment of the shim itself (the master's own, which `deno run` needs). */
  shimEnv: Record<string, string>;
  /** "inherit" passes worker output straight through; "piped" captures it. */
  output: "inherit" | "piped";
  /** Overrides `output` for stderr alone (kept for "cannot boot" while stdout passes through). */
  stderr?: "inherit" | "piped";
  /** The child's stdin: the master's (workers, as in Gunicorn), or none (hooks). */
  stdin?: "inherit" | "null";
}

/** Starts the shim for `launch`. Throws when the process cannot be created. */
export function spawnWorker(self: SelfInvocation, launch: WorkerLaunch): Deno.ChildProcess {
  return new Deno.Command(self.executable, {
    args: [...self.args, EXEC_MODE_ARG],
    env: { ...launch.shimEnv, [EXEC_SPEC_ENV]: JSON.stringify(launch.spec) },
    clearEnv: true,
    cwd: launch.cwd,
    stdin: launch.stdin ?? "inherit",
    stdout: launch.output,
    stderr: launch.stderr ?? launch.output,
  }).spawn();
}
