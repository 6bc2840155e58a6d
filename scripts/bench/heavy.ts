/**
 * The heavy-app benchmark: reloads of an app whose import burns 0.4 s of CPU
 * and holds 30 MB (scripts/bench/apps/heavy_app.py, ~1 ms of CPU per
 * request), 4 workers, HUP every 3 s under wrk with a new connection per
 * request — under Gunicorn's own HUP, under arbiter with 4 single gunicorns
 * (with and without `max_surge = 1`) and under arbiter with one preloading
 * gunicorn of 4 forks. Interleaved rounds in one run; medians.
 *
 *     scripts/deno run -A scripts/bench/heavy.ts [--reps N] [--quick]
 *
 * Prints the BENCHMARKS.md table and writes /tmp/arbiter-bench/heavy.json and
 * docs/bench/heavy_reload.svg (throughput and workers' memory over time, of
 * the last round). Loopback only; wrk bounds the load by -d.
 *
 * Per run: wrk for T seconds; HUPs at t = 9, 12, … while t < T − 3. Steady
 * window: t in [2, 9); reload window: from the first HUP to T − 1.
 * - throughput: wrk's 2xx answers per second (a Lua counter per wall second);
 * - failed: socket errors + non-2xx over the whole run;
 * - CPU per HUP: CPU of the whole tree (master, workers, reaped children)
 *   in the reload window, less what its requests cost at the steady CPU per
 *   request, divided by the HUPs sent;
 * - reloads completed: arbiter's `generation.ready` events (a HUP that comes
 *   while a rollout is under way supersedes it: the oldest workers still go
 *   first, but that generation is never complete); Gunicorn applies each HUP;
 * - memory: PSS summed over every process under the master (the master itself
 *   not included), sampled every 250 ms; peak and steady median.
 *
 * @module
 */

import { freePort, median, sleep, startArbiter, waitForHttp } from "./lib.ts";
import { type ArbiterProcess, REPO_ROOT } from "./lib.ts";
import { OUT_DIR } from "./common.ts";
import { renderHeavySvg, type SvgRun } from "./_heavy_svg.ts";

const APPS = `${REPO_ROOT}/scripts/bench/apps`;
const HUP_EVERY_S = 3;
const FIRST_HUP_S = 9;
const STEADY_FROM_S = 2;
const CLK_TCK = 100;

interface Setup {
  name: string;
  start(port: number, dir: string): ArbiterProcess;
}

const GUNICORN_1 = ["gunicorn", "--chdir", APPS, "-w", "1", "--preload", "--graceful-timeout", "5"];
const GUNICORN_4 = ["gunicorn", "--chdir", APPS, "-w", "4", "--preload", "--graceful-timeout", "5"];

function arbiterWith(name: string, toml: (port: number) => string): Setup {
  return {
    name,
    start(port, dir) {
      const file = `${dir}/${name.replace(/\W+/g, "_")}.toml`;
      Deno.writeTextFileSync(file, toml(port));
      return startArbiter(["--config", file]);
    },
  };
}

const common = (port: number) =>
  `bind = "127.0.0.1:${port}"\nready = "notify"\ntimeout = 0\ngraceful_timeout = 10\n` +
  `log_level = "info"\n`;

const SETUPS: Setup[] = [
  {
    name: "Gunicorn -w 4 (its own HUP)",
    start: (port) =>
      startArbiter([], {
        cmd: [
          "gunicorn",
          ...["--chdir", APPS, "-w", "4", "-b", `127.0.0.1:${port}`, "--graceful-timeout", "5"],
          "heavy_app:app",
        ],
      }),
  },
  arbiterWith(
    "arbiter 4 × gunicorn -w 1 --preload",
    (port) =>
      `command = ${JSON.stringify([...GUNICORN_1, "heavy_app:app"])}\nworkers = 4\n${common(port)}`,
  ),
  arbiterWith(
    "arbiter 4 × gunicorn -w 1 --preload, max_surge = 1",
    (port) =>
      `command = ${JSON.stringify([...GUNICORN_1, "heavy_app:app"])}\nworkers = 4\nmax_surge = 1\n${
        common(port)
      }`,
  ),
  arbiterWith(
    "arbiter 1 × gunicorn -w 4 --preload",
    (port) =>
      `command = ${JSON.stringify([...GUNICORN_4, "heavy_app:app"])}\nworkers = 1\n${common(port)}`,
  ),
];

const COUNTER_LUA = `
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
function response(status, headers, body)
  if status >= 200 and status < 300 then
    local t = os.time()
    counts[t] = (counts[t] or 0) + 1
  end
end
function done(summary, latency, requests)
  local total = {}
  for _, th in ipairs(threads) do
    for k, v in pairs(th:get("counts")) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, string.format('"%d":%d', k, v)) end
  io.write("COUNTS {" .. table.concat(parts, ",") .. "}\\n")
end
`;

