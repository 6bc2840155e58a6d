/**
 * The first two checks of `arbiter verify`: the workers become ready
 * (`READY=1` within `boot_timeout` when `ready = "notify"`), and they serve
 * on the socket they inherited at fd 3. Everything after depends on these:
 * {@link checkBoot} says whether the run can go on.
 *
 * @module
 */

import { bootWaitMs, type CheckOutcome, type RunContext, secs, who } from "./context.ts";
import { getOnce, RequestFailure } from "./http.ts";
import type { StampedEvent } from "./master_log.ts";
import { descendantsOf, socketFds, tcpRows, unixListeners } from "./proc.ts";
import type { CheckResult } from "./report.ts";

const FD3_FIX = "accept connections on the socket at fd 3 (LISTEN_FDS=1) instead of binding a " +
  "port: Python socket.socket(fileno=3), Node server.listen({fd: 3}), Go " +
  'net.FileListener(os.NewFile(3, "")); see docs/worker-protocol.md';

/** How long the private master itself may take to start its first worker. */
const MASTER_START_MS = 30_000;

/** How the boot went, and whether the other checks can run. */
export interface BootOutcome {
  results: CheckOutcome;
  /** Why the other checks cannot run, when they cannot. */
  blocked?: string;
}

/** Waits for the first generation, then checks readiness and serving. */
export async function checkBoot(ctx: RunContext): Promise<BootOutcome> {
  const { master, plan } = ctx;
  ctx.progress(`starting ${plan.workers} worker(s)…`);
  const start = performance.now();
  // The boot timeout runs from the first worker's start, not from launching
  // the master, whose own start-up can take seconds on a busy machine.
  await master.waitFor(
    (e) => e.type === "started" || e.type === "halting" || e.type === "exit",
    MASTER_START_MS,
  );
  let failures = 0;
  const end = await master.waitFor((e) => {
    if (e.type === "boot-failed") failures = Math.max(failures, e.count);
    return e.type === "generation-ready" || e.type === "halting" || e.type === "exit" ||
      e.type === "boot-timeout" || failures >= 3;
  }, bootWaitMs(ctx));

  if (end?.type !== "generation-ready") {
    const ready = readyRow(ctx, end, start);
    const fd3: CheckResult = ready.status === "fail"
      ? { id: "fd3", status: "n/a", evidence: "not run: the workers never became ready" }
      : {
        id: "fd3",
        status: "fail",
        evidence: `the workers never came up: ${whyNoBoot(ctx, end)}`,
        fix: "run the command by hand to see why it stops; it must keep running and serve " +
          "the socket at fd 3",
      };
    const blocked = ready.status === "fail"
      ? "the workers never became ready"
      : "the workers never came up";
    return { results: [fd3, ready], blocked };
  }
  const fd3 = await checkServing(ctx);
  return {
    results: [fd3, readyRow(ctx, end, start)],
    blocked: fd3.status === "pass" ? undefined : "the worker does not serve",
  };
}

function readyRow(ctx: RunContext, end: StampedEvent | undefined, start: number): CheckResult {
  const { plan, master } = ctx;
  if (end?.type === "boot-timeout") {
    const w = master.workers.get(end.pid);
    return {
      id: "ready",
      status: "fail",
      evidence: `${w ? who(w) : `worker ${end.id}`} sent no READY=1 within ${end.timeout} s ` +
        `(boot_timeout) and was aborted` + outputTail(ctx),
      fix: "send READY=1 to $NOTIFY_SOCKET once serving on fd 3 (see docs/worker-protocol.md), " +
        'or set ready = "spawn"',
    };
  }
  if (end?.type !== "generation-ready") {
    return plan.ready === "notify"
      ? { id: "ready", status: "n/a", evidence: "not run: the workers exit before they are ready" }
      : { id: "ready", status: "n/a", evidence: 'ready = "spawn": no READY=1 is expected' };
  }
  const ready = master.workers.all().filter((w) => w.readyAt !== undefined);
  const times = ready.map((w) => w.readyAt! - w.startedAt);
  const range = `${secs(Math.min(...times))}–${secs(Math.max(...times))}`;
  if (plan.ready === "spawn") {
    const notified = ready.some((w) => w.readyWhy === "READY=1");
    return {
      id: "ready",
      status: "n/a",
      evidence: 'ready = "spawn": a worker counts as ready after 1 s alive' +
        (notified ? " (yours sends READY=1 anyway)" : ""),
      fix: notified
        ? 'set ready = "notify": your worker already sends READY=1'
        : 'optional: send READY=1 once serving and set ready = "notify", so a reload waits ' +
          "for real readiness",
    };
  }
  return {
    id: "ready",
    status: "pass",
    evidence: `READY=1 from ${ready.length} worker(s), ${range} after start ` +
      `(boot_timeout ${plan.bootTimeoutS} s); all ready ${secs(end.at - start)} after launch`,
  };
}

