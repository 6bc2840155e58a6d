/**
 * The master's own memory: what each dependency costs when loaded, the
 * running master with 4 workers beside Gunicorn's master with 4 workers (one
 * run), and whether it stays flat over many reload cycles.
 *
 *     scripts/deno run -A scripts/bench/master_memory.ts [deps] [idle] [cycles=N]
 *
 * (all three by default, N = 1000). Prints Markdown tables for BENCHMARKS.md
 * ("Master memory") and writes the raw numbers to
 * /tmp/arbiter-bench/master_memory.json. Loopback only; every wait is
 * bounded.
 *
 * - deps: a fresh `deno run` that imports one module, collects garbage and
 *   reads its VmRSS, 3 times each, median. "bare" imports nothing.
 * - idle: RSS and PSS of each master 25 s after its 4 workers are ready
 *   (arbiter: `sleep infinity` workers; Gunicorn: its sync workers), when
 *   arbiter's master has given back what starting them left in its C heap.
 * - cycles: HUP the master N times, each once the previous generation is
 *   ready (Python workers that send READY=1 at once), RSS and its parts
 *   (smaps) every N/20 cycles, and idle before the first and after the last.
 *
 * @module
 */

import {
  freePort,
  MAIN_TS,
  median,
  now,
  REPO_ROOT,
  rssKb,
  sleep,
  startArbiter,
  startGunicorn,
  waitForHttp,
} from "./lib.ts";
import { OUT_DIR } from "./common.ts";
import { RELEASE_MEMORY_AFTER_MS } from "../../src/core/records.ts";

const DENO = Deno.execPath();
/** V8 flags for the arbiter master under test (`V8_FLAGS=--optimize-for-size ...`), to compare. */
const V8_FLAGS = Deno.env.get("V8_FLAGS");
/**
 * The program the master runs (`MASTER_MAIN=/tmp/b/main.js` for a bundle made by
 * `deno bundle --platform deno --code-splitting --outdir /tmp/b main.ts`), to compare.
 */
const MASTER_MAIN = Deno.env.get("MASTER_MAIN") ?? MAIN_TS;
const MASTER_CMD = [
  DENO,
  "run",
  "-A",
  "--quiet",
  "--unstable-net",
  ...(V8_FLAGS ? [`--v8-flags=${V8_FLAGS}`] : []),
  MASTER_MAIN,
];
const CONFIG = `${REPO_ROOT}/deno.json`;

/** The modules whose cost is measured: npm dependencies, then the program's parts. */
const MODULES = [
  "bare",
  "zod",
  "smol-toml",
  "@logtape/logtape",
  "./src/config/schema.ts",
  "./src/config/load.ts",
  "./src/control/ctl.ts",
  "./src/control/top.ts",
  "./src/verify/run.ts",
  "./src/master/master.ts",
  "./src/cli/main.ts",
];

const PROBE = `
const mod = Deno.args[0];
if (mod !== "bare") await import(mod.startsWith("./") ? new URL(mod, Deno.args[1]).href : mod);
const gc = (globalThis as unknown as { gc?: () => void }).gc;
for (let i = 0; i < 3; i++) { gc?.(); await new Promise((r) => setTimeout(r, 200)); }
const status = Deno.readTextFileSync("/proc/self/status");
console.log(JSON.stringify({
  rssKb: Number(status.match(/VmRSS:\\s+(\\d+)/)![1]),
  heapKb: Math.round(Deno.memoryUsage().heapUsed / 1024),
}));
`;