/**
 * `pid`'s descendants with their CPU ticks (utime+stime+cutime+cstime), by
 * one scan of /proc (this kernel has no /proc/PID/task/TID/children).
 */
function descendantsOf(pid: number): Map<number, number> {
  const parent = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const text = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
      parent.set(Number(e.name), Number(f[1]));
      ticks.set(Number(e.name), Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]));
    } catch { /* gone */ }
  }
  const out = new Map<number, number>();
  const isUnder = (p: number): boolean => {
    for (let q = parent.get(p), hops = 0; q !== undefined && hops < 64; q = parent.get(q), hops++) {
      if (q === pid) return true;
    }
    return false;
  };
  for (const [p, t] of ticks) if (isUnder(p)) out.set(p, t);
  return out;
}

/** utime+stime+cutime+cstime of `pid` and every live descendant, in seconds. */
function treeCpu(pid: number): number {
  let ticks = 0;
  for (const t of descendantsOf(pid).values()) ticks += t;
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  } catch { /* gone */ }
  return ticks / CLK_TCK;
}

/** PSS summed over the master's descendants, in MB. */
function workersPssMb(pid: number): number {
  let kb = 0;
  for (const p of descendantsOf(pid).keys()) {
    try {
      const m = Deno.readTextFileSync(`/proc/${p}/smaps_rollup`).match(/^Pss:\s+(\d+) kB$/m);
      if (m) kb += Number(m[1]);
    } catch { /* gone */ }
  }
  return kb / 1024;
}

interface RunResult {
  name: string;
  steadyRps: number;
  reloadRps: number;
  ratio: number;
  failed: number;
  errors: string;
  /** CPU beyond the requests' in the reload window, per HUP sent. */
  cpuPerHupS: number;
  steadyMemMb: number;
  peakMemMb: number;
  hups: number;
  /** Reloads that completed (arbiter: generations that became ready; Gunicorn: the HUPs sent). */
  reloads: number;
  /** Per second since wrk started: 2xx answers. */
  rps: number[];
  /** [seconds since wrk started, MB]. */
  memory: [number, number][];
  hupAt: number[];
  /** When a reload completed (arbiter's `generation.ready`), seconds since wrk started. */
  readyAt: number[];
}