function whyNoBoot(ctx: RunContext, end: StampedEvent | undefined): string {
  const { master } = ctx;
  const exits = master.workers.all().filter((w) => w.how !== undefined);
  const last = exits.at(-1);
  const halting = master.events.find((e) => e.type === "halting");
  const text = master.events.filter((e) => e.type === "text" || e.type === "problem")
    .map((e) => e.type === "text" ? e.line : e.type === "problem" ? e.message : "")
    .filter((l) => !/failed to boot \(/.test(l)).slice(-2);
  const parts: string[] = [];
  if (halting?.type === "halting") parts.push(halting.reason);
  else if (last) parts.push(`${who(last)} ${last.how} at start, ${exits.length} time(s)`);
  else if (end === undefined) parts.push(`no worker was ready after ${secs(bootWaitMs(ctx))}`);
  if (parts.length === 0 || master.exited) parts.push(...text);
  return parts.join("; ") + outputTail(ctx);
}

function outputTail(ctx: RunContext): string {
  const lines = ctx.master.workers.recentOutput(3);
  return lines.length > 0 ? `; its last output: ${lines.map((l) => `"${l}"`).join(" ")}` : "";
}

/** GET the path once, then look at who holds which socket. */
async function checkServing(ctx: RunContext): Promise<CheckResult> {
  const { plan, options } = ctx;
  const t0 = performance.now();
  let failure: RequestFailure | undefined;
  let status = 0;
  try {
    status = (await getOnce(plan.target, options.path, 10_000)).status;
  } catch (error) {
    failure = error instanceof RequestFailure ? error : new RequestFailure("other", String(error));
  }
  const took = performance.now() - t0;
  const sockets = socketsOfWorkers(ctx);
  const where = plan.target.transport === "tcp" ? `127.0.0.1:${plan.target.port}` : "the socket";
  if (failure) {
    const own = sockets.ownListeners.length > 0
      ? `; the worker listens on its own socket instead: ${sockets.ownListeners.join(", ")}`
      : "";
    const fix = failure.kind === "status"
      ? "answer 2xx on this path, or name one that does with --path"
      : FD3_FIX;
    return {
      id: "fd3",
      status: "fail",
      evidence: `GET ${options.path} on ${where}: ${failure.kind}: ${failure.message}${own}`,
      fix,
    };
  }
  const holding = sockets.holders.size;
  const total = ctx.master.workers.running().length;
  const fds = [...new Set([...sockets.holders.values()].flat())].sort((a, b) => a - b);
  const at = fds.length === 1 && fds[0] === 3
    ? "at fd 3"
    : `at fd ${fds.join(", ")}${fds.includes(3) ? "" : ", copies of fd 3"}`;
  return {
    id: "fd3",
    status: "pass",
    evidence: `GET ${options.path} answered ${status} in ${secs(took)}; ` +
      `${holding} of ${total} worker(s) hold the shared listening socket` +
      (holding > 0 ? ` (${at})` : "") +
      (sockets.ownListeners.length > 0
        ? `; they also listen on ${sockets.ownListeners.join(", ")}`
        : ""),
  };
}

/** Which workers hold the shared socket (pid → fds), and what else they listen on. */
function socketsOfWorkers(
  ctx: RunContext,
): { holders: Map<number, number[]>; ownListeners: string[] } {
  const { plan, master } = ctx;
  const rows = tcpRows();
  const listenInodes = new Map(rows.filter((r) => r.state === "0A").map((r) => [r.inode, r.local]));
  const shared = plan.target.transport === "tcp"
    ? rows.find((r) => r.state === "0A" && r.localPort === (plan.target as { port: number }).port)
      ?.inode
    : [...unixListeners()].find(([, path]) => path === (plan.target as { path: string }).path)?.[0];
  // Sockets the master handed over (every bind) are not the worker's own.
  const handed = new Set(socketFds(master.pid).values());
  const holders = new Map<number, number[]>();
  const own = new Set<string>();
  for (const w of master.workers.running()) {
    const fds = socketFds(w.pid);
    const at = [...fds].filter(([, inode]) => inode === shared).map(([fd]) => fd);
    if (shared !== undefined && at.length > 0) holders.set(w.pid, at);
    // The worker and anything it started (a wrapper script's server, say).
    for (const pid of [w.pid, ...descendantsOf(w.pid).map((d) => d.pid)]) {
      for (const inode of (pid === w.pid ? fds : socketFds(pid)).values()) {
        const local = listenInodes.get(inode);
        if (local !== undefined && !handed.has(inode)) own.add(local);
      }
    }
  }
  return { holders, ownListeners: [...own] };
}
