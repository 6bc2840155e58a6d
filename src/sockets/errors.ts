/**
 * How a failed bind reads in a message: the few errors people meet (port
 * taken, privileged port, address not on this host) in plain words.
 *
 * @module
 */

/** A short reason for a listen/bind failure, e.g. "address already in use". */
export function listenErrorReason(error: unknown): string {
  if (error instanceof Deno.errors.AddrInUse) return "address already in use";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.AddrNotAvailable) return "address not available on this host";
  return error instanceof Error ? error.message : String(error);
}
