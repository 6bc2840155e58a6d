/**
 * What sampling the workers' process groups costs (src/observe/tree.ts): 64
 * process groups of 3 processes each (`sh` and two `sleep`s, each group its own
 * leader, like a worker), sampled N times in a row; CPU and wall time per
 * sample, and how they split between the /proc scan and the smaps_rollup
 * reads. Prints a Markdown table for BENCHMARKS.md.
 *
 *     scripts/deno run -A scripts/bench/tree_sampling.ts [--groups 64] [--rounds 100]
 *
 * @module
 */

import { sampleTrees } from "../../src/observe/tree.ts";
import { median } from "./lib.ts";

function arg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}

/** This process's user + system CPU seconds. */
function ownCpu(): number {
  const f = Deno.readTextFileSync("/proc/self/stat");
  const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const groups = arg("--groups", 64);
const rounds = arg("--rounds", 100);
const children: Deno.ChildProcess[] = [];
try {
  for (let i = 0; i < groups; i++) {
    children.push(
      new Deno.Command("setsid", {
        args: ["sh", "-c", "sleep 600 & sleep 600 & wait"],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn(),
    );
  }
  const leaders = children.map((c) => c.pid);
  // Until every group has its 3 processes.
  for (let i = 0; i < 500; i++) {
    const trees = sampleTrees(leaders);
    if ([...trees.values()].filter((t) => t.processes === 3).length === groups) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const processes = [...Deno.readDirSync("/proc")].filter((e) => /^\d+$/.test(e.name)).length;
  const walls: number[] = [];
  const cpu0 = ownCpu();
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    sampleTrees(leaders);
    walls.push(performance.now() - t);
  }
  const cpuMs = ((ownCpu() - cpu0) / rounds) * 1000;
  // The scan alone: the same with no leader matching (nothing to read smaps_rollup of).
  const scanWalls: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    sampleTrees([2 ** 30]);
    scanWalls.push(performance.now() - t);
  }
  const sample = sampleTrees(leaders);
  const members = [...sample.values()].reduce((n, t) => n + t.processes, 0);
  console.log(
    [
      `| groups | processes in them | processes on the machine | wall per sample (median) | CPU per sample | of which the /proc scan (wall) |`,
      "|---|---|---|---|---|---|",
      `| ${groups} | ${members} | ${processes} | ${median(walls).toFixed(1)} ms | ${
        cpuMs.toFixed(1)
      } ms | ${median(scanWalls).toFixed(1)} ms |`,
    ].join("\n"),
  );
} finally {
  for (const c of children) {
    try {
      Deno.kill(-c.pid, "SIGKILL"); // the whole group
    } catch { /* gone */ }
    await c.status;
  }
}
