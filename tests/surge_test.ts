/**
 * `max_surge` end to end: during HUPs under load, the number of live worker
 * processes (the master's children that are not zombies, stopping ones
 * included) never goes above `workers + max_surge`, and no request fails.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  childrenOf,
  freePort,
  isWorkerProgram,
  isZombie,
  LoadGenerator,
  startArbiter,
} from "./_harness.ts";
import { generationReady, PY_WORKER, reloadGenerations, tempDir } from "./_workers.ts";

const WORKERS = 3;
const HUPS = 2;
const POLL_MS = 20;

Deno.test(`max_surge = 1: ${HUPS} HUPs under load never run more than workers + 1, 0 failed`, async () => {
  await using dir = await tempDir();
  const port = freePort();
  const config = `${dir.path}/app.toml`;
  await Deno.writeTextFile(
    config,
    `command = ${JSON.stringify(PY_WORKER)}\nworkers = ${WORKERS}\nmax_surge = 1\n` +
      `bind = "127.0.0.1:${port}"\nready = "notify"\ngraceful_timeout = 10\n`,
  );
  await using master = startArbiter(["--config", config], { env: { NOTIFY_READY: "1" } });
  await master.waitForLog(generationReady(1), { timeoutMs: 20_000 });

  const counts: number[] = [];
  const workerPids = new Set<number>();
  const poll = setInterval(() => {
    const live = childrenOf(master.pid).filter((pid) => !isZombie(pid));
    counts.push(live.length);
    for (const pid of live.filter(isWorkerProgram)) workerPids.add(pid);
  }, POLL_MS);
  const close = new LoadGenerator().start(`http://127.0.0.1:${port}/`, {
    connection: "close",
    concurrency: 3,
  });
  let result;
  try {
    await reloadGenerations(master, HUPS);
  } finally {
    clearInterval(poll);
    result = await close.stop();
  }
  const peak = Math.max(...counts);
  assert(peak <= WORKERS + 1, `${peak} live workers at some point: ${counts.join(",")}`);
  assertEquals(peak, WORKERS + 1, "the rollout did use its one extra worker");
  assertEquals(result.failed, 0, result.errors.join("\n"));
  assert(result.ok > 10, `only ${result.ok} requests went through`);
  assertEquals(workerPids.size, WORKERS * (HUPS + 1), "every slot was replaced on each HUP");
});
