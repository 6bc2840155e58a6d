/**
 * Benchmark "reload" (run by run.ts). Reload under load: failed requests while HUPs roll the workers, arbiter beside Gunicorn and PM2.
 *
 * @module
 */

import {
  APPS,
  countLog,
  cpuSeconds,
  DEPS_DIR,
  errorBreakdown,
  freePort,
  liveChildren,
  NODE_APP,
  now,
  Pm2,
  runWrk,
  sleep,
  spread,
  startArbiterOn,
  startGunicorn,
  waitFor,
  waitForHttp,
  type WrkResult,
} from "./lib.ts";
import { arbiterReady, type Args, log, OUT_DIR, url } from "./common.ts";

// ---------------------------------------------------------------------------
// 1. Reload under load

interface ReloadOutcome {
  reloads: number;
  started: number;
  note: string;
  /** CPU seconds the supervisor's own process used during the reload window. */
  masterCpu?: number;
}

interface Running {
  /** The supervisor's own process (arbiter/gunicorn master, PM2 daemon). */
  masterPid: number;
  /** Reload every `intervalMs` for `durationMs`; `summary` is called once things settled. */
  reloadLoop(
    intervalMs: number,
    durationMs: number,
  ): Promise<{ reloads: number; summary: () => ReloadOutcome }>;
  workers(): Promise<number>;
  stop(): Promise<void>;
}

interface Setup {
  app: string;
  supervisor: string;
  command: string;
  start(port: number, n: number): Promise<Running>;
}

async function hupLoop(pid: number, intervalMs: number, durationMs: number): Promise<number> {
  const end = now() + durationMs;
  let n = 0;
  while (now() + intervalMs <= end + 1) {
    await sleep(intervalMs);
    Deno.kill(pid, "SIGHUP");
    n++;
  }
  return n;
}

function arbiterSetup(app: string, command: string[]): Setup {
  return {
    app,
    supervisor: "arbiter",
    command: `arbiter -w N -b 127.0.0.1:PORT --graceful-timeout 5 -- ${command.join(" ")}`,
    async start(port, n) {
      const p = startArbiterOn(port, n, command);
      await arbiterReady(p, port);
      return {
        masterPid: p.pid,
        async reloadLoop(intervalMs, durationMs) {
          const off = p.logOffset();
          const reloads = await hupLoop(p.pid, intervalMs, durationMs);
          return {
            reloads,
            summary: () => {
              const started = countLog(p, /started, generation/, off);
              const ready = countLog(p, /generation \d+ is ready/, off);
              return { reloads, started, note: `${ready} generation(s) became ready` };
            },
          };
        },
        workers: () => Promise.resolve(liveChildren(p.pid).length),
        async stop() {
          p.signal("SIGTERM");
          await p.waitExit(30_000).catch(() => {});
          await p[Symbol.asyncDispose]();
        },
      };
    },
  };
}

function gunicornSetup(): Setup {
  return {
    app: "wsgi",
    supervisor: "gunicorn",
    command:
      `gunicorn --chdir scripts/bench/apps -w N -b 127.0.0.1:PORT --graceful-timeout 5 wsgi_app:app`,
    async start(port, n) {
      const p = startGunicorn(port, n);
      await p.waitForLog(/Booting worker/, { timeoutMs: 30_000 });
      await waitForHttp(url(port), { timeoutMs: 30_000 });
      await waitFor(() => liveChildren(p.pid).length === n, { timeoutMs: 30_000 });
      return {
        masterPid: p.pid,
        async reloadLoop(intervalMs, durationMs) {
          const off = p.logOffset();
          const reloads = await hupLoop(p.pid, intervalMs, durationMs);
          return {
            reloads,
            summary: () => ({
              reloads,
              started: countLog(p, /Booting worker with pid/, off),
              note: "",
            }),
          };
        },
        workers: () => Promise.resolve(liveChildren(p.pid).length),
        async stop() {
          p.signal("SIGTERM");
          await p.waitExit(30_000).catch(() => {});
          await p[Symbol.asyncDispose]();
        },
      };
    },
  };
}

function pm2Setup(): Setup {
  return {
    app: "node",
    supervisor: "pm2",
    command:
      `PORT=PORT pm2 start scripts/bench/apps/node_app.cjs -i N --name arbiter-bench; reload: pm2.reload() via scripts/bench/apps/pm2_reloader.cjs`,
    async start(port, n) {
      const pm2 = new Pm2();
      await pm2.kill();
      await pm2.run(["start", NODE_APP, "-i", String(n), "--name", "arbiter-bench"], {
        PORT: String(port),
      });
      await waitForHttp(url(port), { timeoutMs: 30_000 });
      return {
        masterPid: pm2.daemonPid(),
        async reloadLoop(intervalMs, durationMs) {
          const out = await new Deno.Command("node", {
            args: [
              `${APPS}/pm2_reloader.cjs`,
              `${DEPS_DIR}/node_modules/pm2`,
              "arbiter-bench",
              String(intervalMs),
              String(durationMs - intervalMs),
            ],
            env: pm2.env(),
            stdout: "piped",
            stderr: "piped",
            signal: AbortSignal.timeout(durationMs + 60_000),
          }).output();
          const text = new TextDecoder().decode(out.stdout);
          const r = JSON.parse(text.trim().split("\n").at(-1) ?? "{}") as {
            reloads: number;
            errors: number;
            ms: number[];
          };
          const outcome = {
            reloads: r.reloads,
            started: r.reloads * n,
            note: `reload call took ${spread(r.ms, 0, " ms")}, ${r.errors} error(s)`,
          };
          return { reloads: r.reloads, summary: () => outcome };
        },
        async workers() {
          return (await pm2.pids("arbiter-bench")).length;
        },
        async stop() {
          await pm2.run(["delete", "all"]).catch(() => "");
          await pm2.kill();
        },
      };
    },
  };
}

