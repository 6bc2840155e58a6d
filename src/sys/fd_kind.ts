/**
 * What an open file descriptor is, asked of the fd itself (through
 * `/proc/self/fd`) rather than of a path, so a file swapped in after the
 * open cannot pass a check meant for the one that was opened. The master
 * uses it for every file whose path comes from the operator before reading
 * it (docs/contract.md, "Security").
 *
 * @example
 * ```ts
 * import { describeKind, statOpenFd } from "./fd_kind.ts";
 * import { close, openNonBlocking } from "./libc.ts";
 * const fd = openNonBlocking("/etc/hostname");
 * const info = statOpenFd(fd);
 * if (!info.isFile) throw new Error(`it is ${describeKind(info)}`);
 * close(fd);
 * ```
 *
 * @module
 */

/** The inode behind `fd`, whatever its path names by now. */
export function statOpenFd(fd: number): Deno.FileInfo {
  return Deno.statSync(`/proc/self/fd/${fd}`);
}

/** A file type in words for a refusal, e.g. "a FIFO"; for anything but a regular file. */
export function describeKind(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a directory";
  if (info.isFifo) return "a FIFO";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isSocket) return "a socket";
  return "not a regular file";
}
