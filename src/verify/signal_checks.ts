/**
 * Checks of `arbiter verify` about signals other than HUP and TERM:
 *
 * - USR1: the master forwards it to every ready worker (to reopen log
 *   files). Its default action ends a process, so a worker must catch or
 *   ignore it. Seen two ways: the disposition in `/proc/<pid>/status` before,
 *   and no worker exiting after. A worker that opens a new listening TCP
 *   socket on USR1 passes, with a hint: Node and Deno (≥ 2.9.2) open a V8
 *   inspector on 127.0.0.1:9229 then, through which any local process can
 *   run code in the worker. Their "Debugger listening" / "Failed to start
 *   inspector" lines on stderr are not a failure. With `worker_usr1 = "off"`
 *   the master sends workers no USR1: n/a. With "blocked" the workers start
 *   with USR1 blocked, so it stays pending (or is read from a signalfd) and
 *   their disposition does not matter; the check still sends it and looks
 *   for deaths and new listeners.
 * - Watchdog: whether the worker sends `WATCHDOG=1` is not visible from
 *   outside, so verify freezes one worker with SIGSTOP. If it was pinging,
 *   the watchdog is armed and the master aborts and replaces it within the
 *   deadline; if the master does nothing, the worker never pinged, and it is
 *   let go with SIGCONT. Pinging is optional in the protocol, so a worker
 *   that does not ping is "n/a", with a hint.
 *
 * @module
 */

import {
  bootWaitMs,
  type CheckOutcome,
  delay,
  isMastersChild,
  type RunContext,
  secs,
  waitAllReady,
  who,
} from "./context.ts";
import { getOnce, RequestFailure } from "./http.ts";
import { type Disposition, dispositionOf, socketsOf, tcpRows } from "./proc.ts";

const SIGUSR1 = 10;
/** After USR1, how long a worker that catches it must keep running to pass. */
const USR1_GRACE_MS = 500;
/** A worker whose USR1 disposition is "default" dies at once; this bounds the wait for its exit. */
const USR1_DEATH_WAIT_MS = 2000;

/** Sends USR1 to the master and checks that every worker survives it. */
export async function checkUsr1(ctx: RunContext): Promise<CheckOutcome> {
  const { master, options, plan } = ctx;
  if (plan.workerUsr1 === "off") {
    return [{
      id: "usr1",
      status: "n/a",
      evidence: 'worker_usr1 = "off": the master never sends USR1 to workers ' +
        "(it still reopens its own log file)",
    }];
  }
  const blocked = plan.workerUsr1 === "blocked";
  ctx.progress("sending USR1 (reopen logs)…");
  const workers = master.workers.readyCurrent();
  const dispositions = new Map<number, Disposition | undefined>(
    workers.map((w) => [w.pid, dispositionOf(w.pid, SIGUSR1)]),
  );
  const socketsBefore = socketsOf(workers.map((w) => w.pid));
  const from = master.events.length;
  master.signal("SIGUSR1");
  const pids = new Set(workers.map((w) => w.pid));
  const mortal = !blocked && [...dispositions.values()].includes("default");
  const death = await master.waitFor(
    (e) => e.type === "exited" && pids.has(e.pid),
    mortal ? USR1_DEATH_WAIT_MS : USR1_GRACE_MS,
    from,
  );
  if (death?.type === "exited") {
    const w = master.workers.get(death.pid)!;
    await waitAllReady(ctx, bootWaitMs(ctx));
    return [{
      id: "usr1",
      status: "fail",
      evidence: `${who(w)} ${death.how} when USR1 was forwarded to it: it does not handle USR1, ` +
        "whose default action ends the process",
      fix: "handle SIGUSR1 (reopen your log files) or ignore it, e.g. Python " +
        "signal.signal(signal.SIGUSR1, handler), Node process.on('SIGUSR1', ...)",
    }];
  }
  let after = "";
  try {
    after = `, and GET ${options.path} still answers ${
      (await getOnce(plan.target, options.path, 5000)).status
    }`;
  } catch (error) {
    const f = error instanceof RequestFailure ? `${error.kind}: ${error.message}` : String(error);
    return [{
      id: "usr1",
      status: "fail",
      evidence: `after USR1 the workers still run but GET ${options.path} failed: ${f}`,
      fix: "USR1 asks a worker to reopen its log files; it must keep serving meanwhile",
    }];
  }
  const how = blocked
    ? "blocked"
    : [...new Set([...dispositions.values()].map((d) => d ?? "unknown"))].join("/");
  const opened = newListeners(workers.map((w) => w.pid), socketsBefore);
  return [{
    id: "usr1",
    status: "pass",
    evidence: `USR1 forwarded to ${workers.length} worker(s); they ${
      how === "blocked"
        ? 'start with it blocked (worker_usr1 = "blocked")'
        : how === "caught"
        ? "catch it"
        : how === "ignored"
        ? "ignore it"
        : `handle it (${how})`
    } and kept running${after}` + (opened.length === 0 ? "" : `; but on USR1 they opened a ` +
      `new listening socket (${opened.join(", ")}): a debugger, as Node and Deno do, lets any ` +
      `local process run code in the worker`),
    ...(opened.length === 0 ? {} : {
      fix: blocked
        ? 'Node clears its signal mask at start: use worker_usr1 = "off" (or, on Node ' +
          '>= 22.14, --disable-sigusr1 with "send")'
        : 'keep the inspector closed: worker_usr1 = "blocked" for Deno (or any program ' +
          'that keeps its signal mask), "off" for Node < 22.14; Node >= 22.14 has ' +
          "--disable-sigusr1",
    }),
  }];
}

