/**
 * The graceful-stop checks of `arbiter verify`. Before TERM, four client
 * connections are opened and verify waits until a worker has accepted each
 * (a new socket appears among the workers' fds):
 *
 * - slow: the request line and Host header are sent; the rest of the
 *   request follows in pieces over the 0.6 s after the master logs the
 *   stop. It must get a complete 2xx answer ("an in-flight request finishes").
 * - fresh: nothing is sent before TERM; a whole request is sent 0.1 s after
 *   the stop begins. It must be answered ("refuses no new connection while
 *   draining": a client that just connected is about to send).
 * - kept-alive: one request answered before TERM; the next one is sent 0.1 s
 *   after the stop begins and must be answered (a `Connection: close` answer
 *   is right). Not applicable when the worker does not keep connections.
 * - silent: connects and never sends anything (it closes its end once the
 *   server closes, as an idle client does). The worker must still exit
 *   within `graceful_timeout` ("exits in time even when a client goes quiet").
 *
 * Each client closes its connection once its answer (or failure) is in.
 *
 * Reload drains count too: an old worker the master had to SIGKILL after
 * `graceful_timeout` during a HUP fails the exit check.
 *
 * @module
 */

import { type CheckOutcome, delay, type RunContext, secs } from "./context.ts";
import {
  connect,
  expect2xx,
  type HttpResponse,
  receive,
  RequestFailure,
  requestText,
  send,
  withDeadline,
} from "./http.ts";
import { descendantsOf, newConnection, socketsOf } from "./proc.ts";
import type { CheckResult } from "./report.ts";

/** How long a prepared connection may wait in the accept queue. */
const ACCEPT_WAIT_MS = 3000;
/** When, after the master logs the stop, the fresh and kept-alive requests are sent. */
const AFTER_TERM_MS = 100;
/**
 * The slow request's remaining pieces: one every this many ms, four in all.
 * They end 0.6 s after the stop, well inside the ~1 s grace the worker
 * protocol gives a silent connection: this checks that a request in
 * progress is finished, not where a worker puts the edge of its grace (Deno's
 * `Deno.serve` shutdown closes a connection whose headers are incomplete).
 */
const SLOW_STEP_MS = 150;
const ANSWER_TIMEOUT_MS = 5000;

const FIX_DRAIN = "on TERM stop accepting, then keep serving every connection already " +
  "accepted; close a connection only after it has been idle for about a second, and exit " +
  "when none is left (see docs/worker-protocol.md)";

type Outcome = { ok: true; res: HttpResponse; holder?: number } | { ok: false; why: string };

