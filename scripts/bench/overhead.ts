/**
 * Benchmark "overhead" (run by run.ts). Overhead: throughput and latency of a worker behind arbiter against the bare launcher.
 *
 * @module
 */

import {
  cpuSeconds,
  freePort,
  median,
  NODE_APP,
  runWrk,
  spread,
  startArbiterOn,
  startLauncher,
  switchesBetween,
  voluntarySwitches,
  waitForHttp,
  WSGI_FD,
} from "./lib.ts";
import { arbiterReady, type Args, log, OUT_DIR, url } from "./common.ts";

// ---------------------------------------------------------------------------
// 2. Request-path overhead

export async function benchOverhead(args: Args): Promise<string> {
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
