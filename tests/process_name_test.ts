// The master's process name (docs/operations.md, "Process name"): `ps -e`,
// `top` and `pgrep arbiter` find it as `arbiter` under `deno run` too, through
// /proc/PID/comm; its workers keep their own programs' names.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { freePort, startArbiter } from "./_harness.ts";
import { generationReady, PY_WORKER } from "./_workers.ts";

const comm = (pid: number) => Deno.readTextFileSync(`/proc/${pid}/comm`).trim();

Deno.test("the master is named arbiter in /proc/PID/comm; its workers are not", async () => {
  await using master = startArbiter([
    "-w",
    "2",
    "-b",
    `127.0.0.1:${freePort()}`,
    "--",
    ...PY_WORKER,
  ]);
  await master.waitForLog(generationReady(1));
  assertEquals(comm(master.pid), "arbiter");
  const workers = await master.waitForChildren(2);
  for (const pid of workers) assert(comm(pid).startsWith("python3"), comm(pid));
  master.signal("SIGTERM");
  assertEquals((await master.waitExit()).code, 0, master.stderr());
});
