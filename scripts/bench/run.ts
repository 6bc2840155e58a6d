/**
 * arbiter benchmarks against Gunicorn, PM2 (cluster mode) and a bare
 * launcher, on the same worker code. Writes its tables into BENCHMARKS.md
 * (between `<!-- bench:NAME -->` markers) and the raw numbers into
 * /tmp/arbiter-bench/NAME.json.
 *
 *   scripts/bench/run.sh                       # all, ~12 min
 *   scripts/bench/run.sh reload recovery       # some, by name
 *   scripts/bench/run.sh --reps 1 --no-write overhead
 *
 * Names: reload, overhead, recovery, footprint, scale. Traffic goes to
 * 127.0.0.1 only; every load loop is bounded by wrk's -d and by a count.
 *
 * @module
 */

import {
  APPS,
  type ArbiterProcess,
  childCpuSeconds,
  childPids,
  countLog,
  cpuSeconds,
  DEPS_DIR,
  errorBreakdown,
  fdCount,
  freePort,
  haveTool,
  isWorkerProgram,
  liveChildren,
  median,
  NODE_APP,
  now,
  percentile,
  Pm2,
  REPO_ROOT,
  rssKb,
  runWrk,
  sleep,
  spread,
  startArbiterOn,
  startGunicorn,
  startLauncher,
  stateOf,
  switchesBetween,
  versionOf,
  voluntarySwitches,
  waitFor,
  waitForCount,
  waitForHttp,
  type WrkResult,
  WSGI_FD,
  zombieChildren,
} from "./lib.ts";

const OUT_DIR = "/tmp/arbiter-bench";
Deno.mkdirSync(OUT_DIR, { recursive: true });

interface Args {
  names: string[];
  reps: number;
  write: boolean;
  file: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { names: [], reps: 3, write: true, file: `${REPO_ROOT}/BENCHMARKS.md` };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    if (x === "--reps") a.reps = Number(argv[++i]);
    else if (x === "--no-write") a.write = false;
    else if (x === "--file") a.file = argv[++i];
    else if (x.startsWith("-")) throw new Error(`unknown option ${x}`);
    else a.names.push(x);
  }
  return a;
}

function log(msg: string): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

const url = (port: number) => `http://127.0.0.1:${port}/`;

/** Wait until the master logged "generation 1 is ready" and the port answers. */
async function arbiterReady(p: ArbiterProcess, port: number): Promise<void> {
  await p.waitForLog(/generation 1 is ready/, { timeoutMs: 60_000 });
  await waitForHttp(url(port), { timeoutMs: 30_000 });
}

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