/** PSS of a process in kB (smaps_rollup), NaN when unreadable. */
function pssKb(pid: number): number {
  try {
    const m = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`).match(/^Pss:\s+(\d+) kB$/m);
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

async function probe(mod: string, file: string): Promise<{ rssKb: number; heapKb: number }> {
  const out = await new Deno.Command(DENO, {
    args: [
      "run",
      "-A",
      "--quiet",
      "--v8-flags=--expose-gc",
      "--config",
      CONFIG,
      file,
      mod,
      `file://${REPO_ROOT}/`,
    ],
    stdin: "null",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`probe of ${mod} failed`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

async function deps() {
  const file = `${OUT_DIR}/probe.ts`;
  Deno.writeTextFileSync(file, PROBE);
  const rows = [];
  for (const mod of MODULES) {
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await probe(mod, file));
    rows.push({
      mod,
      rssKb: median(runs.map((r) => r.rssKb)),
      heapKb: median(runs.map((r) => r.heapKb)),
    });
  }
  const bare = rows[0].rssKb;
  const lines = [
    "| loaded | RSS | over a bare `deno run` | V8 heap used |",
    "|---|---|---|---|",
    ...rows.map((r) =>
      `| ${r.mod === "bare" ? "nothing (bare `deno run`)" : `\`${r.mod}\``} | ${
        (r.rssKb / 1024).toFixed(1)
      } MB | ${r.mod === "bare" ? "" : `+${((r.rssKb - bare) / 1024).toFixed(1)} MB`} | ${
        (r.heapKb / 1024).toFixed(1)
      } MB |`
    ),
  ];
  return { rows, table: lines.join("\n") };
}

async function idle() {
  const port = freePort();
  const arbiter = startArbiter(["-w", "4", "-b", `127.0.0.1:${port}`, "--", "sleep", "infinity"], {
    cmd: MASTER_CMD,
  });
  let a;
  try {
    await arbiter.waitForLog(/generation 1 is ready/, { timeoutMs: 60_000 });
    await sleep(SETTLE_IDLE_MS);
    a = { rssKb: rssKb(arbiter.pid), pssKb: pssKb(arbiter.pid) };
    arbiter.signal("SIGTERM");
    await arbiter.waitExit(30_000).catch(() => {});
  } finally {
    await arbiter[Symbol.asyncDispose]();
  }
  const gport = freePort();
  const gunicorn = startGunicorn(gport, 4);
  let g;
  try {
    await waitForHttp(`http://127.0.0.1:${gport}/`, { timeoutMs: 30_000 });
    await sleep(SETTLE_IDLE_MS);
    g = { rssKb: rssKb(gunicorn.pid), pssKb: pssKb(gunicorn.pid) };
    gunicorn.signal("SIGTERM");
    await gunicorn.waitExit(30_000).catch(() => {});
  } finally {
    await gunicorn[Symbol.asyncDispose]();
  }
  const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;
  const table = [
    "| master, 4 workers, idle | RSS | PSS |",
    "|---|---|---|",
    `| arbiter (\`deno run … ${MASTER_MAIN.replace(`${REPO_ROOT}/`, "")}\`) | ${mb(a.rssKb)} | ${
      mb(a.pssKb)
    } |`,
    `| Gunicorn 20.1 | ${mb(g.rssKb)} | ${mb(g.pssKb)} |`,
  ].join("\n");
  return { arbiter: a, gunicorn: g, table };
}

/** A master's RSS split as `/proc/PID/smaps` sees it, in KiB. */
interface MemorySplit {
  rssKb: number;
  /** Anonymous pages outside malloc's `[heap]`: V8's heap, thread stacks, mmap'd allocations. */
  anonKb: number;
  /** malloc's `[heap]` (brk) segment. */
  mallocKb: number;
  /** Pages of the `deno` executable (code, V8 snapshot): shared by every Deno process. */
  executableKb: number;
  /** Other file pages (Deno's cache databases, libraries). */
  otherFileKb: number;
}

function memorySplit(pid: number): MemorySplit {
  const out: MemorySplit = { rssKb: 0, anonKb: 0, mallocKb: 0, executableKb: 0, otherFileKb: 0 };
  let mapping = "";
  for (const line of Deno.readTextFileSync(`/proc/${pid}/smaps`).split("\n")) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) {
      mapping = line.split(/\s+/).slice(5).join(" ");
      continue;
    }
    const rss = /^Rss:\s+(\d+)/.exec(line);
    if (!rss) continue;
    const kb = Number(rss[1]);
    out.rssKb += kb;
    if (mapping === "[heap]") out.mallocKb += kb;
    else if (mapping === DENO) out.executableKb += kb;
    else if (mapping.startsWith("/")) out.otherFileKb += kb;
    else out.anonKb += kb;
  }
  return out;
}

