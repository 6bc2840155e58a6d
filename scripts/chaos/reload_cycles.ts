/**
 * Soak: N reload cycles (HUP, wait for the new generation to be ready and the
 * old one to be gone), then compare the master's fd count, RSS and process
 * count with before. Readings every 100 cycles. With the default spawn
 * readiness (1 s) a cycle takes ~1.1 s: 1,000 cycles ≈ 20 minutes.
 *
 *   scripts/deno run -A scripts/chaos/reload_cycles.ts [--cycles 1000] [--workers 4]
 *
 * @module
 */

import {
  type Check,
  freePort,
  liveChildren,
  now,
  numArg,
  readMaster,
  report,
  sleep,
  startArbiterOn,
  waitFor,
} from "./_lib.ts";

const cycles = numArg("cycles", 1000);
const n = numArg("workers", 4);
const port = freePort();
await using master = startArbiterOn(port, n, ["sleep", "infinity"]);
await master.waitForLog(/generation 1 is ready/, { timeoutMs: 60_000 });
await sleep(1000);
const before = readMaster(master.pid);
const readings: Record<number, ReturnType<typeof readMaster>> = { 0: before };
const t0 = now();
let done = 0;
let failure = "";
for (let c = 1; c <= cycles; c++) {
  const old = new Set(liveChildren(master.pid));
  const off = master.logOffset();
  master.signal("SIGHUP");
  try {
    await master.waitForLog(new RegExp(`generation ${c + 1} is ready`), {
      after: off,
      timeoutMs: 30_000,
    });
    await waitFor(() => {
      const cur = liveChildren(master.pid);
      return cur.length === n && cur.every((p) => !old.has(p));
    }, { timeoutMs: 30_000, intervalMs: 10 });
  } catch (e) {
    failure = `cycle ${c}: ${(e as Error).message.split("\n")[0]}`;
    break;
  }
  done = c;
  if (c % 100 === 0) {
    readings[c] = readMaster(master.pid);
    console.error(`reload_cycles: ${c} done, ${JSON.stringify(readings[c])}`);
  }
}
const elapsed = (now() - t0) / 1000;
await sleep(15_000); // V8 returns garbage to the OS on idle
const after = readMaster(master.pid);
const checks: Check[] = [
  {
    name: `${cycles} cycles completed`,
    ok: done === cycles,
    detail: failure || `${done} in ${elapsed.toFixed(0)} s`,
  },
  {
    name: "master fds unchanged",
    ok: after.fds === before.fds,
    detail: `${before.fds} → ${after.fds}`,
  },
  {
    name: "master RSS within +10 %",
    ok: after.rssKb <= before.rssKb * 1.1,
    detail: `${before.rssKb} → ${after.rssKb} kB`,
  },
  {
    name: "process count unchanged",
    ok: after.descendants === before.descendants && after.live === n,
    detail: `${before.descendants} → ${after.descendants}`,
  },
  { name: "no zombie", ok: after.zombies === 0, detail: `${after.zombies}` },
];
master.signal("SIGTERM");
await master.waitExit(30_000).catch(() => {});
Deno.exit(report("reload_cycles", checks, { cycles, workers: n, elapsed, readings, after }));
