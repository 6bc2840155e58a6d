/**
 * The start-up window in which a signal still ends the master without a
 * word (docs/resilience.md, "Signals during start-up"): from the exec of
 * the first image until its re-exec with the start-up signals blocked
 * (src/master/usr1.ts). Measures it two ways:
 *
 * - timeline: the master's threads' signal masks polled from /proc every
 *   ~0.1 ms: when the first image blocks the signals on its main thread,
 *   when the re-executed image runs (a non-main thread inherited the mask)
 *   and when the master listens (its main thread unblocked them again).
 * - outcome: SIGINT sent at fixed delays after spawn, each in a fresh
 *   master: "silent" (killed by the signal) or "handled" (exit 0 with its
 *   stop lines).
 *
 *     scripts/deno run -A scripts/bench/start_window.ts [runs=10] [stepMs=2] [untilMs=60]
 *
 * Loopback only; every master is stopped; every wait is bounded.
 *
 * @module
 */

import { freePort, median, now } from "./lib.ts";
import { arbiterCommand } from "../../tests/_harness.ts";

const INT = 1n << 1n;
const CHLD = 1n << 16n;

function masks(pid: number): { main?: bigint; others: bigint[] } {
  const out: { main?: bigint; others: bigint[] } = { others: [] };
  try {
    for (const { name } of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const status = Deno.readTextFileSync(`/proc/${pid}/task/${name}/status`);
        const mask = BigInt(`0x${/^SigBlk:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? "0"}`);
        if (name === String(pid)) out.main = mask;
        else out.others.push(mask);
      } catch { /* thread gone */ }
    }
  } catch { /* process gone */ }
  return out;
}

const held = (mask: bigint) => (mask & INT) !== 0n && (mask & CHLD) === 0n;

function start(): Deno.ChildProcess {
  return arbiterCommand(["-w", "1", "-b", `127.0.0.1:${freePort()}`, "--", "sleep", "infinity"], {
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
}

async function stop(child: Deno.ChildProcess, stderr: Promise<string>) {
  try {
    child.kill("SIGKILL");
  } catch { /* exited */ }
  await child.status;
  await stderr.catch(() => "");
}

async function timeline() {
  const child = start();
  const stderr = new Response(child.stderr).text();
  const t0 = now();
  let blocked: number | undefined, reExec: number | undefined, listening: number | undefined;
  while (now() - t0 < 10_000 && listening === undefined) {
    const m = masks(child.pid);
    const t = now() - t0;
    if (blocked === undefined && m.main !== undefined && held(m.main)) blocked = t;
    if (reExec === undefined && m.others.some(held)) reExec = t;
    if (reExec !== undefined && m.main !== undefined && (m.main & INT) === 0n) listening = t;
  }
  await stop(child, stderr);
  return { blocked, reExec, listening };
}

async function outcome(delayMs: number): Promise<"silent" | "handled" | "other"> {
  const child = start();
  const stderr = new Response(child.stderr).text();
  const t0 = now();
  while (now() - t0 < delayMs) { /* spin: setTimeout is too coarse at 1–2 ms */ }
  child.kill("SIGINT");
  const status = await child.status;
  const log = await stderr;
  if (status.signal === "SIGINT") return "silent";
  return status.code === 0 && log.includes("[stop.started]") ? "handled" : "other";
}

if (import.meta.main) {
  const arg = (name: string, dflt: number) =>
    Number(Deno.args.find((a) => a.startsWith(`${name}=`))?.split("=")[1] ?? dflt);
  const runs = arg("runs", 10), step = arg("stepMs", 2), until = arg("untilMs", 60);
  const lines = [];
  const tl = [];
  for (let i = 0; i < runs; i++) tl.push(await timeline());
  const ms = (xs: (number | undefined)[]) =>
    `${median(xs.filter((x) => x !== undefined) as number[]).toFixed(1)} ms`;
  lines.push(
    `timeline, median of ${runs}: first image blocks the signals at ${
      ms(tl.map((t) => t.blocked))
    }, re-executed image at ${ms(tl.map((t) => t.reExec))}, listening at ${
      ms(tl.map((t) => t.listening))
    } after spawn`,
  );
  const row = [];
  for (let d = 0; d <= until; d += step) row.push(`${d} ms: ${await outcome(d)}`);
  lines.push(`SIGINT after spawn: ${row.join(", ")}`);
  console.log(lines.join("\n"));
}