/** Stops the private master with TERM and checks the drain. */
export async function checkTerm(ctx: RunContext): Promise<CheckOutcome> {
  const { master, plan, options } = ctx;
  ctx.progress("graceful stop (TERM) with a slow, a fresh, a kept-alive and a silent client…");
  const target = plan.target;
  const conns: Deno.Conn[] = [];
  const open = async (first?: string) => {
    const before = socketsOf(workerPids(ctx));
    const conn = await connect(target);
    conns.push(conn);
    if (first !== undefined) await send(conn, first);
    return { conn, ...await waitAccepted(ctx, before) };
  };
  const head = requestText(target, options.path, false).split("\r\n");
  let results: CheckResult[];
  try {
    // The silent client first, the others as late as possible: a worker may
    // rightly close a connection idle for about a second, and this is not
    // meant to test that.
    const silent = await open();
    // Like a real idle client, it closes its end once the server closes its own.
    const silentClosed = closeOnEof(silent.conn);
    const beforeKept = socketsOf(workerPids(ctx));
    const kept = { conn: await connect(target), holder: undefined as number | undefined };
    conns.push(kept.conn);
    let keptOk: boolean | string = false;
    try {
      keptOk = (await exchange(kept.conn, requestText(target, options.path, false))).reusable;
      kept.holder = newConnection(workerPids(ctx), beforeKept)?.pid;
    } catch (error) {
      keptOk = `the request before TERM on it failed: ${describe(error)}`;
    }
    const slow = await open(`${head[0]}\r\n${head[1]}\r\n`);
    const fresh = await open();

    const from = master.events.length;
    const termAt = performance.now();
    master.signal("SIGTERM");
    const stopping = await master.waitFor((e) => e.type === "stopping", 2000, from);
    const base = stopping?.at ?? termAt;

    const later = (ms: number) => delay(Math.max(0, base + ms - performance.now()));
    const [slowOut, freshOut, keptOut] = await Promise.all([
      attempt(slow, async () => {
        for (
          const [i, piece] of [`${head[2]}\r\n`, "X-Verify: slow\r\n", "Accept: */*\r\n", "\r\n"]
            .entries()
        ) {
          await later(SLOW_STEP_MS * (i + 1));
          await send(slow.conn, piece);
        }
        return await withDeadline(slow.conn, ANSWER_TIMEOUT_MS, () => receive(slow.conn));
      }),
      attempt(fresh, async () => {
        await later(AFTER_TERM_MS);
        return await exchange(fresh.conn, requestText(target, options.path, true));
      }),
      keptOk === true
        ? attempt(kept, async () => {
          await later(AFTER_TERM_MS);
          return await exchange(kept.conn, requestText(target, options.path, false));
        })
        : Promise.resolve(keptOk || undefined),
    ]);

    const exitWait = plan.gracefulTimeoutS * 1000 + 5000;
    const status = await master.waitExit(exitWait);
    closeQuietly(silent.conn);
    await silentClosed;
    results = [
      inflightRow(slowOut, slow.holder),
      openRow(freshOut, keptOut, fresh.at && base + AFTER_TERM_MS - fresh.at),
      exitRow(ctx, from, termAt, status, exitWait, silent.holder),
    ];
  } finally {
    for (const c of conns) closeQuietly(c);
  }
  return results;
}

/** Sends `text` and reads one 2xx answer within the answer timeout. */
function exchange(conn: Deno.Conn, text: string): Promise<HttpResponse> {
  return withDeadline(conn, ANSWER_TIMEOUT_MS, async () => {
    await send(conn, text);
    return expect2xx(await receive(conn));
  });
}

/** Runs one client's exchange; its connection is closed afterwards, as a client would. */
async function attempt(
  client: { conn: Deno.Conn; holder?: number },
  work: () => Promise<HttpResponse>,
): Promise<Outcome> {
  try {
    return { ok: true, res: expect2xx(await work()), holder: client.holder };
  } catch (error) {
    return { ok: false, why: describe(error) };
  } finally {
    closeQuietly(client.conn);
  }
}

function describe(error: unknown): string {
  const f = error instanceof RequestFailure ? error : new RequestFailure("other", String(error));
  return `${f.kind}: ${f.message}`;
}

/** Reads (and drops) whatever arrives until the server closes, then closes this end. */
async function closeOnEof(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(4096);
  try {
    while ((await conn.read(buf)) !== null) { /* a silent client ignores answers */ }
  } catch { /* reset, or closed by us */ }
  closeQuietly(conn);
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* closed already */ }
}

/** The running workers and what they started (a wrapper's server, say). */
function workerPids(ctx: RunContext): number[] {
  const workers = ctx.master.workers.running().map((w) => w.pid);
  return [...workers, ...workers.flatMap((pid) => descendantsOf(pid).map((d) => d.pid))];
}

/**
 * Waits until a worker holds a new connection (the one just opened: nothing
 * else talks to the private master now), and returns when that was seen and
 * which pid holds it; an empty answer if none shows up in time (or the
 * private master listens on a unix socket).
 */
async function waitAccepted(
  ctx: RunContext,
  before: Set<number>,
): Promise<{ holder?: number; at?: number }> {
  // An accepted unix connection cannot be told from a notify socket this way.
  if (ctx.plan.target.transport !== "tcp") return {};
  const until = performance.now() + ACCEPT_WAIT_MS;
  while (performance.now() < until) {
    const found = newConnection(workerPids(ctx), before);
    if (found) return { at: performance.now(), holder: found.pid };
    await delay(5);
  }
  return {};
}

