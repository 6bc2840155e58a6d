/**
 * Chaos: 1,000 mixed HUP / TTIN / TTOU / USR1 to the master in a few seconds,
 * then check that it is alive and consistent: a worker count within bounds
 * whose slots are unique, a master that still obeys TTIN then TTOU exactly,
 * and, once scaled back to N, the same fd count as before, no zombie and no
 * stray process. Bursts of one signal may be coalesced by the kernel (docs/contract.md,
 * "Signals"), so the final count is checked against bounds, not an exact sum.
 *
 * scripts/deno run -A scripts/chaos/signal_storm.ts [--signals 1000]
 * [--spacing-ms 3] [--workers 4]
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
  REPO_ROOT,
  report,
  sleep,
  startArbiterOn,
  waitFor,
  workerIdOf,
} from "./_lib.ts";

const total = numArg("signals", 1000);
const spacingMs = numArg("spacing-ms", 3);
const n = numArg("workers", 4);
const WORKER = ["python3", `${REPO_ROOT}/scripts/chaos/idle_worker.py`];

/** Wait until the set of live children has not changed for `quietMs`. */
async function settle(pid: number, quietMs: number, maxMs: number): Promise<number[]> {
  let last = "";
  let since = now();
  const end = now() + maxMs;
  while (now() < end) {
    const cur = liveChildren(pid);
    const key = cur.join(",");
    if (key !== last) {
      last = key;
      since = now();
    } else if (now() - since >= quietMs) return cur;
    await sleep(50);
  }
  return liveChildren(pid);
}

async function expectCount(pid: number, count: number, timeoutMs = 15_000): Promise<boolean> {
  try {
    await waitFor(() => liveChildren(pid).length === count, { timeoutMs });
    await sleep(1500); // ready + retire the extra ones
    return liveChildren(pid).length === count;
  } catch {
    return false;
  }
}

const port = freePort();
await using master = startArbiterOn(port, n, WORKER);
await master.waitForLog(/generation 1 is ready/, { timeoutMs: 60_000 });
// Warm-up: one of each signal, so one-time allocations (the first USR1 opens 5
// fds once: another event loop) are not counted as a leak.
for (const sig of ["SIGUSR1", "SIGTTIN", "SIGTTOU", "SIGHUP"] as Deno.Signal[]) {
  master.signal(sig);
  await settle(master.pid, 2500, 30_000);
}
const before = readMaster(master.pid);
const sent: Record<string, number> = { SIGHUP: 0, SIGTTIN: 0, SIGTTOU: 0, SIGUSR1: 0 };
const kinds = Object.keys(sent) as Deno.Signal[];
const t0 = now();
for (let i = 0; i < total; i++) {
  const sig = kinds[Math.floor(Math.random() * kinds.length)];
  Deno.kill(master.pid, sig);
  sent[sig]++;
  if (spacingMs > 0) await sleep(spacingMs);
}
const stormMs = now() - t0;
const settled = await settle(master.pid, 4000, 120_000);
const alive = !master.exited;
const w = settled.length;
const ids = settled.map(workerIdOf);
const uniqueIds = new Set(ids).size === ids.length && ids.every((x) => x !== undefined);
// Obeys exactly: one more, one fewer.
let obeys = false;
if (alive && w >= 1) {
  master.signal("SIGTTIN");
  const up = await expectCount(master.pid, w + 1);
  master.signal("SIGTTOU");
  const down = await expectCount(master.pid, w);
  obeys = up && down;
}
// Back to N, one step at a time.
let cur = liveChildren(master.pid).length;
for (let i = 0; alive && cur !== n && i < 300; i++) {
  master.signal(cur < n ? "SIGTTIN" : "SIGTTOU");
  const want = cur < n ? cur + 1 : cur - 1;
  await expectCount(master.pid, want);
  cur = liveChildren(master.pid).length;
}
await sleep(15_000); // V8 returns garbage to the OS on idle
const after = readMaster(master.pid);
const errorLines = master.stderr().split("\n").filter((l) => /ERROR|FATAL|internal/.test(l));
const killedByUsr1 = errorLines.filter((l) => /killed by SIGUSR1/.test(l)).length;
const logTail = errorLines.filter((l) => !/killed by SIGUSR1/.test(l)).slice(-3);
const checks: Check[] = [
  { name: "master alive", ok: alive, detail: alive ? `pid ${master.pid}` : "exited" },
  {
    name: "worker count after the storm within [1, N + TTIN sent]",
    ok: w >= 1 && w <= n + sent.SIGTTIN,
    detail: `${w}`,
  },
  { name: "worker slots unique", ok: uniqueIds, detail: `ids ${JSON.stringify(ids)}` },
  { name: "then obeys TTIN and TTOU exactly", ok: obeys, detail: `${w} → ${w + 1} → ${w}` },
  { name: `scaled back to ${n}`, ok: after.live === n, detail: `${after.live}` },
  {
    name: "master fds same as before at N workers",
    ok: after.fds === before.fds,
    detail: `${before.fds} → ${after.fds}`,
  },
  { name: "no zombie", ok: after.zombies === 0, detail: `${after.zombies}` },
  {
    name: "no stray process",
    ok: after.descendants === n,
    detail: `${after.descendants} descendants`,
  },
];
master.signal("SIGTERM");
await master.waitExit(30_000).catch(() => {});
Deno.exit(
  report("signal_storm", checks, {
    signals: total,
    sent,
    stormMs: Math.round(stormMs),
    workersAfterStorm: w,
    before,
    after,
    masterRssGrowthKb: after.rssKb - before.rssKb,
    workersKilledByForwardedUsr1: killedByUsr1,
    errorLines: logTail,
  }),
);
