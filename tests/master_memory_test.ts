// The master gives memory back once its workers have been quiet
// (docs/decisions.md, "The master gives freed memory back after a rollout"):
// under `deno run` it runs with V8's gc exposed, and 20 s after the last
// worker came or went it collects once and trims the C heap. How much that
// keeps the master flat over reloads is measured in BENCHMARKS.md, not here.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { freePort } from "./_harness.ts";
import { PY_WORKER, startServing } from "./_workers.ts";
import { RELEASE_MEMORY_AFTER_MS } from "../src/core/records.ts";

const cmdline = (pid: number) => Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");

Deno.test("workers quiet for 20 s: the master collects its garbage and trims its heap, once", async () => {
  await using master = await startServing(PY_WORKER, {
    port: freePort(),
    args: ["--log-level", "debug", "--log-format", "json"],
  });
  assert(cmdline(master.pid).includes("--v8-flags=--expose-gc"), cmdline(master.pid).join(" "));
  await master.waitForEvent("master.memory_released", undefined, {
    timeoutMs: RELEASE_MEMORY_AFTER_MS + 15_000,
  });
  const releases = () =>
    master.stderr().split("\n").filter((l) => l.includes('"event":"master.memory_released"'));
  const record = JSON.parse(releases()[0]);
  assertEquals([record.collected, record.trimmed], [true, true], releases()[0]);
  master.signal("SIGTERM");
  assertEquals((await master.waitExit()).code, 0, master.stderr());
  assertEquals(releases().length, 1, "once per quiet spell, not on a period");
});
