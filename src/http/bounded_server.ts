/**
 * The bounded HTTP/1.1 server under both of the master's servers (control
 * socket, metrics; docs/contract.md, "Operations", "Security"): one request per
 * connection, every resource a client can hold capped in count, size and time,
 * so that no client can stop the master or make it stop answering for longer
 * than a timeout.
 *
 * Why not `Deno.serve`: it has no connection cap, no header or idle timeout,
 * and its internal accept loop rejects unhandled on EMFILE (seen: the master
 * died under `ulimit -n 256` with ~230 idle connections). `Deno.listen`'s
 * `accept()` instead rejects catchably on EMFILE and the listener keeps
 * working once descriptors are free again (verified on Deno 2.9.6), so this
 * module owns the accept loop, and {@link ./connection.ts} each connection.
 * `node:http` in Deno survived the same flood in a trial, but offers no hook
 * to log or back off on a failed accept, and its timeouts would rest on the
 * compatibility layer; a small server whose every bound is tested here was
 * the smaller risk.
 *
 * Invariants:
 * - At most `maxConnections` connections are open (64, fewer under a low
 *   `ulimit -n`: {@link connectionCap}); one more is accepted and closed at
 *   once (keeping the kernel queue short and the refusal fast).
 *   Together with the timeouts this caps the descriptors and memory the
 *   server holds: `maxConnections × (maxHeadBytes + maxBodyBytes)` bytes.
 * - A failing `accept()` (EMFILE, ENFILE, ENOBUFS, ...) never ends the
 *   loop: it is logged (rate-limited) and retried after a back-off doubling
 *   from {@link MIN_BACKOFF_MS} to {@link MAX_BACKOFF_MS}.
 * - Every await on a client is under a deadline that closes the connection
 *   when it passes: idle (no byte for `idleTimeoutMs`), the head complete
 *   within `headerTimeoutMs` of accept, the body within `requestTimeoutMs`,
 *   the handler within `handlerTimeoutMs` (else 503), the answer written
 *   within `writeTimeoutMs`.
 * - Nothing here rejects unhandled: each connection's task ends in a catch;
 *   a handler that throws gives a 500.
 * - Every answer says `Connection: close`, and the connection is closed after
 *   it: no keep-alive state to bound.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { getLog } from "../logging/log.ts";
import { closeQuietly, Connection, errorText } from "./connection.ts";

/** What the server allows a client; see {@link DEFAULT_LIMITS}. */
export interface ServerLimits {
  /** Open connections at most; one more is closed at once. */
  maxConnections: number;
  /** Longest gap with no byte from the client while a request is read. */
  idleTimeoutMs: number;
  /** The request line and headers must be in within this time of accept. */
  headerTimeoutMs: number;
  /** The whole request (head and body) must be in within this time of accept. */
  requestTimeoutMs: number;
  /** The handler must produce its answer within this time, else 503. */
  handlerTimeoutMs: number;
  /** The client must take the whole answer within this time. */
  writeTimeoutMs: number;
  /** Largest request head (request line and headers) in bytes; larger is a 431. */
  maxHeadBytes: number;
  /** Largest request body in bytes; larger is a 413. */
  maxBodyBytes: number;
}

/**
 * The limits of both servers unless a caller overrides some
 * (docs/security.md, "The master's own servers"). `maxConnections` is the most it can be: the default is
 * {@link connectionCap} of the process's open-file limit.
 */
export const DEFAULT_LIMITS: Readonly<ServerLimits> = Object.freeze({
  maxConnections: 64,
  idleTimeoutMs: 5_000,
  headerTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  handlerTimeoutMs: 10_000,
  writeTimeoutMs: 10_000,
  maxHeadBytes: 8 * 1024,
  maxBodyBytes: 0,
});

/**
 * The connection cap for a soft open-file limit (`ulimit -n`): 64, or an
 * eighth of the limit when that is lower (never below 4), so that both
 * servers flooded at once hold at most a quarter of the descriptors and the
 * rest stays for the master's own files and for spawning workers.
 */
export function connectionCap(softFileLimit: number | undefined): number {
  if (softFileLimit === undefined || !Number.isFinite(softFileLimit)) {
    return DEFAULT_LIMITS.maxConnections;
  }
  return Math.max(4, Math.min(DEFAULT_LIMITS.maxConnections, Math.floor(softFileLimit / 8)));
}

/** The soft `RLIMIT_NOFILE` of this process, or undefined when it cannot be read or is unlimited. */
export function softFileLimit(): number | undefined {
  try {
    const line = Deno.readTextFileSync("/proc/self/limits").split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = Number(line?.slice("Max open files".length).trim().split(/\s+/)[0]);
    return Number.isSafeInteger(soft) && soft > 0 ? soft : undefined;
  } catch {
    return undefined;
  }
}

/** The first and the longest pause after a failed accept. */
export const MIN_BACKOFF_MS = 10;
export const MAX_BACKOFF_MS = 1_000;
/** A repeated warning (failed accepts, refused connections) is logged at most this often. */
export const WARN_INTERVAL_MS = 10_000;
/** How long `close()` lets requests being handled finish before closing them. */
const CLOSE_GRACE_MS = 2_000;