async function benchReload(args: Args): Promise<string> {
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

// ---------------------------------------------------------------------------
// 2. Request-path overhead

async function benchOverhead(args: Args): Promise<string> {
  const n = 2;
  const apps: { name: string; command: string[]; close: boolean }[] = [
    { name: "node (keep-alive)", command: ["node", NODE_APP], close: false },
    { name: "wsgi_fd.py (new conn/request)", command: ["python3", WSGI_FD], close: false },
  ];
  const lines = [
    `N = ${n} workers on one shared socket; the same worker command under arbiter and under ` +
    `\`tests/workers/launch.py --workers ${n}\` (binds one socket, forks N children, nothing else). ` +
    `\`wrk -t1 -c16 -d5s\`; the two alternate, ${args.reps + 2} runs each. ` +
    `Ratio = median arbiter rps / median launcher rps; per-pair ratios in brackets. ` +
    `Master CPU = the arbiter master's utime+stime during its wrk runs; master wake-ups = its ` +
    `voluntary context switches (all threads) during them.`,
    "",
    "| app | arbiter rps | launcher rps | ratio (per-pair min–max) | arbiter master CPU during load | master wake-ups per 1,000 requests | target |",
    "|---|---|---|---|---|---|---|",
  ];
  const raw: unknown[] = [];
  for (const app of apps) {
    const a: number[] = [];
    const b: number[] = [];
    const masterCpu: number[] = [];
    const wakesPerK: number[] = [];
    const portA = freePort();
    const pA = startArbiterOn(portA, n, app.command);
    const portB = freePort();
    const pB = startLauncher(portB, n, app.command);
    try {
      await arbiterReady(pA, portA);
      await waitForHttp(url(portB), { timeoutMs: 30_000 });
      await runWrk(url(portA), { seconds: 2, close: app.close }); // warm-up
      await runWrk(url(portB), { seconds: 2, close: app.close });
      for (let i = 0; i < args.reps + 2; i++) {
        const order = i % 2 === 0 ? ["a", "b"] : ["b", "a"];
        for (const which of order) {
          if (which === "a") {
            const c0 = cpuSeconds(pA.pid);
            const s0 = voluntarySwitches(pA.pid);
            const r = await runWrk(url(portA), { seconds: 5, close: app.close });
            masterCpu.push((cpuSeconds(pA.pid) - c0) / r.seconds);
            wakesPerK.push((switchesBetween(s0, voluntarySwitches(pA.pid)) / r.requests) * 1000);
            a.push(r.rps);
          } else {
            b.push((await runWrk(url(portB), { seconds: 5, close: app.close })).rps);
          }
        }
        log(`overhead ${app.name}: arbiter ${a.at(-1)} rps, launcher ${b.at(-1)} rps`);
      }
    } finally {
      for (const p of [pA, pB]) {
        p.signal("SIGTERM");
        await p.waitExit(20_000).catch(() => {});
        await p[Symbol.asyncDispose]();
      }
    }
    const ratio = median(a) / median(b);
    const pairs = a.map((x, i) => x / b[i]);
    raw.push({ app: app.name, arbiter: a, launcher: b, masterCpu, wakesPerK });
    lines.push(
      `| ${app.name} | ${spread(a)} | ${spread(b)} | **${ratio.toFixed(3)}** (${
        Math.min(...pairs).toFixed(3)
      }–${Math.max(...pairs).toFixed(3)}) | ${
        spread(masterCpu.map((x) => x * 100), 2, " %")
      } of a core | ${spread(wakesPerK, 1)} | ≥ 0.98: ${ratio >= 0.98 ? "met" : "**not met**"} |`,
    );
  }
  Deno.writeTextFileSync(`${OUT_DIR}/overhead.json`, JSON.stringify(raw, null, 2));
  return lines.join("\n");
}

// ---------------------------------------------------------------------------
// 3. Recovery after SIGKILL (and hang detection)

interface RecoverySample {
  spawnMs: number;
  /** The new child runs the worker program (the exec shim has exec'ed). */
  execMs: number;
  servedMs: number;
  readyLogMs?: number;
  /** The request sent right after the kill was answered (else only a later one was). */
  firstAnswered?: boolean;
}

/** GET once on a fresh connection; resolves with the time it answered 200, or NaN (never hangs). */
function servedAt(port: number, timeoutMs: number): Promise<number> {
  let conn: Deno.TcpConn | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const attempt = (async () => {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("GET / HTTP/1.0\r\nHost: x\r\n\r\n"));
    const buf = new Uint8Array(256);
    const n = await conn.read(buf);
    const t = now();
    const head = new TextDecoder().decode(buf.subarray(0, n ?? 0));
    return /^HTTP\/1\.[01] 200/.test(head) ? t : NaN;
  })().catch(() => NaN);
  const timeout = new Promise<number>((r) => timer = setTimeout(() => r(NaN), timeoutMs));
  return Promise.race([attempt, timeout]).finally(() => {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch {
      // closed
    }
  });
}

/**
 * PM2: the request sent right after the kill (answered or not within 3 s), and
 * beside it a fresh request (100 ms timeout each) every 1 ms until one is
 * answered. `t` = the first answer of either, NaN if none within `timeoutMs`.
 */