async function runOne(setup: Setup, seconds: number, dir: string): Promise<RunResult> {
  const port = freePort();
  const proc = setup.start(port, dir);
  try {
    await waitForHttp(`http://127.0.0.1:${port}/`, { timeoutMs: 60_000 });
    await sleep(1500); // every fork up
    const lua = `${OUT_DIR}/heavy_counter.lua`;
    Deno.writeTextFileSync(lua, COUNTER_LUA);
    const logFrom = proc.logOffset();
    const t0 = Date.now() / 1000;
    const wrk = new Deno.Command("wrk", {
      args: [
        ...["-t2", "-c16", `-d${seconds}s`, "--timeout", "2s", "-H", "Connection: close"],
        ...["-s", lua, `http://127.0.0.1:${port}/`],
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const memory: [number, number][] = [];
    const hupAt: number[] = [];
    const cpuAt = new Map<string, number>();
    const lastHup = seconds - HUP_EVERY_S;
    let nextHup = FIRST_HUP_S;
    const sampler = setInterval(() => {
      memory.push([Date.now() / 1000 - t0, workersPssMb(proc.pid)]);
    }, 250);
    try {
      while (Date.now() / 1000 - t0 < seconds - 1) {
        const t = Date.now() / 1000 - t0;
        if (t >= STEADY_FROM_S && !cpuAt.has("steady")) cpuAt.set("steady", treeCpu(proc.pid));
        if (t >= nextHup && nextHup <= lastHup) {
          if (!cpuAt.has("reload")) cpuAt.set("reload", treeCpu(proc.pid));
          proc.signal("SIGHUP");
          hupAt.push(t);
          nextHup += HUP_EVERY_S;
        }
        await sleep(20);
      }
      cpuAt.set("end", treeCpu(proc.pid));
    } finally {
      clearInterval(sampler);
    }
    const out = await wrk;
    // Reloads that completed: arbiter coalesces HUPs that come while one is under way.
    const readyAt = [
      ...proc.stderr().slice(logFrom).matchAll(
        /(\d{4}-\d\d-\d\dT[\d:.]+Z) arbiter\[\d+\] INFO \[generation\.ready\]/g,
      ),
    ].map((m) => Date.parse(m[1]) / 1000 - t0);
    const done = setup.name.startsWith("arbiter") ? readyAt.length : undefined;
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    const counts: Record<string, number> = JSON.parse(text.match(/COUNTS (\{.*\})/)?.[1] ?? "{}");
    const start = Math.floor(t0);
    const rps: number[] = [];
    for (let s = 0; s < seconds; s++) rps.push(counts[String(start + s)] ?? 0);
    const window = (from: number, to: number) => rps.slice(Math.ceil(from), Math.floor(to));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    const steady = window(STEADY_FROM_S, FIRST_HUP_S);
    const reload = window(FIRST_HUP_S, seconds - 1);
    const se = text.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
    const non2xx = Number(text.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
    const socketErrors = se ? se.slice(1).map(Number).reduce((a, b) => a + b, 0) : 0;
    const steadyCpu = cpuAt.get("reload")! - cpuAt.get("steady")!;
    const cpuPerRequest = steadyCpu / Math.max(1, steady.reduce((a, b) => a + b, 0));
    const reloadCpu = cpuAt.get("end")! - cpuAt.get("reload")!;
    const reloadRequests = reload.reduce((a, b) => a + b, 0);
    const steadyMem = memory.filter(([t]) => t >= STEADY_FROM_S && t < FIRST_HUP_S).map((m) =>
      m[1]
    );
    return {
      name: setup.name,
      steadyRps: mean(steady),
      reloadRps: mean(reload),
      ratio: mean(reload) / mean(steady),
      failed: socketErrors + non2xx,
      errors: se ? `${se[0]}; non-2xx ${non2xx}` : `non-2xx ${non2xx}`,
      cpuPerHupS: (reloadCpu - reloadRequests * cpuPerRequest) / Math.max(1, hupAt.length),
      steadyMemMb: median(steadyMem),
      peakMemMb: Math.max(...memory.map((m) => m[1])),
      hups: hupAt.length,
      reloads: done ?? hupAt.length,
      rps,
      memory,
      hupAt,
      readyAt,
    };
  } finally {
    proc.signal("SIGTERM");
    await proc.waitExit(30_000).catch(() => {});
    await proc[Symbol.asyncDispose]();
  }
}

function table(runs: RunResult[][], reps: number, seconds: number): string {
  const f = (xs: number[], d = 0) => {
    const m = median(xs);
    const lo = Math.min(...xs);
    const hi = Math.max(...xs);
    return xs.length > 1 ? `${m.toFixed(d)} (${lo.toFixed(d)}–${hi.toFixed(d)})` : m.toFixed(d);
  };
  const lines = [
    `${reps} interleaved round(s) of ${seconds} s each; median (min–max). wrk -t2 -c16 with ` +
    "`Connection: close`; HUP every 3 s from t = 9 s. Memory: PSS summed over the workers " +
    "(every process under the master, the master not included).",
    "",
    "| setup | steady req/s | req/s during reloads | ratio | failed | reloads completed / HUPs | CPU per HUP | workers' memory steady → peak |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const setup of SETUPS) {
    const rs = runs.map((round) => round.find((r) => r.name === setup.name)).filter((r) =>
      r !== undefined
    );
    if (rs.length === 0) continue;
    lines.push(
      `| ${setup.name} | ${f(rs.map((r) => r.steadyRps))} | ${f(rs.map((r) => r.reloadRps))} | ${
        f(rs.map((r) => r.ratio), 2)
      } | ${rs.map((r) => r.failed).join(", ")} | ${
        rs.map((r) => `${r.reloads}/${r.hups}`).join(", ")
      } | ${f(rs.map((r) => r.cpuPerHupS), 2)} s | ${f(rs.map((r) => r.steadyMemMb))} → ${
        f(rs.map((r) => r.peakMemMb))
      } MB |`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const repsArg = Deno.args.indexOf("--reps");
  const reps = repsArg >= 0 ? Number(Deno.args[repsArg + 1]) : 3;
  const seconds = Deno.args.includes("--quick") ? 16 : 30;
  const onlyArg = Deno.args.indexOf("--only");
  const only = onlyArg >= 0 ? Number(Deno.args[onlyArg + 1]) : undefined;
  Deno.mkdirSync(OUT_DIR, { recursive: true });
  const dir = Deno.makeTempDirSync({ prefix: "arbiter-heavy-" });
  const load0 = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  const runs: RunResult[][] = [];
  try {
    for (let rep = 0; rep < reps; rep++) {
      const round: RunResult[] = [];
      for (const setup of SETUPS.filter((_, i) => only === undefined || i === only)) {
        console.error(`heavy: round ${rep + 1}/${reps}: ${setup.name}`);
        round.push(await runOne(setup, seconds, dir));
      }
      runs.push(round);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  const load1 = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  Deno.writeTextFileSync(`${OUT_DIR}/heavy.json`, JSON.stringify({ load0, load1, runs }, null, 2));
  const last: SvgRun[] = runs.at(-1)!.map((r) => ({ ...r }));
  Deno.writeTextFileSync(`${REPO_ROOT}/docs/bench/heavy_reload.svg`, renderHeavySvg(last, seconds));
  console.log(table(runs, reps, seconds));
  console.log(`\nload average ${load0} at start, ${load1} at the end.`);
}