/** How to start a {@link BoundedServer}. */
export interface BoundedServerOptions {
  /** For log lines: `"control socket"`, `"metrics"`. */
  name: string;
  /** A listening socket; the server owns it from now on and closes it. */
  listener: Deno.Listener;
  /** Answers one request; may throw (500) or take too long (503). */
  handler: (request: Request) => Response | Promise<Response>;
  /** The answer to a request refused before the handler (400, 413, 503, ...). */
  errorResponse?: (status: number, message: string) => Response;
  limits?: Partial<ServerLimits>;
  /** Defaults to the master's logger. */
  log?: Logger;
}

/** A running server. */
export interface BoundedServer {
  /** Open connections now. */
  readonly connections: number;
  /** Stop accepting, let requests being handled finish (briefly), close everything. */
  close(): Promise<void>;
}

/**
 * Serve `handler` on `listener` within {@link ServerLimits}.
 *
 * @throws {RangeError} when a limit is not a positive integer (0 allowed for `maxBodyBytes`).
 *
 * @example Usage
 * ```ts
 * import { serveBounded } from "./bounded_server.ts";
 * const server = serveBounded({
 *   name: "metrics",
 *   listener: Deno.listen({ hostname: "127.0.0.1", port: 0 }),
 *   handler: () => new Response("ok\n"),
 * });
 * await server.close();
 * ```
 */
export function serveBounded(options: BoundedServerOptions): BoundedServer {
  return new Server(options);
}

class Server implements BoundedServer {
  readonly #limits: ServerLimits;
  readonly #open = new Set<Connection>();
  readonly #log: Logger;
  readonly #warnings = new Map<string, { last: number; suppressed: number }>();
  readonly #acceptLoop: Promise<void>;
  #closing = false;
  #wake?: () => void;

  constructor(readonly options: BoundedServerOptions) {
    this.#limits = checkLimits({
      ...DEFAULT_LIMITS,
      maxConnections: connectionCap(softFileLimit()),
      ...options.limits,
    });
    this.#log = options.log ?? getLog();
    this.#acceptLoop = this.#accept().catch((error) =>
      // Unreachable by design; logged rather than left to reject unhandled.
      this.#log.error("{server}: accept loop ended: {error}", {
        event: "http.failed",
        server: options.name,
        error,
      })
    );
  }

  get connections(): number {
    return this.#open.size;
  }

  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      try {
        this.options.listener.close();
      } catch { /* already closed */ }
      this.#wake?.();
    }
    await this.#acceptLoop;
    for (const c of this.#open) if (!c.handling) c.close();
    const all = Promise.all([...this.#open].map((c) => c.done));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([all, new Promise((r) => timer = setTimeout(r, CLOSE_GRACE_MS))]);
    clearTimeout(timer);
    for (const c of this.#open) c.close();
    await all;
  }

  async #accept(): Promise<void> {
    let backoff = 0;
    while (!this.#closing) {
      let conn: Deno.Conn;
      try {
        conn = await this.options.listener.accept();
      } catch (error) {
        if (this.#closing) return;
        backoff = Math.min(Math.max(backoff * 2, MIN_BACKOFF_MS), MAX_BACKOFF_MS);
        this.#warn("accept", "{server}: accept failed ({error}); retrying in {ms} ms", {
          error: errorText(error),
          ms: backoff,
        });
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, backoff);
          this.#wake = () => (clearTimeout(timer), resolve());
        });
        this.#wake = undefined;
        continue;
      }
      backoff = 0;
      if (this.#open.size >= this.#limits.maxConnections || this.#closing) {
        closeQuietly(conn);
        this.#warn("cap", "{server}: {max} connections open; refusing new ones", {
          max: this.#limits.maxConnections,
        });
        continue;
      }
      const connection = new Connection(conn, this.#limits, this.options);
      this.#open.add(connection);
      connection.done = connection.serve()
        .catch((error) =>
          this.#log.debug("{server}: connection ended: {error}", {
            event: "http.connection_ended",
            server: this.options.name,
            error: errorText(error),
          })
        )
        .finally(() => {
          connection.close();
          this.#open.delete(connection);
        });
    }
  }

  /** Logs the first of a kind, then at most one line per {@link WARN_INTERVAL_MS} with a count. */
  #warn(kind: string, message: string, props: Record<string, unknown>): void {
    const now = performance.now();
    const seen = this.#warnings.get(kind);
    if (seen && now - seen.last < WARN_INTERVAL_MS) {
      seen.suppressed++;
      return;
    }
    const suppressed = seen?.suppressed ?? 0;
    this.#warnings.set(kind, { last: now, suppressed: 0 });
    const more = suppressed > 0 ? ` (${suppressed} more since the last warning)` : "";
    this.#log.warn(message + more, { event: "http.limited", server: this.options.name, ...props });
  }
}

function checkLimits(limits: ServerLimits): ServerLimits {
  for (const [key, value] of Object.entries(limits)) {
    const min = key === "maxBodyBytes" ? 0 : 1;
    if (!Number.isSafeInteger(value) || value < min) {
      throw new RangeError(`${key}: expected an integer of at least ${min}, got ${value}`);
    }
  }
  return limits;
}
