/**
 * Chaos: SIGKILL a random worker every 200 ms for 60 s while a load loop
 * sends requests (a new connection each), then check:
 * - no connection refused (the master keeps the socket open throughout);
 * - every failed request overlaps a kill and there are at most as many as
 *   kills (wsgi_fd.py serves one request at a time, so a kill can break at
 *   most the one request in its hands);
 * - the worker count is back to N, no zombie, master fd count unchanged and
 *   RSS within +10 %.
 *
 *   scripts/deno run -A scripts/chaos/kill_storm.ts [--seconds 60] [--interval 200] [--workers 4]
 *                                                  [--include-booting]
 *
 * Victims are picked among workers that have run past the 1 s settle delay,
 * so the test measures replacement, not the boot back-off a worker that dies
 * before it is ready gets by design (docs/contract.md, "Worker lifecycle");
 * ticks with no such worker are counted as skipped. With `--include-booting`
 * any live worker may be hit: slots then back off (0.1 s doubling to 6.4 s and
 * more) and requests wait in the backlog for a worker, so timeouts are expected
 * there.
 *
 * @module
 */

import {
  type Check,
  freePort,
  liveChildren,
  now,
  numArg,
  RawLoad,
  readMaster,
  report,
  sleep,
  startArbiterOn,
  waitFor,
  waitForHttp,
  WSGI_FD,
} from "./_lib.ts";

const seconds = numArg("seconds", 60);
const intervalMs = numArg("interval", 200);
const n = numArg("workers", 4);
/** `--include-booting`: victims may be workers still booting (they then get boot back-off). */
const includeBooting = Deno.args.includes("--include-booting");
const SETTLE_MS = includeBooting ? 0 : 1300;
const HZ = 100;

/** Age of a process in ms: /proc/uptime minus its start time (both 10 ms resolution). */
function ageMs(pid: number): number {
  try {
    const up = Number(Deno.readTextFileSync("/proc/uptime").split(" ")[0]);
    const t = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const start = Number(t.slice(t.lastIndexOf(")") + 2).trim().split(/\s+/)[19]) / HZ;
    return (up - start) * 1000;
  } catch {
    return 0;
  }
}

const port = freePort();
await using master = startArbiterOn(port, n, ["python3", WSGI_FD]);
await master.waitForLog(/generation 1 is ready/, { timeoutMs: 60_000 });
await waitForHttp(`http://127.0.0.1:${port}/`);
await sleep(1000);
const before = readMaster(master.pid);
const load = new RawLoad(port, 8, seconds + 30).start();
const kills: number[] = [];
let skipped = 0;
const end = now() + seconds * 1000;
while (now() < end) {
  await sleep(intervalMs);
  const ready = liveChildren(master.pid).filter((p) => ageMs(p) >= SETTLE_MS);
  if (ready.length === 0) {
    skipped++;
    continue;
  }
  const victim = ready[Math.floor(Math.random() * ready.length)];
  try {
    Deno.kill(victim, "SIGKILL");
    kills.push(now());
  } catch {
    skipped++;
  }
}
const result = await load.stop();
let backToN = true;
try {
  await waitFor(() => liveChildren(master.pid).length === n, { timeoutMs: 15_000 });
} catch {
  backToN = false;
}
await sleep(15_000); // V8 returns garbage to the OS on idle
const after = readMaster(master.pid);
const unattributed = result.failures.filter((f) =>
  f.kind !== "refused" && !kills.some((k) => k >= f.start - 5 && k <= f.end + 5)
);
const inflight = result.failures.filter((f) => f.kind !== "refused").length;
const checks: Check[] = [
  { name: "no connection refused", ok: result.refused === 0, detail: `${result.refused}` },
  {
    name: "failures attributable to kills",
    ok: unattributed.length === 0 && inflight <= kills.length,
    detail:
      `${inflight} failed (${unattributed.length} overlapping no kill) for ${kills.length} kills${
        unattributed.length ? `; first: ${unattributed[0].message}` : ""
      }`,
  },
  {
    name: `worker count back to ${n}`,
    ok: backToN && after.live === n,
    detail: `${after.live} live`,
  },
  { name: "no zombie", ok: after.zombies === 0, detail: `${after.zombies}` },
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
    name: "no stray processes",
    ok: after.descendants === n,
    detail: `${after.descendants} descendants`,
  },
];
master.signal("SIGTERM");
await master.waitExit(30_000).catch(() => {});
Deno.writeTextFileSync("/tmp/arbiter-bench/chaos-kill_storm.log", master.stderr());
Deno.exit(report("kill_storm", checks, {
  seconds,
  intervalMs,
  workers: n,
  includeBooting,
  kills: kills.length,
  skippedTicks: skipped,
  requestsOk: result.ok,
  failed: result.failures.length,
  failureKinds: Object.fromEntries(
    ["refused", "broken", "status", "timeout"].map((k) => [
      k,
      result.failures.filter((f) => f.kind === k).length,
    ]),
  ),
  before,
  after,
}));
