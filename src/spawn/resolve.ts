/**
 * Finds the program a worker argv names, the way execvp(3) would: a name
 * with a slash is taken as a path (relative to the worker's directory), a
 * bare name is searched in the worker's `PATH`. Used by the master to refuse
 * a command that cannot run before anything starts, and by the exec shim to
 * pick the path it hands to execve.
 *
 * @module
 */

import { isAbsolute, join, resolve } from "node:path";

/** Why a command cannot be executed. */
export class CommandNotExecutable extends Error {
  constructor(readonly program: string, reason: string) {
    super(`cannot execute ${JSON.stringify(program)}: ${reason}`);
    this.name = "CommandNotExecutable";
  }
}

function isExecutableFile(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * Resolves `program` to an absolute path of an executable file.
 *
 * @param program argv[0] of the worker command
 * @param path the `PATH` the worker will see
 * @param cwd the directory the worker will start in
 * @throws {CommandNotExecutable} when nothing executable is found
 *
 * @example
 * ```ts
 * import { resolveCommand } from "./resolve.ts";
 * resolveCommand("sh", "/usr/bin:/bin", "/"); // "/usr/bin/sh" or "/bin/sh"
 * ```
 */
export function resolveCommand(program: string, path: string | undefined, cwd: string): string {
  if (program === "") throw new CommandNotExecutable(program, "empty program name");
  if (program.includes("/")) {
    const full = isAbsolute(program) ? program : resolve(cwd, program);
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(full);
    } catch {
      throw new CommandNotExecutable(program, `no such file (${full})`);
    }
    if (!info.isFile) throw new CommandNotExecutable(program, `${full} is not a regular file`);
    if (!isExecutableFile(full)) {
      throw new CommandNotExecutable(program, `${full} is not executable`);
    }
    return full;
  }
  for (const dir of (path ?? "/usr/local/bin:/usr/bin:/bin").split(":")) {
    const candidate = resolve(cwd, join(dir || ".", program));
    if (isExecutableFile(candidate)) return candidate;
  }
  throw new CommandNotExecutable(program, "not found in PATH");
}
