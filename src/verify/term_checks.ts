/**
 * The graceful-stop checks of `arbiter verify`. Before TERM, four client
 * connections are opened and verify waits until a worker has accepted each
 * (seen in `/proc/net/tcp`: a queued connection has no inode yet):
 *
 * - slow: the request line and Host header are sent; the rest of the
 *   request follows in pieces over the second after the master logs the
 *   stop. It must get a complete 2xx answer ("an in-flight request finishes").
 * - fresh: nothing is sent before TERM; a whole request is sent 0.1 s after
 *   the stop begins. It must be answered ("refuses no new connection while
 *   draining": a client that just connected is about to send).
 * - kept-alive: one request answered before TERM; the next one is sent 0.1 s
 *   after the stop begins and must be answered (a `Connection: close` answer
 *   is right). Not applicable when the worker does not keep connections.
 * - silent: connects and never sends anything. The worker must still exit
 *   within `graceful_timeout` ("exits in time even when a client goes quiet").
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
  type Target,
  withDeadline,
} from "./http.ts";
import { acceptedInode, holderOf } from "./proc.ts";
import type { CheckResult } from "./report.ts";

/** How long a prepared connection may wait in the accept queue. */
const ACCEPT_WAIT_MS = 3000;
/** When, after the master logs the stop, the fresh and kept-alive requests are sent. */
const AFTER_TERM_MS = 100;
/** The slow request's remaining pieces: one every this many ms, four in all. */
const SLOW_STEP_MS = 250;
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
  const open = async () => {
    const c = await connect(target);
    conns.push(c);
    return { conn: c, holder: await waitAccepted(ctx, c) };
  };
  let results: CheckResult[];
  try {
    // Kept-alive: one answered request first.
    const kept = await open();
    let keptOk = false;
    try {
      keptOk = (await exchange(kept.conn, requestText(target, options.path, false))).reusable;
    } catch { /* judged below: not kept alive */ }
    const slow = await open();
    const head = requestText(target, options.path, false).split("\r\n");
    await send(slow.conn, `${head[0]}\r\n${head[1]}\r\n`);
    const fresh = await open();
    const silent = await open();

    const from = master.events.length;
    const termAt = performance.now();
    master.signal("SIGTERM");
    const stopping = await master.waitFor((e) => e.type === "stopping", 2000, from);
    const base = stopping?.at ?? termAt;

    const later = (ms: number) => delay(Math.max(0, base + ms - performance.now()));
    const [slowOut, freshOut, keptOut] = await Promise.all([
      attempt(slow.holder, async () => {
        for (
          const [i, piece] of [`${head[2]}\r\n`, "X-Verify: slow\r\n", "Accept: */*\r\n", "\r\n"]
            .entries()
        ) {
          await later(SLOW_STEP_MS * (i + 1));
          await send(slow.conn, piece);
        }
        return await withDeadline(slow.conn, ANSWER_TIMEOUT_MS, () => receive(slow.conn));
      }),
      attempt(fresh.holder, async () => {
        await later(AFTER_TERM_MS);
        return await exchange(fresh.conn, requestText(target, options.path, true));
      }),
      keptOk
        ? attempt(kept.holder, async () => {
          await later(AFTER_TERM_MS);
          return await exchange(kept.conn, requestText(target, options.path, false));
        })
        : Promise.resolve(undefined),
    ]);

    const exitWait = plan.gracefulTimeoutS * 1000 + 5000;
    const status = await master.waitExit(exitWait);
    results = [
      inflightRow(slowOut, slow.holder),
      openRow(freshOut, keptOut),
      exitRow(ctx, from, termAt, status, exitWait, silent.holder),
    ];
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed already */ }
    }
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

async function attempt(
  holder: number | undefined,
  work: () => Promise<HttpResponse>,
): Promise<Outcome> {
  try {
    return { ok: true, res: expect2xx(await work()), holder };
  } catch (error) {
    const f = error instanceof RequestFailure ? error : new RequestFailure("other", String(error));
    return { ok: false, why: `${f.kind}: ${f.message}` };
  }
}

/**
 * Waits until a worker has accepted `conn` (TCP only) and returns the pid
 * holding it, when one is found. Unix sockets are not tracked this way.
 */
async function waitAccepted(ctx: RunContext, conn: Deno.Conn): Promise<number | undefined> {
  const target: Target = ctx.plan.target;
  if (target.transport !== "tcp") return undefined;
  const local = (conn.localAddr as Deno.NetAddr).port;
  const until = performance.now() + ACCEPT_WAIT_MS;
  while (performance.now() < until) {
    const inode = acceptedInode(target.port, local);
    if (inode) {
      return holderOf(inode, ctx.master.workers.running().map((w) => w.pid));
    }
    await delay(10);
  }
  return undefined;
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

function openRow(fresh: Outcome, kept: Outcome | undefined): CheckResult {
  const parts: string[] = [];
  const failed: string[] = [];
  const say = (what: string, out: Outcome) => {
    if (out.ok) parts.push(`${what} was answered ${out.res.status}`);
    else failed.push(`${what} was not answered: ${out.why}`);
  };
  say(
    `a connection accepted just before TERM that sent its request ${secs(AFTER_TERM_MS)} after`,
    fresh,
  );
  if (kept) say("the next request on a kept-alive connection", kept);
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
  const lateInReloads = master.events.slice(0, from).filter((e) => e.type === "kill-late");
  const lateAtStop = master.events.slice(from).filter((e) => e.type === "kill-late");
  const exits = master.events.slice(from).filter((e) => e.type === "exited");
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
