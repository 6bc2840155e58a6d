import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { postExitContext, timeoutContext } from "./worker_hooks.ts";
import type { WorkerProcess } from "./workers.ts";

const worker = { pid: 42, slot: 3, generation: 2 } as WorkerProcess;

Deno.test("post_exit: the exit code, or the signal instead of a code", () => {
  assertEquals(postExitContext(worker, 1, null), {
    workerId: 3,
    workerPid: 42,
    generation: 2,
    exitCode: 1,
    exitSignal: undefined,
  });
  assertEquals(postExitContext(worker, 0, "SIGKILL").exitSignal, "SIGKILL");
  assertEquals(postExitContext(worker, 0, "SIGKILL").exitCode, undefined);
});

Deno.test("worker_timeout: only for the two timeout reasons, named by which", () => {
  assertEquals(timeoutContext("boot-timeout", worker)?.event, "boot_timeout");
  assertEquals(timeoutContext("watchdog-timeout", worker)?.event, "worker_timeout");
  assertEquals(timeoutContext("watchdog-timeout", undefined)?.workerPid, undefined);
  assertEquals(timeoutContext(undefined, worker), undefined);
});
