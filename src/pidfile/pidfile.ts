/**
 * The pidfile: `"<pid>\n"`, written atomically (a temporary file in the same
 * directory renamed over the path, which replaces a symlink planted there
 * instead of following it), refused when it names a live process that is not
 * us, and removed on exit only while it still holds our pid.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { ArbiterError, ExitCode } from "../errors.ts";

function readPid(path: string): number | undefined {
  try {
    const text = Deno.readTextFileSync(path).trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** A pidfile this process wrote. */
export class Pidfile {
  private constructor(readonly path: string, readonly pid: number) {}

  /**
   * Writes `pid` to `path`.
   * @throws {ArbiterError} exit 1 when the file names another live process or cannot be written
   */
  static claim(path: string, pid: number = Deno.pid): Pidfile {
    const existing = readPid(path);
    if (existing !== undefined && existing !== pid && isAlive(existing)) {
      throw new ArbiterError(
        ExitCode.Runtime,
        `pidfile ${path} names process ${existing}, which is running: is another arbiter ` +
          `already started? (remove the file if it is stale)`,
      );
    }
    const tmp = join(dirname(path), `.${basename(path)}.${pid}.tmp`);
    try {
      Deno.removeSync(tmp); // left by a crashed run with our pid (PID 1 in a container)
    } catch { /* the usual case */ }
    try {
      Deno.writeTextFileSync(tmp, `${pid}\n`, { createNew: true, mode: 0o644 });
      Deno.renameSync(tmp, path);
    } catch (error) {
      try {
        Deno.removeSync(tmp);
      } catch { /* never created */ }
      throw new ArbiterError(ExitCode.Runtime, `cannot write pidfile ${path}: ${error}`, {
        cause: error,
      });
    }
    return new Pidfile(path, pid);
  }

  /** Removes the file if it still holds our pid. */
  remove(): void {
    if (readPid(this.path) !== this.pid) return;
    try {
      Deno.removeSync(this.path);
    } catch { /* already gone */ }
  }
}
