/**
 * A Deno worker for arbiter in three lines: serve a fetch-style handler on
 * the socket the master hands over at fd 3, tell the master when it is
 * ready, answer its watchdog, and drain on TERM.
 *
 * `Deno.serve` cannot take an inherited fd (denoland/deno#14006), so this
 * helper serves with `node:http` (`listen({ fd })`) and converts each
 * request and response between `node:http` and the web `Request` /
 * `Response` (headers, status, streaming bodies both ways).
 *
 * What it does with the variables arbiter sets (all optional: without them
 * it just serves, so the same app runs under any socket-activation
 * launcher, systemd included):
 *
 * - `NOTIFY_SOCKET`: `READY=1` once listening, `WATCHDOG=1` every
 *   `WATCHDOG_USEC / 2`, `STOPPING=1` when draining starts — sent as unix
 *   datagrams when `Deno.listenDatagram` is available (`--unstable-net`),
 * - otherwise over `ARBITER_NOTIFY_STREAM`, a unix stream socket taking the
 *   same messages as `KEY=VALUE\n` lines.
 *
 * On SIGTERM (or {@link WorkerServer.shutdown}) it stops accepting, lets the
 * requests in flight finish (their responses carry `Connection: close`),
 * closes every keep-alive connection as soon as it goes idle, releases all
 * its resources and resolves {@link WorkerServer.finished}. With nothing
 * else left running, the process then exits 0 on its own.
 *
 * Permissions: `--allow-env` to read the variables; for the notify socket
 * also `--allow-read --allow-write` (unix socket paths; the datagram socket
 * is bound to a temporary path, removed at once) with `--unstable-net` for
 * `NOTIFY_SOCKET`, or with `--allow-net` for `ARBITER_NOTIFY_STREAM` (Deno
 * counts unix stream sockets as net). A notify channel that cannot be opened is reported on stderr and
 * skipped: the worker still serves.
 *
 * @example A worker
 * ```ts
 * import { serve } from "./mod.ts"; // from an app: "<arbiter>/src/worker/mod.ts"
 *
 * serve((req) => new Response(`hello from ${new URL(req.url).pathname}\n`));
 * ```
 *
 * @example Cleanup after draining
 * ```ts
 * import { serve } from "./mod.ts"; // from an app: "<arbiter>/src/worker/mod.ts"
 *
 * const server = serve(() => new Response("hi\n"), {
 *   onListen: () => console.log("listening on fd 3"),
 * });
 * await server.finished; // after SIGTERM, once every request is done
 * console.log("drained");
 * ```
 *
 * @module
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { Readable } from "node:stream";

/** A fetch-style request handler. */
export type Handler = (req: Request) => Response | Promise<Response>;

/** Options of {@link serve}. */
export interface ServeOptions {
  /** The inherited listening socket to accept on (default 3, the first `LISTEN_FDS` socket). */
  fd?: number;
  /** Called once the server is accepting connections (before `READY=1` is sent). */
  onListen?: () => void;
}

/** A running worker server, as returned by {@link serve}. */
export interface WorkerServer {
  /** Resolves once the server has drained and released everything after a shutdown. */
  finished: Promise<void>;
  /**
   * Drain now, as on SIGTERM: stop accepting, finish the requests in flight,
   * close keep-alive connections. Resolves with {@link WorkerServer.finished}.
   */
  shutdown(): Promise<void>;
}

const encoder = new TextEncoder();

/** Sends sd_notify messages to the master, by datagram or over the stream fallback. */
interface Notifier {
  send(message: string): Promise<void>;
  close(): void;
}

function warn(message: string): void {
  console.error(`arbiter worker: ${message}`);
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined; // no --allow-env: behave as if unset
  }
}

