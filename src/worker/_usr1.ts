/**
 * `onUsr1` of {@link serve}: USR1 asks a worker to reopen its log files.
 *
 * Under `worker_usr1 = "blocked"` the worker starts with SIGUSR1 blocked in
 * every thread, so the Deno runtime never sees it (and never opens its
 * inspector, which `deno run` ≥ 2.9.2 does on USR1); the signal is then read
 * from a signalfd (src/sys/usr1_signalfd.ts), which needs FFI. Otherwise
 * (USR1 not blocked, or no FFI permission to find out) it is an ordinary
 * `Deno.addSignalListener`, which never fires while USR1 is blocked: without
 * the permission, a blocked USR1 is simply left pending and does nothing.
 *
 * @module
 */

import { addUsr1Listener, removeUsr1Listener, usr1BlockedHere } from "../sys/usr1_signalfd.ts";
import { warn } from "./_notify.ts";

function ffiGranted(): boolean {
  try {
    return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch {
    return false;
  }
}

/**
 * Calls `onUsr1` on each USR1 until the returned function is called. A
 * callback that throws is reported on stderr and stays installed.
 */
export function listenUsr1(onUsr1: () => void): () => void {
  const handler = () => {
    try {
      onUsr1();
    } catch (error) {
      warn(`onUsr1 threw: ${error}`);
    }
  };
  if (ffiGranted()) {
    try {
      if (usr1BlockedHere()) {
        addUsr1Listener(handler, warn);
        return () => void removeUsr1Listener(handler);
      }
    } catch (error) {
      warn(`cannot read SIGUSR1 from a signalfd (${error}); onUsr1 will not be called`);
      return () => {};
    }
  }
  try {
    Deno.addSignalListener("SIGUSR1", handler);
  } catch {
    return () => {}; // no signal support here: nothing to call
  }
  return () => {
    try {
      Deno.removeSignalListener("SIGUSR1", handler);
    } catch { /* already gone */ }
  };
}