interface ReloadRow {
  setup: string;
  app: string;
  mode: string;
  intervalMs: number;
  steady: WrkResult[];
  reload: WrkResult[];
  outcomes: ReloadOutcome[];
  workersAfter: number[];
}

export async function benchReload(args: Args): Promise<string> {
  const n = 2;
  const setups: { setup: Setup; close: boolean }[] = [
    { setup: arbiterSetup("node", ["node", NODE_APP]), close: true },
    { setup: pm2Setup(), close: true },
    {
      setup: arbiterSetup("wsgi", ["gunicorn", "--chdir", APPS, "-w", "1", "wsgi_app:app"]),
      close: false,
    },
    { setup: gunicornSetup(), close: false },
    { setup: arbiterSetup("node", ["node", NODE_APP]), close: false },
    { setup: pm2Setup(), close: false },
  ];
  const rows: ReloadRow[] = [];
  for (const { setup, close } of setups) {
    const label = `${setup.supervisor} (${setup.app})`;
    const mode = setup.app === "wsgi"
      ? "new conn/request (sync worker)"
      : close
      ? "Connection: close"
      : "keep-alive";
    const port = freePort();
    log(`reload: ${label}, ${mode}`);
    const running = await setup.start(port, n);
    try {
      for (const intervalMs of [500, 2000]) {
        const reps = intervalMs === 500 ? args.reps : 1;
        if (!close && setup.app === "node" && intervalMs !== 500) continue; // keep-alive: 0.5 s only
        const row: ReloadRow = {
          setup: label,
          app: setup.app,
          mode,
          intervalMs,
          steady: [],
          reload: [],
          outcomes: [],
          workersAfter: [],
        };
        for (let i = 0; i < reps; i++) {
          row.steady.push(await runWrk(url(port), { seconds: 5, close }));
          const cpu0 = cpuSeconds(running.masterPid);
          const wrk = runWrk(url(port), { seconds: 10, close });
          const loop = await running.reloadLoop(intervalMs, 10_000);
          row.reload.push(await wrk);
          const masterCpu = cpuSeconds(running.masterPid) - cpu0;
          await sleep(3000); // the last generation takes over, the old one drains
          const outcome = { ...loop.summary(), masterCpu };
          row.outcomes.push(outcome);
          row.workersAfter.push(await running.workers());
          const r = row.reload.at(-1)!;
          log(
            `  every ${intervalMs} ms: steady ${
              row.steady.at(-1)!.rps
            } rps, reload ${r.rps} rps, ` +
              `failed ${r.failed} (${errorBreakdown(r)}), ${outcome.reloads} reloads, ` +
              `${outcome.started} started ${outcome.note}`,
          );
        }
        rows.push(row);
      }
    } finally {
      await running.stop();
    }
  }
  Deno.writeTextFileSync(
    `${OUT_DIR}/reload.json`,
    JSON.stringify(rows, (k, v) => k === "raw" ? undefined : v, 2),
  );
  const lines = [
    `N = ${n} workers, \`wrk ${"-t1 -c16 --timeout 2s"}\` (+ \`-H "Connection: close"\` where said); ` +
    `per repetition: 5 s steady, then 10 s during which the supervisor is reloaded every ` +
    `interval (HUP; \`pm2.reload()\` through PM2's API, waiting for it to return). ` +
    `${args.reps} repetitions at 0.5 s, 1 at 2 s. Throughput share = reload rps / steady rps ` +
    `of the same repetition. Failed = connect + read + write + timeout errors + non-2xx. ` +
    `Medians, (min–max).`,
    "",
    "| supervisor (app) | load | reload every | failed requests | errors c/r/w/t/non2xx (worst) | steady rps | rps during reloads | share of steady | reloads sent | workers started | workers after | supervisor CPU in the 10 s | notes |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const shares = r.reload.map((x, i) => x.rps / r.steady[i].rps);
    const worst = r.reload.reduce((a, b) => (b.failed > a.failed ? b : a));
    lines.push(
      `| ${r.setup} | ${r.mode} | ${r.intervalMs / 1000} s | ${
        spread(r.reload.map((x) => x.failed))
      } | ${errorBreakdown(worst)} | ${spread(r.steady.map((x) => x.rps))} | ${
        spread(r.reload.map((x) => x.rps))
      } | ${spread(shares.map((s) => s * 100), 1, " %")} | ${
        spread(r.outcomes.map((o) => o.reloads))
      } | ${spread(r.outcomes.map((o) => o.started))} | ${r.workersAfter.join(", ")} | ${
        spread(r.outcomes.map((o) => o.masterCpu ?? NaN), 2, " s")
      } | ${r.outcomes.at(-1)?.note ?? ""} |`,
    );
  }
  return lines.join("\n");
}