async function servedEventually(
  port: number,
  timeoutMs: number,
): Promise<{ t: number; firstAnswered: boolean }> {
  const end = now() + timeoutMs;
  const first = servedAt(port, 3000);
  let polled = NaN;
  let firstT = NaN;
  first.then((t) => firstT = t);
  while (now() < end && Number.isNaN(firstT) && Number.isNaN(polled)) {
    polled = await servedAt(port, 100);
    if (Number.isNaN(polled)) await sleep(1);
  }
  const f = await first;
  const t = Math.min(Number.isNaN(f) ? Infinity : f, Number.isNaN(polled) ? Infinity : polled);
  return { t: Number.isFinite(t) ? t : NaN, firstAnswered: !Number.isNaN(f) };
}

async function recoveryRuns(
  label: string,
  runs: number,
  masterPid: number,
  port: number,
  afterKill: (oldPid: number, newPid: number, t0: number) => Promise<number | undefined>,
  /** Re-send the request until answered (PM2: its master closes the socket with the last worker). */
  retry = false,
): Promise<RecoverySample[]> {
  const out: RecoverySample[] = [];
  for (let i = 0; i < runs; i++) {
    const workers = await waitFor(() => {
      const c = liveChildren(masterPid);
      return c.length === 1 ? c : undefined;
    }, { timeoutMs: 30_000 });
    const old = workers[0];
    await waitForHttp(url(port), { timeoutMs: 30_000 });
    const t0 = now();
    Deno.kill(old, "SIGKILL");
    const served = retry
      ? servedEventually(port, 10_000)
      : servedAt(port, 10_000).then((t) => ({ t, firstAnswered: !Number.isNaN(t) }));
    const newPid = await waitFor(() => {
      const c = liveChildren(masterPid).filter((p) => p !== old);
      return c.length > 0 ? c[0] : undefined;
    }, { timeoutMs: 30_000, intervalMs: 1 });
    const spawnMs = now() - t0;
    await waitFor(() => isWorkerProgram(newPid) || stateOf(newPid) === undefined, {
      timeoutMs: 30_000,
      intervalMs: 1,
    });
    const execMs = now() - t0;
    const { t: servedT, firstAnswered } = await served;
    const servedMs = servedT - t0;
    const readyAt = await afterKill(old, newPid, t0);
    out.push({
      spawnMs,
      execMs,
      servedMs,
      readyLogMs: readyAt === undefined ? undefined : readyAt - t0,
      firstAnswered,
    });
    await sleep(100);
  }
  log(
    `recovery ${label}: served median ${median(out.map((s) => s.servedMs)).toFixed(1)} ms, ` +
      `max ${Math.max(...out.map((s) => s.servedMs)).toFixed(1)} ms`,
  );
  return out;
}

