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
 * Names: reload, overhead, recovery, footprint, scale — one file each
 * (`scripts/bench/NAME.ts`), shared bits in common.ts and lib.ts. Traffic goes to
 * 127.0.0.1 only; every load loop is bounded by wrk's -d and by a count.
 *
 * @module
 */

import { childPids, DEPS_DIR, haveTool, now, versionOf } from "./lib.ts";
import { type Args, log, parseArgs } from "./common.ts";
import { benchFootprint } from "./footprint.ts";
import { benchOverhead } from "./overhead.ts";
import { benchRecovery } from "./recovery.ts";
import { benchReload } from "./reload.ts";
import { benchScale } from "./scale.ts";

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