const by = (holder?: number) => holder ? ` by the worker with pid ${holder}` : "";

function inflightRow(out: Outcome, holder?: number): CheckResult {
  if (out.ok) {
    return {
      id: "term-inflight",
      status: "pass",
      evidence: `a request still arriving when TERM came (its headers sent over ` +
        `${secs(SLOW_STEP_MS * 4)}) was answered ${out.res.status}${by(holder)}`,
    };
  }
  return {
    id: "term-inflight",
    status: "fail",
    evidence: `a request still arriving when TERM came (accepted${by(holder)}) was not ` +
      `answered: ${out.why}`,
    fix: FIX_DRAIN,
  };
}

function openRow(
  fresh: Outcome,
  kept: Outcome | string | undefined,
  freshIdleMs: number | undefined,
): CheckResult {
  const parts: string[] = [];
  const failed: string[] = [];
  const say = (what: string, out: Outcome) => {
    if (out.ok) parts.push(`${what} was answered ${out.res.status}`);
    else failed.push(`${what} was not answered: ${out.why}`);
  };
  say(
    `a connection accepted just before TERM that sent its request ${secs(AFTER_TERM_MS)} ` +
      `after the stop began` +
      (freshIdleMs === undefined ? "" : ` (${secs(freshIdleMs)} after it was accepted)`),
    fresh,
  );
  if (typeof kept === "string") failed.push(`a kept-alive connection: ${kept}`);
  else if (kept) say("the next request on a kept-alive connection", kept);
  else parts.push("the worker does not keep connections alive, so none was idle");
  if (failed.length > 0) {
    return {
      id: "term-open",
      status: "fail",
      evidence: [...failed, ...parts].join("; "),
      fix: FIX_DRAIN,
    };
  }
  return { id: "term-open", status: "pass", evidence: parts.join("; ") };
}

function exitRow(
  ctx: RunContext,
  from: number,
  termAt: number,
  status: Deno.CommandStatus | undefined,
  exitWait: number,
  silentHolder: number | undefined,
): CheckResult {
  const { master, plan } = ctx;
  // A worker the watchdog aborted (the frozen one) is killed late by design.
  const aborted = new Set(master.events.flatMap((e) => e.type === "watchdog" ? [e.pid] : []));
  const late = (e: (typeof master.events)[number]) => e.type === "kill-late" && !aborted.has(e.pid);
  const lateInReloads = master.events.slice(0, from).filter(late);
  const lateAtStop = master.events.slice(from).filter(late);
  const exits = master.events.slice(from).filter((e) => e.type === "exited" && !aborted.has(e.pid));
  const lastExit = Math.max(termAt, ...exits.map((e) => e.at));
  const silent = silentHolder
    ? `, while a client connected to pid ${silentHolder} sent nothing`
    : "";
  const fix = "on TERM stop accepting, finish the requests in flight, close idle and silent " +
    "connections after about a second, then exit: never wait for a client";
  if (!status) {
    return {
      id: "term-exit",
      status: "fail",
      evidence: `the master was still running ${secs(exitWait)} after TERM (graceful_timeout ` +
        `${plan.gracefulTimeoutS} s)`,
      fix,
    };
  }
  if (lateAtStop.length > 0 || lateInReloads.length > 0) {
    const n = lateAtStop.length + lateInReloads.length;
    return {
      id: "term-exit",
      status: "fail",
      evidence:
        `${n} worker(s) did not exit within graceful_timeout (${plan.gracefulTimeoutS} s) ` +
        `after TERM and were killed (${lateAtStop.length} at the stop${silent}, ` +
        `${lateInReloads.length} during reloads)`,
      fix,
    };
  }
  return {
    id: "term-exit",
    status: "pass",
    evidence: `${exits.length} worker(s) exited ${secs(lastExit - termAt)} after TERM ` +
      `(graceful_timeout ${plan.gracefulTimeoutS} s)${silent}; the master exited ${status.code}`,
  };
}
