/**
 * Benchmark "recovery" (run by run.ts). Recovery: how fast a killed or hung worker is replaced and serving again.
 *
 * @module
 */

import {
  freePort,
  isWorkerProgram,
  liveChildren,
  median,
  NODE_APP,
  now,
  percentile,
  Pm2,
  REPO_ROOT,
  sleep,
  spread,
  startArbiterOn,
  startGunicorn,
  stateOf,
  waitFor,
  waitForHttp,
  WSGI_FD,
} from "./lib.ts";
import { arbiterReady, type Args, log, OUT_DIR, url } from "./common.ts";

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

export async function benchRecovery(_args: Args): Promise<string> {
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
