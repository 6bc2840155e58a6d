/**
 * Benchmark "scale" (run by run.ts). Scale: starting and stopping many workers, arbiter beside Gunicorn and PM2.
 *
 * @module
 */

import {
  countLog,
  fdCount,
  freePort,
  isWorkerProgram,
  liveChildren,
  NODE_APP,
  now,
  Pm2,
  rssKb,
  sleep,
  spread,
  startArbiterOn,
  startGunicorn,
  waitFor,
  waitForHttp,
} from "./lib.ts";
import { type Args, log, OUT_DIR, url } from "./common.ts";

// ---------------------------------------------------------------------------
// 5. Scale

export async function benchScale(args: Args): Promise<string> {
  const n = 256;
  const starts: number[] = [];
  const allSpawned: number[] = [];
  const reloads: number[] = [];
  const oldGone: number[] = [];
  const rss: number[] = [];
  const fds: number[] = [];
  for (let rep = 0; rep < Math.max(1, args.reps - 1); rep++) {
    const port = freePort();
    const t0 = now();
    const p = startArbiterOn(port, n, ["sleep", "infinity"]);
    try {
      await waitFor(() => liveChildren(p.pid).filter(isWorkerProgram).length >= n || undefined, {
        timeoutMs: 120_000,
        intervalMs: 5,
      });
      allSpawned.push(now() - t0);
      await p.waitForLog(/generation 1 is ready/, { timeoutMs: 120_000 });
      starts.push(now() - t0);
      await sleep(1000);
      rss.push(rssKb(p.pid));
      fds.push(fdCount(p.pid));
      const old = new Set(liveChildren(p.pid));
      const t1 = now();
      p.signal("SIGHUP");
      await p.waitForLog(/generation 2 is ready/, { timeoutMs: 120_000 });
      reloads.push(now() - t1);
      await waitFor(() => liveChildren(p.pid).every((c) => !old.has(c)) ? true : undefined, {
        timeoutMs: 120_000,
        intervalMs: 5,
      });
      oldGone.push(now() - t1);
      log(`scale: start ${starts.at(-1)!.toFixed(0)} ms, reload ${reloads.at(-1)!.toFixed(0)} ms`);
      p.signal("SIGTERM");
      await p.waitExit(60_000).catch(() => {});
    } finally {
      await p[Symbol.asyncDispose]();
    }
  }
  const gun = await scaleGunicorn(n);
  const pm = await scalePm2(n, 60_000);
  Deno.writeTextFileSync(
    `${OUT_DIR}/scale.json`,
    JSON.stringify({ starts, allSpawned, reloads, oldGone, rss, fds, gun, pm }, null, 2),
  );
  const ms = (x: number | string) => typeof x === "number" ? `${x.toFixed(0)} ms` : x;
  return [
    `${n} workers of \`sleep infinity\` (keeps fd 3 open), \`ready = "spawn"\` (1 s settle). ` +
    `Start is measured from spawning \`deno run main.ts\` (includes Deno start-up and ` +
    `type-checking-free module load). ${starts.length} run(s), median (min–max).`,
    "",
    "| | time |",
    "|---|---|",
    `| start → all ${n} children exec'd \`sleep\` | ${spread(allSpawned, 0, " ms")} |`,
    `| start → "generation 1 is ready: ${n} worker(s)" | ${spread(starts, 0, " ms")} |`,
    `| HUP → "generation 2 is ready" | ${spread(reloads, 0, " ms")} |`,
    `| HUP → no worker of generation 1 left | ${spread(oldGone, 0, " ms")} |`,
    `| master RSS / fds with ${n} workers | ${spread(rss, 0, " kB")} / ${spread(fds)} |`,
    "",
    `The same count under the others, 1 run each. Gunicorn: \`gunicorn --chdir scripts/bench/apps ` +
    `-w ${n} -b 127.0.0.1:PORT --graceful-timeout 5 wsgi_app:app\` (sync workers, forked from ` +
    `its master; gunicorn sleeps 0–0.1 s at random between spawns). PM2: \`pm2 start ` +
    `node_app.cjs -i ${pm.instances}\` (cluster mode, a fresh daemon: the time includes its ` +
    `start), then \`pm2 reload\`; ${pm.limitMs / 1000} s allowed for each step. ` +
    `Booted = that many live children of the master (gunicorn also: as many "Booting worker" ` +
    `log lines); replaced = that many children, none of them from before the reload.`,
    "",
    "| supervisor | workers | start → all booted | reload → all replaced | master RSS with the workers | notes |",
    "|---|---|---|---|---|---|",
    `| gunicorn (wsgi) | ${n} | ${ms(gun.startMs)} | HUP: ${
      ms(gun.reloadMs)
    } | ${gun.rssKb} kB | ${gun.note} |`,
    `| pm2 (node) | ${pm.instances} | ${ms(pm.startMs)} | \`pm2 reload\`: ${
      ms(pm.reloadMs)
    } | ${pm.rssKb} kB (daemon) | ${pm.note} |`,
  ].join("\n");
}

