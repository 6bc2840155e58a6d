/**
 * A strict HTTP/1.1 load generator for drain tests, on raw TCP: unlike
 * `fetch`, it never retries a request behind the test's back, so a
 * connection reset or closed before its response is counted, as `wrk` counts
 * it. Two modes: `keepAlive` (requests back to back on one connection,
 * reconnecting only when the server says `Connection: close`) and new
 * connection per request (`Connection: close` from the client).
 *
 * @module
 */

/** Options of {@link RawLoad.start}. */
export interface RawLoadOptions {
  /** Connections in parallel (default 4). */
  concurrency?: number;
  /** Reuse connections (default true). */
  keepAlive?: boolean;
  /** Path requested (default `/`). */
  path?: string;
  /** A response slower than this counts as failed (default 10 s). */
  timeoutMs?: number;
}

/** Counts of a run. */
export interface RawLoadResult {
  ok: number;
  failed: number;
  /** Connections the server asked to close (`Connection: close`). */
  closedByServer: number;
  /** The first few errors. */
  errors: string[];
}

const decoder = new TextDecoder();

/** Reads one response; returns whether the server asked to close. Throws on EOF or timeout. */
async function readResponse(conn: Deno.Conn, deadline: number): Promise<boolean> {
  const buf = new Uint8Array(16384);
  let text = "";
  for (;;) {
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      const head = text.slice(0, end).toLowerCase();
      const length = Number(head.match(/\r\ncontent-length: *(\d+)/)?.[1] ?? NaN);
      const chunked = /\r\ntransfer-encoding: *chunked/.test(head);
      const done = Number.isFinite(length)
        ? text.length - end - 4 >= length
        : chunked && text.endsWith("0\r\n\r\n");
      if (done) {
        if (!/^http\/1\.1 2\d\d/.test(head)) throw new Error(head.split("\r\n")[0]);
        return /\r\nconnection: *close/.test(head);
      }
    }
    const left = deadline - performance.now();
    if (left <= 0) throw new Error("timed out");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buf),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("timed out")), left);
      }),
    ]).finally(() => clearTimeout(timer));
    if (n === null) throw new Error(`connection closed after ${JSON.stringify(text.slice(0, 40))}`);
    text += decoder.decode(buf.subarray(0, n));
  }
}

/** Loops of raw HTTP/1.1 requests against 127.0.0.1:`port`. */
export class RawLoad {
  #running = false;
  #loops: Promise<void>[] = [];
  #result: RawLoadResult = { ok: 0, failed: 0, closedByServer: 0, errors: [] };

  /** Starts the loops; resolves at once. */
  start(port: number, opts: RawLoadOptions = {}): this {
    if (this.#running) throw new Error("RawLoad: already running");
    const n = opts.concurrency ?? 4;
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(`concurrency: expected an integer ≥ 1, got ${n}`);
    }
    this.#running = true;
    this.#result = { ok: 0, failed: 0, closedByServer: 0, errors: [] };
    for (let i = 0; i < n; i++) this.#loops.push(this.#loop(port, opts));
    return this;
  }

  /** The counts so far (a copy). */
  snapshot(): RawLoadResult {
    return { ...this.#result, errors: [...this.#result.errors] };
  }

  /** Stops the loops (requests in flight complete and are counted). */
  async stop(): Promise<RawLoadResult> {
    this.#running = false;
    await Promise.all(this.#loops);
    this.#loops = [];
    return this.snapshot();
  }

  async #loop(port: number, opts: RawLoadOptions): Promise<void> {
    const keepAlive = opts.keepAlive ?? true;
    const request = new TextEncoder().encode(
      `GET ${opts.path ?? "/"} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
        (keepAlive ? "" : "Connection: close\r\n") + "\r\n",
    );
    let conn: Deno.Conn | undefined;
    const drop = () => {
      try {
        conn?.close();
      } catch {
        // Already closed.
      }
      conn = undefined;
    };
    while (this.#running) {
      try {
        conn ??= await Deno.connect({ hostname: "127.0.0.1", port });
        await conn.write(request);
        const close = await readResponse(conn, performance.now() + (opts.timeoutMs ?? 10_000));
        this.#result.ok++;
        if (close) this.#result.closedByServer++;
        if (close || !keepAlive) drop();
      } catch (error) {
        this.#result.failed++;
        if (this.#result.errors.length < 10) {
          this.#result.errors.push(error instanceof Error ? error.message : String(error));
        }
        drop();
      }
    }
    drop();
  }
}
