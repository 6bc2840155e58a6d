/**
 * Reads the config file safely: the one file the master reads whose path
 * comes from the operator, and again on every HUP, so it must never hang
 * the master or fill its memory.
 *
 * Invariants:
 * - It is opened without blocking (a FIFO opens at once instead of waiting
 *   for a writer) and checked through the open fd to be a regular file, so
 *   a FIFO, a device, a socket or a directory is refused before any read.
 *   Symbolic links are followed: a Kubernetes ConfigMap mounts its files as
 *   links, and the operator chose the path.
 * - At most {@link MAX_CONFIG_BYTES} are read; a larger file is refused
 *   whole, never parsed in part.
 * - Every refusal is a {@link ConfigError} (exit 2) naming the path as
 *   given, so at start nothing is bound and on HUP the running config stays.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import { close, openNonBlocking, readAtMost, SysError } from "../sys/libc.ts";
import { describeKind, statOpenFd } from "../sys/fd_kind.ts";

/** The largest config file read: 1 MiB, far above any real config (a few KiB). */
export const MAX_CONFIG_BYTES = 1024 * 1024;

function reasonOf(error: unknown): string {
  if (error instanceof SysError) return error.message.replace(/^open: /, "").toLowerCase();
  return (error instanceof Error ? error.message : String(error)).toLowerCase();
}

/**
 * The text of the config file at `path` (absolute), checked as the module
 * notes say.
 *
 * @param path The absolute path to open.
 * @param shown The path as the operator gave it, for messages.
 * @returns The file's text (UTF-8).
 * @throws {ConfigError} when it cannot be opened, is not a regular file, is
 *   larger than {@link MAX_CONFIG_BYTES} or is not UTF-8
 */
export function readConfigText(path: string, shown: string): string {
  const refuse = (why: string, cause?: unknown) =>
    new ConfigError(`${shown}: cannot read the config file: ${why}`, { cause });
  let fd: number;
  try {
    fd = openNonBlocking(path);
  } catch (error) {
    throw refuse(reasonOf(error).replace(/ \(errno \d+\)$/, ""), error);
  }
  let bytes: Uint8Array;
  try {
    const info = statOpenFd(fd);
    if (!info.isFile) throw refuse(`it is ${describeKind(info)}, not a regular file`);
    if (info.size > MAX_CONFIG_BYTES) throw refuse(tooLarge(info.size));
    bytes = readAtMost(fd, MAX_CONFIG_BYTES + 1);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw refuse(reasonOf(error), error);
  } finally {
    close(fd);
  }
  // Grown since the fstat: still refused whole.
  if (bytes.length > MAX_CONFIG_BYTES) throw refuse(tooLarge(bytes.length));
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    throw refuse("it is not UTF-8 text", error);
  }
}

function tooLarge(size: number): string {
  return `it is larger than ${MAX_CONFIG_BYTES} bytes (1 MiB; got ${size}), ` +
    "which no config file needs";
}