/**
 * How long the master is left alone before a reading "after idle": past the
 * core's release of the freed C heap (RELEASE_MEMORY_AFTER_MS after workers
 * last came or went), so the start and the end are read in the same state.
 */
const SETTLE_IDLE_MS = RELEASE_MEMORY_AFTER_MS + 5000;

async function cycles(n: number) {
  const port = freePort();
  const worker = ["python3", `${REPO_ROOT}/tests/workers/py_worker.py`];
  const master = startArbiter(
    ["-w", "4", "-b", `127.0.0.1:${port}`, "--ready", "notify", "--", ...worker],
    { env: { NOTIFY_READY: "1" }, cmd: MASTER_CMD },
  );
  const series: ({ cycle: number; note?: string } & MemorySplit)[] = [];
  const t0 = now();
  try {
    await master.waitForLog(/generation 1 is ready/, { timeoutMs: 60_000 });
    await sleep(SETTLE_IDLE_MS);
    series.push({ cycle: 0, note: "idle", ...memorySplit(master.pid) });
    const every = Math.max(1, Math.round(n / 20));
    for (let i = 1; i <= n; i++) {
      master.signal("SIGHUP");
      await master.waitForLog(new RegExp(`generation ${i + 1} is ready`), { timeoutMs: 60_000 });
      if (i % every === 0) series.push({ cycle: i, ...memorySplit(master.pid) });
    }
    await sleep(SETTLE_IDLE_MS);
    series.push({ cycle: n, note: "idle", ...memorySplit(master.pid) });
    master.signal("SIGTERM");
    await master.waitExit(30_000).catch(() => {});
  } finally {
    await master[Symbol.asyncDispose]();
  }
  const elapsed = (now() - t0) / 1000;
  const first = series[0];
  const mb = (kb: number) => (kb / 1024).toFixed(1);
  const change = (kb: number, base: number) => `${kb >= base ? "+" : ""}${mb(kb - base)}`;
  const table = [
    `${n} reloads of 4 Python workers (each HUP once the previous generation was ready) in ${
      elapsed.toFixed(0)
    } s; the master's RSS and its parts (MB), "idle" rows ${
      SETTLE_IDLE_MS / 1000
    } s after the last change:`,
    "",
    "| cycle | RSS | change | anonymous | malloc heap | deno executable | other files |",
    "|---|---|---|---|---|---|---|",
    ...series.map((s) =>
      `| ${s.cycle}${s.note ? ` (${s.note})` : ""} | ${mb(s.rssKb)} | ${
        s === first ? "" : change(s.rssKb, first.rssKb)
      } | ${mb(s.anonKb)} | ${mb(s.mallocKb)} | ${mb(s.executableKb)} | ${mb(s.otherFileKb)} |`
    ),
  ].join("\n");
  return { series, elapsed, table };
}

if (import.meta.main) {
  Deno.mkdirSync(OUT_DIR, { recursive: true });
  const wanted = Deno.args.length ? Deno.args : ["deps", "idle", "cycles=1000"];
  const result: Record<string, unknown> = {};
  for (const arg of wanted) {
    const [what, value] = arg.split("=");
    const r = what === "deps"
      ? await deps()
      : what === "idle"
      ? await idle()
      : what === "cycles"
      ? await cycles(Number(value ?? 1000))
      : undefined;
    if (!r) throw new Error(`unknown part ${arg}: expected deps, idle or cycles=N`);
    result[what] = r;
    console.log(`\n${r.table}\n`);
  }
  Deno.writeTextFileSync(`${OUT_DIR}/master_memory.json`, JSON.stringify(result, null, 2));
}