async function benchRecovery(_args: Args): Promise<string> {
  const runs = 50;
  const results: { label: string; samples: RecoverySample[]; note: string }[] = [];
  // arbiter, N = 1, wsgi_fd.py and node
  for (
    const [label, cmd] of [
      ["arbiter (wsgi_fd.py)", ["python3", WSGI_FD]],
      ["arbiter (node)", ["node", NODE_APP]],
    ] as [string, string[]][]
  ) {
    const port = freePort();
    const p = startArbiterOn(port, 1, cmd);
    try {
      await arbiterReady(p, port);
      const samples = await recoveryRuns(label, runs, p.pid, port, async (_old, newPid) => {
        const m = await p.waitForLog(new RegExp(`\\(pid ${newPid}\\) is ready`), {
          timeoutMs: 30_000,
        });
        // The log line's own timestamp (wall clock) converted to our monotonic clock.
        const line = p.stderr().slice(0, (m.index ?? 0) + m[0].length).split("\n").at(-1)!;
        const wall = Date.parse(line.slice(0, 24));
        return now() - (Date.now() - wall);
      });
      results.push({ label, samples, note: "" });
    } finally {
      p.signal("SIGTERM");
      await p.waitExit(20_000).catch(() => {});
      await p[Symbol.asyncDispose]();
    }
  }
  {
    const port = freePort();
    const p = startGunicorn(port, 1);
    try {
      await waitForHttp(url(port), { timeoutMs: 30_000 });
      const samples = await recoveryRuns(
        "gunicorn",
        runs,
        p.pid,
        port,
        () => Promise.resolve(undefined),
      );
      results.push({ label: "gunicorn -w 1 (sync)", samples, note: "" });
    } finally {
      p.signal("SIGTERM");
      await p.waitExit(20_000).catch(() => {});
      await p[Symbol.asyncDispose]();
    }
  }
  {
    const port = freePort();
    const pm2 = new Pm2();
    await pm2.kill();
    try {
      await pm2.run([
        "start",
        NODE_APP,
        "-i",
        "1",
        "--name",
        "arbiter-bench",
        "--max-restarts",
        "100000",
      ], { PORT: String(port) });
      await waitForHttp(url(port), { timeoutMs: 30_000 });
      const samples = await recoveryRuns(
        "pm2",
        runs,
        pm2.daemonPid(),
        port,
        () => Promise.resolve(undefined),
        true,
      );
      results.push({ label: "pm2 -i 1 (node, cluster)", samples, note: "" });
    } finally {
      await pm2.run(["delete", "all"]).catch(() => "");
      await pm2.kill();
    }
  }
  const hang = await measureHang();
  Deno.writeTextFileSync(`${OUT_DIR}/recovery.json`, JSON.stringify({ results, hang }, null, 2));
  const f = (xs: number[]) =>
    xs.length && !xs.some(Number.isNaN)
      ? `${median(xs).toFixed(1)} / ${percentile(xs, 95).toFixed(1)} / ${
        Math.max(...xs).toFixed(1)
      }`
      : xs.length
      ? `${xs.filter(Number.isNaN).length} of ${xs.length} never served`
      : "n/a";
  const lines = [
    `N = 1 worker, so the only process that can answer is the replacement; ${runs} runs each. ` +
    `Clock starts at \`kill -KILL\` of the worker. *Spawned*: a new child pid of the master ` +
    `appears in /proc (polled every 1 ms). *Exec'd*: that child runs the worker program — ` +
    `arbiter starts each worker through its own executable in a hidden exec mode ` +
    `(src/spawn/exec_shim.ts), which boots a Deno runtime before it execs the command; ` +
    `gunicorn forks its preloaded master (no exec); PM2 (cluster mode, \`--max-restarts 100000\` so ` +
    `that 50 quick kills do not mark the app errored) forks a new \`node\` directly, so its two ` +
    `columns coincide. *Serving*: a request sent right after the kill ` +
    `(it waits in the listen backlog, which the master keeps open) gets its 200 — i.e. the ` +
    `replacement answering on its own; this is the number that matters. PM2's master (Node's ` +
    `cluster module) keeps accepting, but a request sent right after the kill is mostly lost ` +
    `(no answer within 3 s; counted in the last column), so for PM2 a fresh request (100 ms ` +
    `timeout) is also sent every 1 ms and _serving_ is the first answer of either. ` +
    `*"is ready" log*: ` +
    `the master's "worker N (pid P) is ready" line, which with \`ready = "spawn"\` is by ` +
    `design spawn + 1 s settle delay. ms, median / p95 / max.`,
    "",
    '| supervisor (worker) | spawned | worker program exec\'d | serving | "is ready" log line | request sent right after the kill |',
    "|---|---|---|---|---|---|",
  ];
  for (const r of results) {
    const ready = r.samples.map((s) => s.readyLogMs).filter((x): x is number => x !== undefined);
    lines.push(
      `| ${r.label} | ${f(r.samples.map((s) => s.spawnMs))} | ${
        f(r.samples.map((s) => s.execMs))
      } | ${f(r.samples.map((s) => s.servedMs))} | ${ready.length ? f(ready) : "n/a"} | ${
        r.samples.filter((s) => s.firstAnswered).length
      } of ${r.samples.length} answered |`,
    );
  }
  lines.push("", `**Hang → detection (watchdog):** ${hang}`);
  return lines.join("\n");
}

