/**
 * How a failed bind reads in a message: the few errors people meet (port
 * taken, privileged port, address not on this host) in plain words.
 *
 * @module
 */

import { SysError } from "../sys/libc.ts";

const ERRNO_REASONS: Record<number, string> = {
  2: "its directory does not exist",
  13: "permission denied",
  98: "address already in use",
  99: "address not available on this host",
};

/** A short reason for a listen/bind failure, e.g. "address already in use". */
export function listenErrorReason(error: unknown): string {
  if (error instanceof SysError && ERRNO_REASONS[error.errno]) return ERRNO_REASONS[error.errno];
  if (error instanceof Deno.errors.AddrInUse) return "address already in use";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.AddrNotAvailable) return "address not available on this host";
  return error instanceof Error ? error.message : String(error);
}