interface ScaleOther {
  instances: number;
  limitMs: number;
  startMs: number | string;
  reloadMs: number | string;
  rssKb: number | string;
  note: string;
}

/** Poll `check` every 10 ms until true or `limitMs` passed since `t0`: elapsed ms, or undefined. */
async function within(t0: number, limitMs: number, check: () => boolean | Promise<boolean>) {
  while (now() - t0 < limitMs) {
    if (await check()) return now() - t0;
    await sleep(10);
  }
  return undefined;
}

async function scaleGunicorn(n: number): Promise<ScaleOther> {
  const limitMs = 60_000;
  const r: ScaleOther = {
    instances: n,
    limitMs,
    startMs: "n/a",
    reloadMs: "n/a",
    rssKb: "n/a",
    note: "",
  };
  log(`scale: gunicorn -w ${n}`);
  const port = freePort();
  const t0 = now();
  const g = startGunicorn(port, n);
  try {
    const started = await within(
      t0,
      limitMs,
      () => liveChildren(g.pid).length >= n && countLog(g, /Booting worker with pid/) >= n,
    );
    if (started === undefined) {
      r.startMs = `not done in ${limitMs / 1000} s (${liveChildren(g.pid).length} workers)`;
      return r;
    }
    r.startMs = started;
    await sleep(1000);
    r.rssKb = rssKb(g.pid);
    const old = new Set(liveChildren(g.pid));
    const off = g.logOffset();
    const t1 = now();
    g.signal("SIGHUP");
    const reloaded = await within(t1, limitMs, () => {
      const c = liveChildren(g.pid);
      return c.length >= n && c.every((x) => !old.has(x)) &&
        countLog(g, /Booting worker with pid/, off) >= n;
    });
    r.reloadMs = reloaded ?? `not done in ${limitMs / 1000} s`;
    log(`scale: gunicorn start ${ms0(r.startMs)}, reload ${ms0(r.reloadMs)}`);
  } finally {
    g.signal("SIGTERM");
    await g.waitExit(60_000).catch(() => {});
    await g[Symbol.asyncDispose]();
  }
  return r;
}

function ms0(x: number | string): string {
  return typeof x === "number" ? `${x.toFixed(0)} ms` : x;
}

async function scalePm2(n: number, limitMs: number): Promise<ScaleOther> {
  const r: ScaleOther = {
    instances: n,
    limitMs,
    startMs: "n/a",
    reloadMs: "n/a",
    rssKb: "n/a",
    note: "",
  };
  log(`scale: pm2 -i ${n}`);
  const pm2 = new Pm2();
  await pm2.kill();
  const port = freePort();
  const cli = (args: string[], extra: Record<string, string> = {}) =>
    new Deno.Command(pm2.bin, {
      args,
      env: { ...pm2.env(), ...extra },
      stdout: "null",
      stderr: "null",
      signal: AbortSignal.timeout(limitMs + 5000),
    }).output().then((o) => o.success).catch(() => false);
  const daemon = () => {
    try {
      return pm2.daemonPid();
    } catch {
      return 0;
    }
  };
  const cliDone: number[] = [];
  try {
    const t0 = now();
    const start = cli(["start", NODE_APP, "-i", String(n), "--name", "arbiter-bench"], {
      PORT: String(port),
    }).then((ok) => (cliDone.push(now() - t0), ok));
    const started = await within(t0, limitMs, () => {
      const d = daemon();
      return d > 0 && liveChildren(d).length >= n;
    });
    const startOk = await start;
    if (started === undefined) {
      const d = daemon();
      r.startMs = `**not done in ${limitMs / 1000} s** (${
        d ? liveChildren(d).length : 0
      } of ${n} workers; CLI ${startOk ? "returned" : "failed or timed out"})`;
      return r;
    }
    r.startMs = started;
    r.note = `\`pm2 start\` returned after ${cliDone[0]?.toFixed(0)} ms`;
    await waitForHttp(url(port), { timeoutMs: 10_000 }).catch(() => {});
    await sleep(1000);
    const d = daemon();
    r.rssKb = rssKb(d);
    const old = new Set(liveChildren(d));
    const t1 = now();
    const reload = cli(["reload", "arbiter-bench"]).then((ok) => (cliDone.push(now() - t1), ok));
    const reloaded = await within(t1, limitMs, () => {
      const c = liveChildren(d);
      return c.length >= n && c.every((x) => !old.has(x));
    });
    const reloadOk = await reload;
    if (reloaded === undefined) {
      const c = liveChildren(d);
      r.reloadMs = `**not done in ${limitMs / 1000} s** (${
        c.filter((x) => !old.has(x)).length
      } of ${n} replaced; CLI ${reloadOk ? "returned" : "failed or timed out"})`;
    } else {
      r.reloadMs = reloaded;
      r.note += `; \`pm2 reload\` returned after ${cliDone[1]?.toFixed(0)} ms`;
    }
    log(`scale: pm2 start ${ms0(r.startMs)}, reload ${ms0(r.reloadMs)}`);
  } finally {
    await pm2.run(["delete", "all"]).catch(() => "");
    await pm2.kill();
  }
  return r;
}