/**
 * A worker that pings WATCHDOG=1 and then stops (py_worker's /stop-watchdog),
 * under `timeout = 2`: time from the stop to the master's log of it, and to
 * the replacement serving. "not measured" when the build has no watchdog yet.
 */
async function measureHang(): Promise<string> {
  const port = freePort();
  const timeoutS = 2;
  // The master passes its environment on: WATCHDOG_PING=1 makes py_worker ping.
  const q = startArbiterOn(
    port,
    1,
    ["python3", `${REPO_ROOT}/tests/workers/py_worker.py`],
    ["--timeout", String(timeoutS)],
    { WATCHDOG_PING: "1" },
  );
  const samples: { detectMs: number; servedMs: number }[] = [];
  let line = "";
  try {
    await arbiterReady(q, port);
    const info = JSON.parse((await waitForHttp(url(port))).text) as { env: Record<string, string> };
    if (!info.env.NOTIFY_SOCKET || !info.env.WATCHDOG_USEC) {
      return "not measured: needs the watchdog (the worker got no NOTIFY_SOCKET / WATCHDOG_USEC)";
    }
    for (let i = 0; i < 5; i++) {
      const worker = liveChildren(q.pid)[0];
      const off = q.logOffset();
      await sleep(timeoutS * 1000); // let it ping for a while first
      const res = await fetch(`${url(port)}stop-watchdog`);
      await res.text();
      const t0 = now();
      try {
        const m = await q.waitForLog(
          new RegExp(`[^\\n]*pid ${worker}\\b[^\\n]*(timeout|watchdog|SIGABRT)[^\\n]*`, "i"),
          { after: off, timeoutMs: timeoutS * 1000 + 10_000 },
        );
        line = m[0].replace(/^\S+ arbiter\[\d+\] /, "");
      } catch {
        return `not measured: needs the watchdog (no timeout logged for pid ${worker} within ${
          timeoutS + 10
        } s of its last WATCHDOG=1)`;
      }
      const detectMs = now() - t0;
      const newPid = await waitFor(() => liveChildren(q.pid).find((x) => x !== worker), {
        timeoutMs: 20_000,
        intervalMs: 5,
      });
      await waitFor(async () => {
        const r = await fetch(url(port));
        const j = await r.json() as { pid: number };
        return j.pid === newPid;
      }, { timeoutMs: 20_000, intervalMs: 5 });
      samples.push({ detectMs, servedMs: now() - t0 });
    }
  } catch (e) {
    return `not measured: ${(e as Error).message.split("\n")[0]}`;
  } finally {
    q.signal("SIGTERM");
    await q.waitExit(20_000).catch(() => {});
    await q[Symbol.asyncDispose]();
  }
  return `\`--timeout ${timeoutS}\`, tests/workers/py_worker.py with WATCHDOG_PING=1 (pings ` +
    `every WATCHDOG_USEC/3 ≈ ${(timeoutS / 3).toFixed(2)} s), then GET /stop-watchdog; 5 runs. ` +
    `From the stop request (the last ping was 0–${(timeoutS / 3).toFixed(2)} s earlier) → ` +
    `the master logs the hang: ${
      spread(samples.map((s) => s.detectMs), 0, " ms")
    }; → replacement serving: ${
      spread(samples.map((s) => s.servedMs), 0, " ms")
    }. Log line: \`${line}\`.`;
}

// ---------------------------------------------------------------------------
// 4. Master footprint

