import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { parseMemberStat, parseRollup, sampleTrees } from "./tree.ts";

const MiB = 1024 * 1024;
const FORKING_WORKER = new URL("../../tests/workers/forking_worker.py", import.meta.url).pathname;

/** A process group of 1 + `children` Python processes (tests/workers/forking_worker.py). */
async function forkingGroup(env: Record<string, string>): Promise<{
  process: Deno.ChildProcess;
  children: number[];
  [Symbol.asyncDispose](): Promise<void>;
}> {
  const process = new Deno.Command("python3", {
    args: [FORKING_WORKER],
    env: { SETPGID: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!/ready children=[\d,]+\n/.test(seen)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`forking worker ended early: ${seen}`);
    seen += value;
  }
  reader.releaseLock();
  const children = seen.match(/children=([\d,]+)/)![1].split(",").map(Number);
  return {
    process,
    children,
    async [Symbol.asyncDispose]() {
      process.kill("SIGTERM");
      await process.status;
      await process.stdout.cancel().catch(() => {});
    },
  };
}

Deno.test("sampleTrees: a worker's memory is its whole group's; shared pages count once", async () => {
  await using group = await forkingGroup({ PRELOAD_MB: "60", CHILD_MB: "20", CHILDREN: "3" });
  const tree = sampleTrees([group.process.pid]).get(group.process.pid)!;
  assertEquals(tree.processes, 4);
  assertEquals(tree.memorySource, "pss", "our own processes' smaps_rollup is readable");
  // Held: 60 MiB preloaded (shared by 4), 3 × 20 MiB private, plus 4 interpreters.
  assert(tree.memoryBytes >= 120 * MiB, `pss ${tree.memoryBytes / MiB} MiB`);
  // RSS counts the preloaded 60 MiB once per process: at least 3 × 60 MiB more than PSS, nearly.
  assert(
    tree.rssBytes - tree.memoryBytes >= 150 * MiB,
    `rss ${tree.rssBytes / MiB} vs pss ${tree.memoryBytes / MiB} MiB`,
  );
  // The leader alone is a fraction of it: what the single-process figure used to show.
  const alone = sampleTrees([group.children[0]]).get(group.children[0])!;
  assertEquals(alone.processes, 1, "a child is not a group leader: sampled as itself only");
});

Deno.test("sampleTrees: CPU of a reaped child stays counted; gone leaders give no entry", async () => {
  let pid = 0;
  {
    await using group = await forkingGroup({
      PRELOAD_MB: "1",
      CHILD_MB: "1",
      CHILDREN: "1",
      BURN_MS: "300",
    });
    pid = group.process.pid;
    const tree = sampleTrees([pid, 999_999_999, -1]).get(pid)!;
    assert(tree.cpuSeconds >= 0.3, `cpu ${tree.cpuSeconds} s`);
    assertEquals([...sampleTrees([pid, 999_999_999, -1]).keys()], [pid]);
  }
  assertEquals(sampleTrees([pid]).size, 0);
  assertEquals(sampleTrees([]).size, 0);
});

Deno.test("parseMemberStat: fields after the last ')'; times summed, children's included", () => {
  const stat = "123 (my (odd) proc) S 1 120 120 0 -1 4194560 100 0 0 0 250 50 30 20 20 0 1 0 " +
    "1000 200000000 5000 18446744073709551615";
  assertEquals(parseMemberStat(stat), { pgid: 120, ticks: 350, residentPages: 5000, state: "S" });
  assertEquals(parseMemberStat("garbage"), undefined);
  assertEquals(parseMemberStat("1 (x) S 1"), undefined);
});

Deno.test("parseRollup: Pss and Rss in bytes; undefined without them", () => {
  const text = "55d0-7ffc ---p 00000000 00:00 0   [rollup]\nRss:    1736 kB\nPss:     309 kB\n" +
    "Pss_Dirty:  112 kB\n";
  assertEquals(parseRollup(text), { pss: 309 * 1024, rss: 1736 * 1024 });
  assertEquals(parseRollup("Rss: 1 kB\n"), undefined);
});
