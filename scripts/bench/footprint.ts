/**
 * Benchmark "footprint" (run by run.ts). Footprint: the idle supervisor's memory, CPU, wakeups and open files.
 *
 * @module
 */

import {
  childCpuSeconds,
  cpuSeconds,
  fdCount,
  freePort,
  liveChildren,
  NODE_APP,
  now,
  Pm2,
  rssKb,
  sleep,
  startArbiterOn,
  startGunicorn,
  switchesBetween,
  voluntarySwitches,
  waitForCount,
  waitForHttp,
  zombieChildren,
} from "./lib.ts";
import { type Args, log, OUT_DIR, url } from "./common.ts";

// ---------------------------------------------------------------------------
// 4. Master footprint

export async function idleReading(pid: number, seconds: number) {
  const rss0 = rssKb(pid);
  const cpu0 = cpuSeconds(pid);
  const sw0 = voluntarySwitches(pid);
  const t0 = now();
  await sleep(seconds * 1000);
  const dt = (now() - t0) / 1000;
  const sw1 = voluntarySwitches(pid);
  const perThread = [...sw1].map(([tid, n]) => n - (sw0.get(tid) ?? 0)).filter((x) => x > 0);
  return {
    rss0,
    rss1: rssKb(pid),
    cpuPct: ((cpuSeconds(pid) - cpu0) / dt) * 100,
    wakeups: switchesBetween(sw0, sw1) / dt,
    threads: sw1.size,
    busyThreads: perThread.length,
    perThread: perThread.map((x) => (x / dt).toFixed(1)).join(", "),
  };
}