async function idleReading(pid: number, seconds: number) {
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

async function benchFootprint(_args: Args): Promise<string> {
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

// ---------------------------------------------------------------------------
// 5. Scale

async function benchScale(args: Args): Promise<string> {
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

// ---------------------------------------------------------------------------
// Machine, versions, BENCHMARKS.md

async function machine(): Promise<string> {
  const cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/^model name\s*:\s*(.*)$/m)?.[1] ??
    "unknown";
  const load = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  const mem = Deno.readTextFileSync("/proc/meminfo").match(/^MemTotal:\s*(\d+)/m)?.[1];
  const pm2v = await versionOf("node", [
    "-p",
    `require(${JSON.stringify(`${DEPS_DIR}/node_modules/pm2/package.json`)}).version`,
  ]);
  const rows: [string, string][] = [
    ["date", new Date().toISOString()],
    ["cores (nproc)", String(navigator.hardwareConcurrency)],
    ["CPU", cpu],
    ["memory", mem ? `${Math.round(Number(mem) / 1024)} MiB` : "?"],
    ["kernel", Deno.osRelease()],
    ["load average at start", load],
    ["deno", Deno.version.deno],
    ["node", await versionOf("node", ["--version"])],
    ["python3", await versionOf("python3", ["--version"])],
    ["gunicorn", await versionOf("gunicorn", ["--version"])],
    ["pm2", pm2v],
    ["wrk", (await versionOf("wrk", ["-v"])).replace(/ \[.*$/, "")],
  ];
  return [
    "| | |",
    "|---|---|",
    ...rows.map(([k, v]) => `| ${k} | ${v} |`),
    "",
    "The machine is shared with other engineers running test suites while this ran: " +
    "absolute numbers are noisy, ratios within one run are what to compare.",
  ].join("\n");
}

function writeSection(file: string, name: string, body: string): void {
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch {
    text = "# Benchmarks\n";
  }
  const open = `<!-- bench:${name} -->`;
  const close = `<!-- /bench:${name} -->`;
  const block = `${open}\n${body}\n${close}`;
  const i = text.indexOf(open);
  const j = text.indexOf(close);
  if (i >= 0 && j > i) text = text.slice(0, i) + block + text.slice(j + close.length);
  else text = text.trimEnd() + `\n\n## ${name}\n\n${block}\n`;
  Deno.writeTextFileSync(file, text);
}

const BENCHES: Record<string, (a: Args) => Promise<string>> = {
  reload: benchReload,
  overhead: benchOverhead,
  recovery: benchRecovery,
  footprint: benchFootprint,
  scale: benchScale,
};

if (import.meta.main) {
  const args = parseArgs(Deno.args);
  const names = args.names.length ? args.names : Object.keys(BENCHES);
  for (const nme of names) {
    if (!BENCHES[nme]) throw new Error(`unknown benchmark ${nme}; known: ${Object.keys(BENCHES)}`);
  }
  for (const tool of ["wrk", "gunicorn", "node", "python3"]) {
    if (!(await haveTool(tool, tool === "wrk" ? ["-v"] : ["--version"]))) {
      throw new Error(`${tool} is missing: run scripts/bench/setup.sh`);
    }
  }
  const t0 = now();
  const m = await machine();
  if (args.write) writeSection(args.file, "machine", m);
  for (const nme of names) {
    log(`=== ${nme}`);
    const t = now();
    let body: string;
    try {
      body = await BENCHES[nme](args);
    } catch (e) {
      body = `**failed to run:** ${(e as Error).stack ?? e}`;
      log(body);
    }
    body += `\n\n_Ran in ${((now() - t) / 1000).toFixed(0)} s on ${
      new Date().toISOString().slice(0, 16)
    }Z; \`scripts/bench/run.sh ${nme}\`._`;
    console.log(`\n## ${nme}\n\n${body}\n`);
    if (args.write) writeSection(args.file, nme, body);
  }
  if (args.write) {
    // Keep the file as `deno fmt` wants it (the repo's check task runs `deno fmt --check`).
    await new Deno.Command(Deno.execPath(), { args: ["fmt", "-q", args.file] }).output();
  }
  log(`all done in ${((now() - t0) / 1000).toFixed(0)} s`);
  // Any descendant left behind is a bug of this script: say so.
  const left = childPids(Deno.pid);
  if (left.length) log(`warning: children left: ${left.join(" ")}`);
}
