/**
 * Closed-loop HTTP clients for stop tests and the stop benchmark: each loop
 * sends one request after another until its connect is refused (the server
 * has gone) or it is told to stop, and sorts every outcome into answered,
 * refused (the connect failed: the client knows it was never served) and
 * lost — the connection was established, then reset or closed before an
 * answer. A stop that loses nothing has `lost` 0.
 *
 * @module
 */

import { Http1Connection } from "./_http1.ts";

/**
 * How many accepted connections per listener a stop without CAP_NET_ADMIN may
 * reset: the one in the queue shrunk to a single place, and one more whose
 * handshake raced it on the other CPU of the 2-core test machines
 * (docs/stopping.md, "Without CAP_NET_ADMIN"; scripts/bench/backlog_race.c).
 */
export const SHRUNK_QUEUE_RESETS = 2;

/** The outcome counts of a {@link StopLoad}. */
export interface StopLoadResult {
  answered: number;
  refused: number;
  lost: number;
  /** The first few errors of lost requests. */
  errors: string[];
}

/** Options of {@link StopLoad}. */
export interface StopLoadOptions {
  port: number;
  /** Loops (default 8). */
  concurrency?: number;
  /** `close`: a new connection per request; `keep-alive`: reuse it until the server closes it. */
  connection: "close" | "keep-alive";
  /** The request path (default `/`). */
  path?: string;
  /** Each loop stops after this many requests (a bound on the load; default 100,000). */
  maxRequests?: number;
}

/** Several request loops against 127.0.0.1:`port`, counted. */
export class StopLoad {
  readonly result: StopLoadResult = { answered: 0, refused: 0, lost: 0, errors: [] };
  #running = true;
  readonly #loops: Promise<void>[];

  constructor(readonly options: StopLoadOptions) {
    this.#loops = Array.from({ length: options.concurrency ?? 8 }, () => this.#loop());
  }

  /** Resolves once every loop has seen `n` answers in total (the load is on). */
  async answered(n: number): Promise<void> {
    while (this.result.answered < n && this.#running) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Waits for every loop to end on its own (each ends at its first refused connect). */
  async done(): Promise<StopLoadResult> {
    await Promise.all(this.#loops);
    return this.result;
  }

  /** Ends the loops after their current request. */
  async stop(): Promise<StopLoadResult> {
    this.#running = false;
    return await this.done();
  }

  async #loop(): Promise<void> {
    const { port, connection } = this.options;
    const path = this.options.path ?? "/";
    let conn: Http1Connection | undefined;
    for (let i = 0; this.#running && i < (this.options.maxRequests ?? 100_000); i++) {
      try {
        conn ??= await Http1Connection.open("127.0.0.1", port);
      } catch {
        this.result.refused++;
        return;
      }
      try {
        const res = await conn.request(path, `127.0.0.1:${port}`, connection === "close");
        this.result.answered++;
        if (connection === "close" || res.closes) {
          conn.close();
          conn = undefined;
        }
      } catch (error) {
        this.result.lost++;
        if (this.result.errors.length < 5) this.result.errors.push(String(error));
        conn?.close();
        conn = undefined;
      }
    }
    conn?.close();
  }
}