/** A datagram notifier on `NOTIFY_SOCKET`, if this Deno can send unix datagrams. */
function datagramNotifier(target: string): Notifier | undefined {
  const listenDatagram = (Deno as unknown as {
    listenDatagram?: (o: { transport: "unixpacket"; path: string }) => Deno.DatagramConn;
  }).listenDatagram;
  if (typeof listenDatagram !== "function" || target.startsWith("@")) return undefined;
  // A datagram socket must be bound to a path in Deno; the path is removed at
  // once, the socket stays usable for sending.
  const dir = Deno.makeTempDirSync({ prefix: "arbiter-notify-" });
  let conn: Deno.DatagramConn;
  try {
    conn = listenDatagram({ transport: "unixpacket", path: `${dir}/sock` });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  const addr = { transport: "unixpacket" as const, path: target };
  return {
    send: async (message) => {
      await conn.send(encoder.encode(message), addr);
    },
    close: () => conn.close(),
  };
}

/** A stream notifier on `ARBITER_NOTIFY_STREAM`: one `KEY=VALUE\n` line per message. */
async function streamNotifier(path: string): Promise<Notifier> {
  const conn = await Deno.connect({ transport: "unix", path });
  let queue = Promise.resolve();
  return {
    send: (message) => {
      const bytes = encoder.encode(message.endsWith("\n") ? message : message + "\n");
      queue = queue.then(async () => {
        for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
      });
      return queue;
    },
    close: () => conn.close(),
  };
}

/** The notify channel the environment offers, or undefined. */
async function openNotifier(): Promise<Notifier | undefined> {
  const datagram = env("NOTIFY_SOCKET");
  const stream = env("ARBITER_NOTIFY_STREAM");
  if (datagram) {
    try {
      const notifier = datagramNotifier(datagram);
      if (notifier) return notifier;
    } catch (error) {
      if (!stream) warn(`cannot use NOTIFY_SOCKET ${datagram}: ${(error as Error).message}`);
    }
  }
  if (stream) {
    try {
      return await streamNotifier(stream);
    } catch (error) {
      warn(`cannot use ARBITER_NOTIFY_STREAM ${stream}: ${(error as Error).message}`);
    }
  } else if (datagram) {
    warn(
      "NOTIFY_SOCKET is set but unix datagrams need --unstable-net; not sending READY=1",
    );
  }
  return undefined;
}

/** The watchdog interval in ms (half of `WATCHDOG_USEC`), when it is meant for this process. */
function watchdogIntervalMs(): number | undefined {
  const usec = Number(env("WATCHDOG_USEC"));
  const pid = env("WATCHDOG_PID");
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  if (pid !== undefined && Number(pid) !== Deno.pid) return undefined;
  // Pinging more often than asked is harmless; a setInterval past 2^31 − 1 ms
  // would fire every 1 ms instead (a timeout above ~49.7 days).
  return Math.min(MAX_INTERVAL_MS, Math.max(1, Math.floor(usec / 2000)));
}

/** The longest delay one setInterval holds. */
const MAX_INTERVAL_MS = 2_147_483_647;

/** A web `Request` for a `node:http` request. */
function toRequest(req: IncomingMessage, signal: AbortSignal): Request {
  const raw = req.rawHeaders;
  const pairs: [string, string][] = [];
  let host = "localhost";
  for (let i = 0; i + 1 < raw.length; i += 2) {
    pairs.push([raw[i], raw[i + 1]]);
    if (raw[i].length === 4 && raw[i].toLowerCase() === "host") host = raw[i + 1];
  }
  const path = req.url ?? "/";
  const url = path.startsWith("/") ? `http://${host}${path}` : new URL(path, `http://${host}`);
  const method = req.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD";
  const init = {
    method,
    headers: pairs as HeadersInit,
    signal,
    body: hasBody ? Readable.toWeb(req) as ReadableStream<Uint8Array> : null,
    duplex: "half", // required for a streaming request body
  };
  try {
    return new Request(url, init);
  } catch {
    // A header the fetch API refuses (or a bad Host): leave such headers out.
    const headers = new Headers();
    for (const [name, value] of pairs) {
      try {
        headers.append(name, value);
      } catch {
        // Dropped.
      }
    }
    return new Request(`http://localhost${path.startsWith("/") ? path : "/"}`, {
      ...init,
      headers,
    });
  }
}

/** Writes a web `Response` to a `node:http` response, streaming its body. */
async function writeResponse(
  res: ServerResponse,
  response: Response,
  closing: boolean,
): Promise<void> {
  res.statusCode = response.status;
  if (response.statusText) res.statusMessage = response.statusText;
  for (const [name, value] of response.headers) {
    if (name !== "set-cookie") res.setHeader(name, value);
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) res.setHeader("set-cookie", cookies);
  if (closing) res.setHeader("connection", "close");
  if (response.body === null) {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  try {
    // A body that is complete at once (a string, bytes) goes out in one
    // write with a Content-Length; anything else is streamed as it comes.
    const first = await reader.read();
    if (first.done) return void res.end();
    const pending = reader.read();
    const second = await Promise.race([pending, NOT_YET]);
    if (second !== NOT_YET_VALUE && second.done) return void res.end(first.value);
    await write(res, first.value);
    let next = second === NOT_YET_VALUE ? await pending : second;
    while (!next.done) {
      await write(res, next.value);
      next = await reader.read();
    }
    res.end();
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    throw error;
  }
}

const NOT_YET_VALUE = Symbol("not yet");
/** Settled already: loses a race only to a promise that is settled too. */
const NOT_YET = Promise.resolve(NOT_YET_VALUE);

/** Write one chunk, waiting for the socket to drain when its buffer is full. */
async function write(res: ServerResponse, chunk: Uint8Array): Promise<void> {
  if (res.destroyed) throw new Error("client went away");
  if (res.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const go = () => {
      res.off("drain", go);
      res.off("close", go);
      resolve();
    };
    res.on("drain", go);
    res.on("close", go);
  });
}

/**
 * Serve `handler` on the listening socket inherited at `opts.fd` (default
 * 3), the way a worker under arbiter (or systemd socket activation) should.
 *
 * Once listening it sends `READY=1` (so `ready = "notify"` works), then
 * `WATCHDOG=1` every `WATCHDOG_USEC / 2` when the master asks for it. On
 * SIGTERM it sends `STOPPING=1` and drains: no new connections, requests in
 * flight finish, keep-alive connections close once idle; then everything is
 * released and `finished` resolves. A handler that throws gets a 500.
 *
 * @param handler Turns each request into a response; may be async and may
 * return a streaming body.
 * @param opts The fd to serve on and a callback once listening.
 * @returns `finished`, resolving after a drain, and `shutdown()` to start one.
 *
 * @example Usage
 * ```ts
 * import { serve } from "./mod.ts"; // from an app: "<arbiter>/src/worker/mod.ts"
 *
 * const id = Deno.env.get("ARBITER_WORKER_ID");
 * serve(() => new Response(`hello from worker ${id}\n`));
 * ```
 */
export function serve(handler: Handler, opts: ServeOptions = {}): WorkerServer {
  const fd = opts.fd ?? 3;
  let stopping = false;
  let notifier: Promise<Notifier | undefined> = Promise.resolve(undefined);
  let watchdog: ReturnType<typeof setInterval> | undefined;
  let resolveFinished!: () => void;
  let rejectFinished!: (error: unknown) => void;
  const finished = new Promise<void>((resolve, reject) => {
    resolveFinished = resolve;
    rejectFinished = reject;
  });

  // Messages go out in order; the channel is closed after the last one.
  let sent: Promise<void> = Promise.resolve();
  const notify = (message: string) => {
    sent = sent.then(async () => {
      try {
        await (await notifier)?.send(message);
      } catch (error) {
        warn(`cannot send ${message}: ${(error as Error).message}`);
      }
    });
  };
  const closeNotifier = async () => {
    await sent;
    (await notifier.catch(() => undefined))?.close();
  };

  // Requests in flight per connection. `closeIdleConnections` alone misses
  // connections that never sent a request (clients open spare ones, e.g.
  // fetch's pool, browsers' preconnect) in Deno's node:http: they would hold
  // the drain open until the master's SIGKILL.
  const busy = new Map<Socket, number>();
  const closeIdle = () => {
    server.closeIdleConnections();
    for (const [socket, requests] of busy) {
      if (requests > 0 || socket.writableEnded) continue;
      socket.end(); // FIN once the last response is flushed
      const timer = setTimeout(() => socket.destroy(), 2000);
      Deno.unrefTimer(timer);
      socket.once("close", () => clearTimeout(timer));
    }
  };

  const server: Server = createServer(async (req, res) => {
    const socket = req.socket;
    busy.set(socket, (busy.get(socket) ?? 0) + 1);
    const aborter = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) aborter.abort(new Error("client went away"));
      if (busy.has(socket)) busy.set(socket, busy.get(socket)! - 1);
      // Once draining, a connection that just finished its response goes.
      if (stopping) queueMicrotask(closeIdle);
    });
    let response: Response;
    try {
      response = await handler(toRequest(req, aborter.signal));
    } catch (error) {
      console.error(error);
      response = new Response("Internal Server Error\n", {
        status: 500,
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    }
    try {
      await writeResponse(res, response, stopping);
    } catch (error) {
      if (!res.headersSent && !res.destroyed) {
        res.statusCode = 500;
        res.end();
      } else {
        if (!res.destroyed) console.error(error);
        res.destroy();
      }
    }
  });

  const onTerm = () => void shutdown();
  const shutdown = (): Promise<void> => {
    if (stopping) return finished;
    stopping = true;
    try {
      Deno.removeSignalListener("SIGTERM", onTerm);
    } catch {
      // Not registered (no signal support): nothing to undo.
    }
    if (watchdog !== undefined) clearInterval(watchdog);
    notify("STOPPING=1");
    server.close(async (error) => {
      await closeNotifier();
      if (error && (error as { code?: string }).code !== "ERR_SERVER_NOT_RUNNING") {
        rejectFinished(error);
      } else {
        resolveFinished();
      }
    });
    closeIdle();
    return finished;
  };

  server.on("connection", (socket: Socket) => {
    busy.set(socket, 0);
    socket.once("close", () => busy.delete(socket));
  });
  Deno.addSignalListener("SIGTERM", onTerm);
  notifier = openNotifier();
  server.on("error", (error) => {
    if (!server.listening) {
      warn(`cannot listen on fd ${fd}: ${error.message}`);
      stopping = true;
      Deno.removeSignalListener("SIGTERM", onTerm);
      void closeNotifier();
      rejectFinished(error);
    }
  });
  server.listen({ fd }, () => {
    if (stopping) return void server.close();
    opts.onListen?.();
    notify("READY=1");
    const every = watchdogIntervalMs();
    if (every !== undefined) {
      notify("WATCHDOG=1");
      watchdog = setInterval(() => notify("WATCHDOG=1"), every);
    }
  });
  return { finished, shutdown };
}
