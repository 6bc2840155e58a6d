import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { postExitContext, timeoutContext } from "./worker_hooks.ts";

const worker = { pid: 42, slot: 3, generation: 2 };

Deno.test("post_exit: the exit code, or the signal instead of a code", () => {
  assertEquals(postExitContext({ ...worker, code: 1, signal: null }), {
    workerId: 3,
    workerPid: 42,
    generation: 2,
    exitCode: 1,
    exitSignal: undefined,
  });
  const killed = postExitContext({ ...worker, code: 0, signal: "SIGKILL" });
  assertEquals(killed.exitSignal, "SIGKILL");
  assertEquals(killed.exitCode, undefined);
});

Deno.test("worker_timeout: named by which deadline ran out", () => {
  assertEquals(timeoutContext("boot_timeout", worker).event, "boot_timeout");
  assertEquals(timeoutContext("worker_timeout", worker), {
    event: "worker_timeout",
    workerId: 3,
    workerPid: 42,
    generation: 2,
  });
});