/** TCP listening sockets the workers hold now that they did not before (their addresses). */
function newListeners(pids: number[], before: Set<number>): string[] {
  const fresh = new Set([...socketsOf(pids)].filter((inode) => !before.has(inode)));
  if (fresh.size === 0) return [];
  const found = tcpRows().filter((r) => r.state === "0A" && fresh.has(r.inode)).map((r) => r.local);
  return [...new Set(found)];
}

/** Freezes one worker and sees whether the watchdog notices. */
export async function checkWatchdog(ctx: RunContext): Promise<CheckOutcome> {
  const { master, plan } = ctx;
  if (plan.userTimeoutS === 0) {
    return [{ id: "watchdog", status: "n/a", evidence: "timeout = 0: the watchdog is off" }];
  }
  // An abort of a worker nobody froze: it pings too rarely for its own deadline.
  const early = master.events.find((e) => e.type === "watchdog");
  if (early?.type === "watchdog") {
    return [{
      id: "watchdog",
      status: "fail",
      evidence: `worker ${early.id} (pid ${early.pid}) was aborted by the watchdog while ` +
        `serving normally: no WATCHDOG=1 for ${early.timeout} s`,
      fix: "send WATCHDOG=1 every WATCHDOG_USEC / 2 microseconds (read the variable; do not " +
        "hard-code an interval)",
    }];
  }
  const w = master.workers.readyCurrent()[0];
  if (!w || !isMastersChild(ctx, w.pid)) {
    return [{ id: "watchdog", status: "n/a", evidence: "not run: no ready worker to freeze" }];
  }
  const deadlineMs = plan.timeoutS * 1000;
  // A pinging worker pings every WATCHDOG_USEC / 2: give it that long since
  // it became ready (and a margin), so it has pinged at least once.
  const sinceReady = performance.now() - (w.readyAt ?? w.startedAt);
  const firstPingMs = deadlineMs / 2 + 500;
  ctx.progress(`freezing ${who(w)} with SIGSTOP to see whether the watchdog is armed…`);
  if (sinceReady < firstPingMs) await delay(firstPingMs - sinceReady);
  const from = master.events.length;
  const frozenAt = performance.now();
  Deno.kill(w.pid, "SIGSTOP");
  // Its last ping came before the freeze, so an armed watchdog fires within
  // one deadline; the margin covers the master's own timer.
  const waitMs = deadlineMs + 1000;
  const abort = await master.waitFor(
    (e) => e.type === "watchdog" && e.pid === w.pid,
    waitMs,
    from,
  );
  if (abort) {
    const took = abort.at - frozenAt;
    await waitAllReady(ctx, bootWaitMs(ctx));
    return [{
      id: "watchdog",
      status: "pass",
      evidence: `froze ${who(w)} with SIGSTOP: the master aborted and replaced it after ` +
        `${secs(took)} (timeout ${plan.timeoutS} s), so its WATCHDOG=1 pings were arriving`,
    }];
  }
  if (isMastersChild(ctx, w.pid)) Deno.kill(w.pid, "SIGCONT");
  return [{
    id: "watchdog",
    status: "n/a",
    evidence: `${who(w)} sends no WATCHDOG=1: frozen for ${secs(waitMs)} (SIGSTOP), the ` +
      `master did not notice. Pinging is optional, but without it a hung worker is never replaced`,
    fix: "send WATCHDOG=1 to $NOTIFY_SOCKET every WATCHDOG_USEC / 2 from the code that " +
      "serves requests, or set timeout = 0 to say you do not want the watchdog",
  }];
}
