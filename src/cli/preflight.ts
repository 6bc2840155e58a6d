/**
 * The pre-flight checks: everything about a loaded config that can be found
 * wrong before anything is bound, written or started (docs/contract.md,
 * "Configuration", "Security"). One function, called by `main` for
 * `--check-config` and for a real start, so a config that passes
 * `--check-config` does not then fail at start-up for a reason that could have
 * been seen.
 *
 * What is checked here (the schema and `loadConfig` have already checked
 * types, ranges, addresses, `chdir` and the log file's directory):
 * - the worker command and every hook program resolve to executables;
 * - `user` and `group` resolve, and the master may switch workers to them;
 * - the reload paths exist (when `reload` is on);
 * - what the kernel would refuse at exec or bind (NUL bytes, argument and
 *   environment sizes, two binds naming the same address): config/kernel_limits.ts;
 * - the pidfile path holds nothing that is not a pidfile (a symlink, FIFO,
 *   directory, device …) and its directory exists; at a real start, also
 *   that it does not name another live process;
 * - every directory the master will create a file in (control socket,
 *   `unix:` binds, pidfile, log file) exists, is a directory and is
 *   writable by the master's user, and a runtime directory for its private
 *   sockets can be had (src/cli/directories.ts): a read-only root
 *   filesystem is reported here, naming the key to change.
 *
 * Exit codes follow docs/contract.md, "Files and exit codes": config problems 2
 * (all of them listed, one per line, directory problems included); at a real start an unexecutable command
 * is 3 and a pidfile problem is 1, as they would have been later.
 * `--check-config` reports everything as exit 2.
 *
 * @module
 */

import type { Config } from "../config/types.ts";
import { ArbiterError, ConfigError, ExitCode } from "../errors.ts";
import { checkHooks } from "../hooks/run.ts";
import { bindClashes, kernelLimitProblems } from "../config/kernel_limits.ts";
import { workerProgram } from "../master/generation.ts";
import { Pidfile } from "../pidfile/pidfile.ts";
import { checkReloadPaths, reloadPathsOf } from "../reload/watch.ts";
import { identityProblem, resolveIdentity } from "../spawn/identity.ts";
import { chooseRuntimeDir, directoryProblems, type RuntimeDir } from "./directories.ts";

export type { RuntimeDir };

/** How {@link preflight} runs. */
export interface PreflightOptions {
  /** `--check-config`: report every problem as a config error; ignore a live pidfile. */
  checkOnly: boolean;
  /** The master's environment (for `PATH`). */
  env: Record<string, string>;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Checks `config` before anything is bound or written.
 *
 * @returns where the master's private runtime files go
 * @throws {ArbiterError} exit 2 listing every config problem; at a real
 *   start, exit 3 when the command cannot be executed and exit 1 when the
 *   pidfile cannot be claimed
 */
export async function preflight(config: Config, opts: PreflightOptions): Promise<RuntimeDir> {
  const problems = [
    ...kernelLimitProblems(config, opts.env),
    ...await bindClashes(config),
    ...checkHooks(config, opts.env),
    ...(config.reload ? checkReloadPaths(reloadPathsOf(config)) : []),
    ...directoryProblems(config),
  ];
  const runtimeDir = chooseRuntimeDir(config, opts.env);
  if ("problem" in runtimeDir) problems.push(runtimeDir.problem);
  try {
    const problem = identityProblem(resolveIdentity(config.user, config.group));
    if (problem !== undefined) problems.push(problem);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(error.message);
  }
  let command: string | undefined;
  try {
    workerProgram(config, opts.env);
  } catch (error) {
    command = messageOf(error);
  }
  let pidfile: string | undefined;
  if (config.pidfile !== undefined) {
    try {
      Pidfile.check(config.pidfile, { liveness: !opts.checkOnly });
    } catch (error) {
      pidfile = messageOf(error);
    }
  }
  if (opts.checkOnly) {
    const all = [
      ...(command ? [`command: ${command}`] : []),
      ...problems,
      ...(pidfile ? [pidfile] : []),
    ];
    if (all.length > 0) throw new ConfigError(all.join("\n"));
    return runtimeDir as RuntimeDir;
  }
  if (problems.length > 0) throw new ConfigError(problems.join("\n"));
  // docs/contract.md, "Worker lifecycle": a command that cannot be executed
  // halts with 3, naming it.
  if (command !== undefined) throw new ArbiterError(ExitCode.WorkerBoot, command);
  if (pidfile !== undefined) throw new ArbiterError(ExitCode.Runtime, pidfile);
  return runtimeDir as RuntimeDir;
}