export async function benchFootprint(_args: Args): Promise<string> {
  const idleS = 60;
  const lines: string[] = [];
  const port = freePort();
  const n = 2;
  log(`footprint: arbiter idle ${idleS} s`);
  const p = startArbiterOn(port, n, ["sleep", "infinity"]);
  let arb;
  let restarts;
  try {
    await p.waitForLog(/generation 1 is ready/, { timeoutMs: 60_000 });
    await sleep(2000);
    arb = await idleReading(p.pid, idleS);
    p.signal("SIGTERM");
    await p.waitExit(20_000).catch(() => {});
  } finally {
    await p[Symbol.asyncDispose]();
  }
  log(`footprint: gunicorn idle 30 s`);
  const gport = freePort();
  const g = startGunicorn(gport, n);
  let gun;
  try {
    await waitForHttp(url(gport), { timeoutMs: 30_000 });
    await sleep(2000);
    gun = await idleReading(g.pid, 30);
    g.signal("SIGTERM");
    await g.waitExit(20_000).catch(() => {});
  } finally {
    await g[Symbol.asyncDispose]();
  }
  log(`footprint: pm2 daemon idle 30 s`);
  let pm;
  {
    const pport = freePort();
    const pm2 = new Pm2();
    await pm2.kill();
    try {
      await pm2.run(["start", NODE_APP, "-i", String(n), "--name", "arbiter-bench"], {
        PORT: String(pport),
      });
      await waitForHttp(url(pport), { timeoutMs: 30_000 });
      await sleep(2000);
      pm = await idleReading(pm2.daemonPid(), 30);
    } finally {
      await pm2.run(["delete", "all"]).catch(() => "");
      await pm2.kill();
    }
  }
  // 1,000 restarts: 50 workers killed 20 times (each time once they are all ready,
  // so no slot is in boot back-off).
  {
    const workers = 50;
    const rounds = 20;
    log(`footprint: ${workers * rounds} restarts`);
    const rport = freePort();
    const r = startArbiterOn(rport, workers, ["sleep", "infinity"]);
    try {
      await r.waitForLog(/generation 1 is ready/, { timeoutMs: 60_000 });
      await sleep(1000);
      const before = {
        rss: rssKb(r.pid),
        fds: fdCount(r.pid),
        cpu: cpuSeconds(r.pid),
        childCpu: childCpuSeconds(r.pid),
      };
      let peak = before.rss;
      const t0 = now();
      for (let i = 0; i < rounds; i++) {
        const off = r.logOffset();
        const victims = liveChildren(r.pid);
        for (const v of victims) Deno.kill(v, "SIGKILL");
        await waitForCount(r, /is ready \(/, victims.length, off, 60_000);
        peak = Math.max(peak, rssKb(r.pid));
      }
      const elapsed = (now() - t0) / 1000;
      const cpuUsed = cpuSeconds(r.pid) - before.cpu;
      const childCpuUsed = childCpuSeconds(r.pid) - before.childCpu;
      const atEnd = rssKb(r.pid);
      // V8 gives garbage back on idle (its memory reducer): read again after 15 s.
      await sleep(15_000);
      const after = { rss: rssKb(r.pid), fds: fdCount(r.pid), atEnd };
      restarts = {
        workers,
        rounds,
        elapsed,
        before,
        after,
        peak,
        cpuPerRestartMs: (cpuUsed / (workers * rounds)) * 1000,
        childCpuPerRestartMs: (childCpuUsed / (workers * rounds)) * 1000,
        live: liveChildren(r.pid).length,
        zombies: zombieChildren(r.pid).length,
      };
      r.signal("SIGTERM");
      await r.waitExit(30_000).catch(() => {});
    } finally {
      await r[Symbol.asyncDispose]();
    }
  }
  Deno.writeTextFileSync(
    `${OUT_DIR}/footprint.json`,
    JSON.stringify({ arb, gun, pm, restarts }, null, 2),
  );
  lines.push(
    `Idle: master with N = ${n} workers (\`sleep infinity\` for arbiter; gunicorn's sync workers; ` +
      `for PM2 its daemon ("God" process, which is also the cluster master) with ${n} cluster ` +
      `workers of the Node app), ` +
      `no traffic. CPU = utime+stime delta / wall time; wake-ups = voluntary context switches ` +
      `summed over all threads (/proc/PID/task/*/status) per second.`,
    "",
    "| master | window | RSS start → end | CPU | wake-ups/s (all threads) | threads (waking) | per waking thread /s |",
    "|---|---|---|---|---|---|---|",
    `| arbiter | ${idleS} s | ${arb.rss0} → ${arb.rss1} kB | ${arb.cpuPct.toFixed(3)} % | ${
      arb.wakeups.toFixed(1)
    } | ${arb.threads} (${arb.busyThreads}) | ${arb.perThread} |`,
    `| gunicorn | 30 s | ${gun.rss0} → ${gun.rss1} kB | ${gun.cpuPct.toFixed(3)} % | ${
      gun.wakeups.toFixed(1)
    } | ${gun.threads} (${gun.busyThreads}) | ${gun.perThread} |`,
    `| pm2 (daemon) | 30 s | ${pm.rss0} → ${pm.rss1} kB | ${pm.cpuPct.toFixed(3)} % | ${
      pm.wakeups.toFixed(1)
    } | ${pm.threads} (${pm.busyThreads}) | ${pm.perThread} |`,
    "",
    `Restarts: ${restarts.workers} \`sleep infinity\` workers SIGKILLed ${restarts.rounds} times ` +
      `(each round once all replacements logged "is ready") = ${
        restarts.workers * restarts.rounds
      } restarts in ${restarts.elapsed.toFixed(1)} s.`,
    "",
    "| | before | right after | after 15 s idle | peak during |",
    "|---|---|---|---|---|",
    `| master RSS | ${restarts.before.rss} kB | ${restarts.after.atEnd} kB | ${restarts.after.rss} kB (${
      restarts.after.rss - restarts.before.rss >= 0 ? "+" : ""
    }${restarts.after.rss - restarts.before.rss} kB) | ${restarts.peak} kB |`,
    `| master fds | ${restarts.before.fds} | | ${restarts.after.fds} | |`,
    `| live workers / zombies | ${restarts.workers} / 0 | | ${restarts.live} / ${restarts.zombies} | |`,
    "",
    `Master CPU per restart: ${restarts.cpuPerRestartMs.toFixed(2)} ms. CPU of each ` +
      `replaced worker process, reaped (cutime+cstime of the master ÷ restarts; a \`sleep\` ` +
      `costs ~1 ms, so this is the exec shim's Deno start-up): ${
        restarts.childCpuPerRestartMs.toFixed(1)
      } ms.`,
  );
  return lines.join("\n");
}
