/**
 * The reload checks of `arbiter verify`: HUP the private master several
 * times while the load driver keeps requests flowing, once with a new
 * connection per request and once with kept-alive connections, and count
 * every request that fails. Each HUP waits until the new generation is ready
 * and every older worker has exited, so each reload's whole hand-over (new
 * workers start, old ones drain and go) happens under load.
 *
 * @module
 */

import { bootWaitMs, type RunContext, secs } from "./context.ts";
import { describeFailures, LoadDriver, type LoadResult } from "./load.ts";
import type { CheckResult } from "./report.ts";

/** Requests that must succeed before the first HUP and after each reload. */
const WARM_REQUESTS = 20;
/** The most time spent waiting for {@link WARM_REQUESTS}. */
const WARM_MAX_MS = 3000;

const FIX_CLOSE = "on TERM stop accepting, but serve every connection already accepted: a client " +
  "that just connected is about to send its request. Close a connection only after it has been " +
  "idle for about a second (see docs/worker-protocol.md)";
const FIX_KEEPALIVE = "on TERM answer the next request on each kept-alive connection with " +
  "`Connection: close` and close after it; close only connections idle for about a second, " +
  "since a client may be sending on one right now (see docs/worker-protocol.md)";

/** HUP under load with `Connection: close` (`keepAlive` false) or keep-alive. */
export async function checkReloads(ctx: RunContext, keepAlive: boolean): Promise<CheckResult> {
  const { plan, options } = ctx;
  const id = keepAlive ? "hup-keepalive" : "hup-close";
  const mode = keepAlive ? "keep-alive" : "new connections";
  ctx.progress(`${options.reloads} HUP(s) under load (${mode})…`);
  const driver = new LoadDriver({ target: plan.target, path: options.path, keepAlive });
  driver.start();
  const hups: number[] = [];
  let problem: string | undefined;
  try {
    await warm(driver);
    for (let i = 0; i < options.reloads && !problem; i++) {
      problem = await reloadOnce(ctx, hups);
      if (!problem) await warm(driver);
    }
  } finally {
    await driver.stop();
  }
  const result = driver.snapshot();
  const total = result.ok + result.failed;
  if (problem) {
    return {
      id,
      status: "fail",
      evidence: `${problem} (${counts(result, hups.length)})`,
      fix: problemFix(problem),
    };
  }
  if (total === 0 || result.ok === 0) {
    return {
      id,
      status: "fail",
      evidence: `no request succeeded (${counts(result, hups.length)})`,
      fix: "the worker must answer 2xx on this path; see the first check",
    };
  }
  if (result.failed > 0) {
    const first = result.samples[0];
    const hupBefore = hups.filter((t) => t <= first.at).length;
    const when = hupBefore === 0
      ? "before the first HUP"
      : `${secs(first.at - hups[hupBefore - 1])} after HUP ${hupBefore}`;
    return {
      id,
      status: "fail",
      evidence: `${result.failed} of ${total} requests failed (${describeFailures(result)}) ` +
        `over ${hups.length} reload(s); first: ${first.kind} ${when}: ${first.detail}`,
      fix: failureFix(result, keepAlive),
    };
  }
  const reused = keepAlive && result.connections < total / 2;
  return {
    id,
    status: "pass",
    evidence: `${hups.length} reload(s), ${total} requests on ${result.connections} ` +
      `connection(s), 0 failed` +
      (keepAlive && !reused
        ? "; the worker closes connections after each answer, so this is like new connections"
        : ""),
  };
}

function counts(result: LoadResult, reloads: number): string {
  return `${reloads} reload(s), ${result.ok} ok, ${result.failed} failed`;
}

/** Waits until {@link WARM_REQUESTS} more requests succeeded (at most {@link WARM_MAX_MS}). */
async function warm(driver: LoadDriver): Promise<void> {
  const target = driver.snapshot().ok + WARM_REQUESTS;
  const until = performance.now() + WARM_MAX_MS;
  while (driver.snapshot().ok < target && performance.now() < until) {
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * One HUP: waits for the next generation to be ready and for every older
 * worker to exit. Returns a problem description, or undefined when done.
 */
async function reloadOnce(ctx: RunContext, hups: number[]): Promise<string | undefined> {
  const { master, plan } = ctx;
  const generation = Math.max(0, ...master.workers.all().map((w) => w.generation));
  const from = master.events.length;
  hups.push(performance.now());
  if (!master.signal("SIGHUP")) return "the master exited";
  const ready = await master.waitFor(
    (e) =>
      (e.type === "generation-ready" && e.generation > generation) ||
      (e.type === "problem" && /reload (refused|abandoned)/.test(e.message)) || e.type === "exit",
    bootWaitMs(ctx) + 2000,
    from,
  );
  if (ready?.type === "problem") return `HUP ${hups.length}: ${ready.message}`;
  if (master.exited) return `HUP ${hups.length}: the master exited`;
  if (ready?.type !== "generation-ready") {
    return `HUP ${hups.length}: the new generation was not ready within ` +
      secs(bootWaitMs(ctx) + 2000);
  }
  const old = () => master.workers.running().filter((w) => w.generation <= generation);
  if (old().length > 0) {
    const drainMs = plan.gracefulTimeoutS * 1000 + 3000;
    const gone = await master.waitFor(() => old().length === 0, drainMs, from);
    if (!gone) return `HUP ${hups.length}: the old workers did not exit within ${secs(drainMs)}`;
  }
  return undefined;
}

function problemFix(problem: string): string {
  if (/not ready within/.test(problem)) {
    return "the new workers must become ready while the old ones still serve; see the " +
      "readiness check";
  }
  if (/did not exit/.test(problem)) {
    return "on TERM a worker must finish its requests and exit within graceful_timeout";
  }
  return "see the master's log for why the reload failed";
}

function failureFix(result: LoadResult, keepAlive: boolean): string {
  const kinds = result.byKind;
  if (kinds.status > 0 && kinds.status === result.failed) {
    return "the worker answered errors during the reload: a draining or starting worker must " +
      "still answer requests it accepted";
  }
  if (kinds.timeout > 0 && kinds.timeout === result.failed) {
    return "requests hung during the reload: a worker that stops accepting must still answer " +
      "the connections it holds, and exit once they are done";
  }
  return keepAlive ? FIX_KEEPALIVE : FIX_CLOSE;
}
