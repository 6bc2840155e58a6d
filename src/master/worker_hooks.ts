/**
 * The hook contexts of worker events: which `ARBITER_*` values the
 * `post_exit` and `worker_timeout` hooks get, from what the core said (an
 * exit event, a kill effect with its typed reason) and the executor's record
 * of the process. Pure: the executor fires what these return.
 *
 * @module
 */

import type { FireContext } from "../hooks/runner.ts";
import type { StopReason } from "../core/events.ts";
import type { WorkerProcess } from "./workers.ts";

/** `post_exit`'s context for a worker that exited with `code` or by `signal`. */
export function postExitContext(
  worker: WorkerProcess,
  code: number,
  signal: string | null,
): FireContext {
  return {
    workerId: worker.slot,
    workerPid: worker.pid,
    generation: worker.generation,
    exitCode: signal ? undefined : code,
    exitSignal: signal ?? undefined,
  };
}

/** `worker_timeout`'s context when a kill's reason is a timeout; undefined for any other kill. */
export function timeoutContext(
  reason: StopReason | undefined,
  worker: WorkerProcess | undefined,
): FireContext | undefined {
  if (reason !== "boot-timeout" && reason !== "watchdog-timeout") return undefined;
  return {
    event: reason === "boot-timeout" ? "boot_timeout" : "worker_timeout",
    workerId: worker?.slot,
    workerPid: worker?.pid,
    generation: worker?.generation,
  };
}
