// The master's process name (docs/operations.md, "Process name"): `ps -e`,
// `top` and `pgrep arbiter` find it as `arbiter` under `deno run` too, through
// /proc/PID/comm; its workers keep their own programs' names.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { freePort } from "./_harness.ts";
import { PY_WORKER, startServing } from "./_workers.ts";

const comm = (pid: number) => Deno.readTextFileSync(`/proc/${pid}/comm`).trim();

Deno.test("the master is named arbiter in /proc/PID/comm; its workers are not", async () => {
  await using master = await startServing(PY_WORKER, { port: freePort() });
  assertEquals(comm(master.pid), "arbiter");
  const workers = await master.waitForChildren(2);
  for (const pid of workers) assert(comm(pid).startsWith("python3"), comm(pid));
  master.signal("SIGTERM");
  assertEquals((await master.waitExit()).code, 0, master.stderr());
});
