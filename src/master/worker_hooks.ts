/**
 * The hook contexts of worker events: which `ARBITER_*` values the
 * `post_exit` and `worker_timeout` hooks get, from what the core's
 * `worker-gone` and `worker-timed-out` effects carry. Pure translation; it
 * decides nothing (whether a hook fires, and which, the core said).
 *
 * @module
 */

import type { FireContext } from "../hooks/runner.ts";
import type { TimeoutHook, WorkerExit, WorkerIdentity } from "../core/events.ts";

/** `post_exit`'s context for a worker that exited with `code` or by `signal`. */
export function postExitContext(exit: WorkerExit): FireContext {
  return {
    workerId: exit.slot,
    workerPid: exit.pid,
    generation: exit.generation,
    exitCode: exit.signal ? undefined : exit.code,
    exitSignal: exit.signal ?? undefined,
  };
}

/** `worker_timeout`'s context: `hook` (which deadline ran out) is its `ARBITER_EVENT`. */
export function timeoutContext(hook: TimeoutHook, worker: WorkerIdentity): FireContext {
  return {
    event: hook,
    workerId: worker.slot,
    workerPid: worker.pid,
    generation: worker.generation,
  };
}
