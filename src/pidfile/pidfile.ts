/**
 * The pidfile: `"<pid>\n"`, written atomically (a temporary file in the same
 * directory renamed over the path), refused when it names a live process
 * that is not us, and removed on exit only while it still holds our pid.
 *
 * Invariants (docs/contract.md, "Security": the master never dies or hangs from a planted file):
 * - What is at the path is read without following a symbolic link, without
 *   blocking (a FIFO would hang start-up forever), only when it is a regular
 *   file, and at most {@link MAX_PIDFILE_BYTES} bytes of it (a link to
 *   /dev/zero would grow the master until it is killed). The type is checked
 *   on the opened fd, so the path cannot be swapped in between.
 * - Anything else at the path (a symlink, FIFO, directory, device, socket, a
 *   file that does not hold a pid) is refused with exit 1, never replaced:
 *   it is not ours, and a typo must not overwrite someone's file.
 * - The rename never follows a symlink either; the temporary file is created
 *   with O_EXCL, which fails on a planted link.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { ArbiterError, ExitCode } from "../errors.ts";
import { close, ELOOP, ENOENT, openNoFollow, readAtMost, SysError } from "../sys/libc.ts";
import { describeKind, statOpenFd } from "../sys/fd_kind.ts";

/** The most bytes read from an existing pidfile; a pid and a newline need at most 8. */
export const MAX_PIDFILE_BYTES = 64;

/** A pidfile that cannot be used; exit 1 (docs/contract.md, "Files and exit codes"). */
function refuse(message: string, cause?: unknown): ArbiterError {
  return new ArbiterError(ExitCode.Runtime, message, { cause });
}

/**
 * The pid held by the pidfile at `path`, read safely (see the module
 * invariants).
 *
 * @returns the pid, or undefined when nothing is at the path or the file is empty
 * @throws {ArbiterError} exit 1 when the path holds anything but a pidfile, or cannot be read
 */
export function readPidfile(path: string): number | undefined {
  let fd: number;
  try {
    fd = openNoFollow(path);
  } catch (error) {
    if (error instanceof SysError && error.errno === ENOENT) return undefined;
    if (error instanceof SysError && error.errno === ELOOP) {
      throw refuse(`pidfile ${path} is a symbolic link; refusing to follow or replace it`, error);
    }
    throw refuse(`cannot read pidfile ${path}: ${(error as Error).message}`, error);
  }
  let bytes: Uint8Array;
  try {
    const info = statOpenFd(fd);
    if (!info.isFile) {
      throw refuse(
        `pidfile ${path} is ${describeKind(info)}, not a regular file; refusing to use it`,
      );
    }
    bytes = readAtMost(fd, MAX_PIDFILE_BYTES + 1);
  } catch (error) {
    if (error instanceof ArbiterError) throw error;
    throw refuse(`cannot read pidfile ${path}: ${(error as Error).message}`, error);
  } finally {
    close(fd);
  }
  if (bytes.length > MAX_PIDFILE_BYTES) {
    throw refuse(
      `pidfile ${path} is larger than ${MAX_PIDFILE_BYTES} bytes, so not a pidfile; ` +
        `refusing to replace it`,
    );
  }
  const text = new TextDecoder().decode(bytes).trim();
  if (text === "") return undefined;
  if (!/^\d{1,10}$/.test(text)) {
    throw refuse(
      `pidfile ${path} does not hold a pid (it starts ${JSON.stringify(text.slice(0, 20))}); ` +
        `refusing to replace a file that is not a pidfile`,
    );
  }
  return Number(text);
}

function isAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** What {@link Pidfile.check} looks at. */
export interface PidfileCheck {
  /**
   * Also refuse a pidfile naming a live process other than `pid`. Off for
   * `--check-config`, which is meant to run beside the master it checks for.
   */
  liveness: boolean;
  /** Our pid. */
  pid?: number;
}

/** A pidfile this process wrote. */
export class Pidfile {
  private constructor(readonly path: string, readonly pid: number) {}

  /**
   * Checks, without writing anything, that `path` could be claimed now: its
   * directory exists, and whatever is at the path is a stale pidfile, ours
   * or (with `liveness` off) any pidfile.
   * @throws {ArbiterError} exit 1, with the reason
   */
  static check(path: string, opts: PidfileCheck): void {
    const dir = dirname(path);
    let info: Deno.FileInfo | undefined;
    try {
      info = Deno.statSync(dir);
    } catch { /* reported below */ }
    if (!info?.isDirectory) {
      throw refuse(`cannot write pidfile ${path}: ${dir} is not an existing directory`);
    }
    const existing = readPidfile(path);
    const pid = opts.pid ?? Deno.pid;
    if (opts.liveness && existing !== undefined && existing !== pid && isAlive(existing)) {
      throw refuse(
        `pidfile ${path} names process ${existing}, which is running: is another arbiter ` +
          `already started? (remove the file if it is stale)`,
      );
    }
  }

  /**
   * Writes `pid` to `path`.
   * @throws {ArbiterError} exit 1 when the path holds anything but a stale
   *   pidfile or ours, or the file cannot be written
   */
  static claim(path: string, pid: number = Deno.pid): Pidfile {
    Pidfile.check(path, { liveness: true, pid });
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
      throw refuse(`cannot write pidfile ${path}: ${error}`, error);
    }
    return new Pidfile(path, pid);
  }

  /** Removes the file if it still holds our pid; leaves anything else alone. */
  remove(): void {
    let pid: number | undefined;
    try {
      pid = readPidfile(this.path);
    } catch {
      return; // replaced by something that is not ours
    }
    if (pid !== this.pid) return;
    try {
      Deno.removeSync(this.path);
    } catch { /* already gone */ }
  }
}
