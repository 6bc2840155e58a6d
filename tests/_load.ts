/**
 * Load in integration tests: {@link LoadGenerator} sends requests back to
 * back from several loops (through `fetch`, or raw HTTP/1.1 so that every
 * failure counts) and counts the outcomes. Part of the integration-test
 * harness (re-exported by tests/_harness.ts).
 *
 * @module
 */

import { Http1Connection } from "./_http1.ts";
import { errText } from "./_wait.ts";

/** Options of {@link LoadGenerator.start}. */
export interface LoadOptions {
  /** Number of request loops (default 4). */
  concurrency?: number;
  /** Reuse connections (default true); false opens a new connection per request. */
  keepAlive?: boolean;
  /** A request that takes longer counts as failed (default 10 s). */
  requestTimeoutMs?: number;
  /** Error messages kept (default 10). */
  maxErrors?: number;
  /**
   * Speak HTTP/1.1 over raw TCP instead of `fetch`, so that every failure
   * counts (refused, reset, short read, timeout, non-2xx), as with wrk:
   * `"close"` sends `Connection: close` on a new connection per request;
   * `"keep-alive"` keeps one connection per loop, reconnecting only when the
   * server says `Connection: close`. `keepAlive` is ignored when this is set.
   */
  connection?: "close" | "keep-alive";
}

/** Counts of a load run. */
export interface LoadResult {
  ok: number;
  failed: number;
  /** Raw keep-alive mode: answers that asked to close the connection (`Connection: close`). */
  closedByServer: number;
  /** The first few error messages. */
  errors: string[];
}

/** Sends requests back to back from several loops and counts the outcomes. */
export class LoadGenerator {
  #running = false;
  #loops: Promise<void>[] = [];
  #client?: Deno.HttpClient;
  #result: LoadResult = { ok: 0, failed: 0, closedByServer: 0, errors: [] };
  #maxErrors = 10;

  /** Start the loops; resolves at once. */
  start(url: string, opts: LoadOptions = {}): this {
    if (this.#running) throw new Error("LoadGenerator: already running");
    this.#running = true;
    this.#result = { ok: 0, failed: 0, closedByServer: 0, errors: [] };
    this.#maxErrors = opts.maxErrors ?? 10;
    this.#client = Deno.createHttpClient(opts.keepAlive === false ? { poolMaxIdlePerHost: 0 } : {});
    const n = opts.concurrency ?? 4;
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(`concurrency: expected an integer ≥ 1, got ${n}`);
    }
    const timeoutMs = opts.requestTimeoutMs ?? 10_000;
    for (let i = 0; i < n; i++) {
      this.#loops.push(
        opts.connection
          ? this.#rawLoop(new URL(url), opts.connection, timeoutMs)
          : this.#loop(url, timeoutMs),
      );
    }
    return this;
  }

  /** The counts so far (a copy). */
  snapshot(): LoadResult {
    return { ...this.#result, errors: [...this.#result.errors] };
  }

  /** Stop the loops (in-flight requests complete and are counted) and return the counts. */
  async stop(): Promise<LoadResult> {
    this.#running = false;
    await Promise.all(this.#loops);
    this.#loops = [];
    this.#client?.close();
    this.#client = undefined;
    return this.snapshot();
  }

  async #loop(url: string, timeoutMs: number): Promise<void> {
    while (this.#running) {
      const ac = new AbortController();
      const timer = setTimeout(
        () => ac.abort(new Error(`no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      try {
        const res = await fetch(url, { client: this.#client, signal: ac.signal });
        const body = await res.text();
        if (res.ok) this.#result.ok++;
        else this.#fail(`HTTP ${res.status}: ${body.slice(0, 200)}`);
      } catch (err) {
        this.#fail(errText(err));
      } finally {
        clearTimeout(timer);
      }
    }
  }

  async #rawLoop(url: URL, mode: "close" | "keep-alive", timeoutMs: number): Promise<void> {
    const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = Number(url.port || 80);
    let conn: Http1Connection | undefined;
    while (this.#running) {
      // A hung request is cut by closing its connection, which fails the pending read.
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        conn?.close();
      }, timeoutMs);
      try {
        conn ??= await Http1Connection.open(hostname, port);
        const res = await conn.request(url.pathname + url.search, url.host, mode === "close");
        if (res.status >= 200 && res.status <= 299) this.#result.ok++;
        else this.#fail(`HTTP ${res.status}: ${res.body.slice(0, 200)}`);
        if (mode === "keep-alive" && res.closes) this.#result.closedByServer++;
        if (mode === "close" || res.closes) {
          conn.close();
          conn = undefined;
        }
      } catch (err) {
        this.#fail(timedOut ? `no answer within ${timeoutMs} ms` : errText(err));
        conn?.close();
        conn = undefined;
      } finally {
        clearTimeout(timer);
      }
    }
    conn?.close();
  }

  #fail(msg: string): void {
    this.#result.failed++;
    if (this.#result.errors.length < this.#maxErrors) this.#result.errors.push(msg);
  }
}
