/**
 * The load driver of `arbiter verify`: a few loops sending GET requests back
 * to back, either on a new TCP connection each (`Connection: close`) or on
 * kept-alive connections, counting every outcome. No external tool needed.
 *
 * Invariants:
 * - Every request ends as exactly one success or one failure of a
 *   {@link FailureKind}; a request cut short by {@link LoadDriver.stop} is
 *   allowed to finish and is counted.
 * - In keep-alive mode a connection is reused only while the server says it
 *   may be ("Connection: close" or a close-delimited body end it); a
 *   connection the server closes *after* a request was written to it is a
 *   failure, because a client cannot tell it from a lost request (wrk and
 *   most proxies count it too).
 * - Load goes only to the private master's loopback address or unix socket.
 *
 * @module
 */

import {
  connect,
  expect2xx,
  FAILURE_KINDS,
  type FailureKind,
  receive,
  RequestFailure,
  requestText,
  send,
  type Target,
  withDeadline,
} from "./http.ts";

/** Options of {@link LoadDriver}. */
export interface LoadOptions {
  target: Target;
  /** The URL path requested. */
  path: string;
  /** Reuse connections; false opens one per request with `Connection: close`. */
  keepAlive: boolean;
  /** Number of loops sending requests (default 4). */
  concurrency?: number;
  /** A request slower than this fails with `timeout` (default 5 s). */
  timeoutMs?: number;
}

/** One failure kept as evidence. */
export interface FailureSample {
  kind: FailureKind;
  detail: string;
  /** When it happened, as `performance.now()`. */
  at: number;
}

/** The counts of a load run. */
export interface LoadResult {
  ok: number;
  failed: number;
  byKind: Record<FailureKind, number>;
  /** The first few failures. */
  samples: FailureSample[];
  /** TCP (or unix) connections opened. */
  connections: number;
}

const MAX_SAMPLES = 5;

/** Sends requests from several loops until stopped. */
export class LoadDriver {
  readonly #opts: Required<LoadOptions>;
  #running = false;
  #loops: Promise<void>[] = [];
  #result: LoadResult = emptyResult();

  constructor(opts: LoadOptions) {
    const concurrency = opts.concurrency ?? 4;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
      throw new RangeError(`concurrency: expected an integer from 1 to 64, got ${concurrency}`);
    }
    this.#opts = { concurrency, timeoutMs: 5000, ...opts };
  }

  /** Starts the loops; returns at once. */
  start(): void {
    if (this.#running) throw new Error("LoadDriver: already running");
    this.#running = true;
    this.#result = emptyResult();
    for (let i = 0; i < this.#opts.concurrency; i++) this.#loops.push(this.#loop());
  }

  /** The counts so far (a copy). */
  snapshot(): LoadResult {
    return {
      ...this.#result,
      byKind: { ...this.#result.byKind },
      samples: [...this.#result.samples],
    };
  }

  /** Stops the loops, lets requests in flight finish, and returns the counts. */
  async stop(): Promise<LoadResult> {
    this.#running = false;
    await Promise.all(this.#loops);
    this.#loops = [];
    return this.snapshot();
  }

  async #loop(): Promise<void> {
    const { target, path, keepAlive, timeoutMs } = this.#opts;
    const request = requestText(target, path, !keepAlive);
    let conn: Deno.Conn | undefined;
    while (this.#running) {
      try {
        if (!conn) {
          conn = await connect(target, timeoutMs);
          this.#result.connections++;
        }
        const c = conn;
        const res = await withDeadline(c, timeoutMs, async () => {
          await send(c, request);
          return expect2xx(await receive(c));
        });
        this.#result.ok++;
        if (!keepAlive || !res.reusable) conn = closeQuietly(conn);
      } catch (error) {
        conn = closeQuietly(conn);
        this.#fail(
          error instanceof RequestFailure ? error : new RequestFailure("other", String(error)),
        );
        // A refused or reset connect in a tight loop would spin: yield a moment.
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    closeQuietly(conn);
  }

  #fail(failure: RequestFailure): void {
    this.#result.failed++;
    this.#result.byKind[failure.kind]++;
    if (this.#result.samples.length < MAX_SAMPLES) {
      this.#result.samples.push({
        kind: failure.kind,
        detail: failure.message,
        at: performance.now(),
      });
    }
  }
}

function closeQuietly(conn: Deno.Conn | undefined): undefined {
  try {
    conn?.close();
  } catch { /* already closed */ }
  return undefined;
}

function emptyResult(): LoadResult {
  const byKind = Object.fromEntries(FAILURE_KINDS.map((k) => [k, 0])) as Record<
    FailureKind,
    number
  >;
  return { ok: 0, failed: 0, byKind, samples: [], connections: 0 };
}

/** "3 reset, 1 short-read" — the non-zero failure counts, for evidence. */
export function describeFailures(result: LoadResult): string {
  return FAILURE_KINDS.filter((k) => result.byKind[k] > 0)
    .map((k) => `${result.byKind[k]} ${k}`)
    .join(", ");
}
