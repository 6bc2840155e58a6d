/**
 * A Deno worker for arbiter in three lines: serve a fetch-style handler on
 * the sockets the master hands over (fd 3, …), tell the master when it is
 * ready, answer its watchdog, and drain on TERM without losing a request.
 *
 * Two transports, one contract (readiness, watchdog, `STOPPING=1`, drain):
 *
 * - **native** (the default when it works): `Deno.serve`'s own listener,
 *   with the inherited socket swapped in under it (`_native.ts`), at the
 *   speed of `Deno.serve`. `Deno.serve` cannot take an fd
 * (https://github.com/denoland/deno/issues/14006); the swap rests on how the
 * runtime registers its
 *   listeners, so it is verified at start and, when it cannot be, the helper
 *   says why in one warning line and falls back. Needs `-A` (reading
 *   `/proc/self` needs all permissions; FFI to libc).
 * - **node**: `node:http` on the fd, converting each request and response
 *   (`_node.ts`); about a third of the speed. Needs `--allow-env`, and for
 *   the notify socket `--allow-net --allow-read --allow-write --unstable-net`.
 *
 * `transport: "auto" | "native" | "node"` (or `ARBITER_WORKER_TRANSPORT`)
 * picks one; a forced `native` that fails is an error instead of a fallback.
 *
 * Variables it reads (all optional: without them it serves fd 3, so the same
 * app runs under any socket-activation launcher, systemd included):
 * `LISTEN_FDS`/`LISTEN_PID` (serve every socket handed over),
 * `NOTIFY_SOCKET` or `ARBITER_NOTIFY_STREAM` (`READY=1` once serving,
 * `STOPPING=1` when draining), `WATCHDOG_USEC` (`WATCHDOG=1` every half).
 *
 * On SIGTERM (or {@link WorkerServer.shutdown}) it stops accepting at once
 * (the shared socket goes on feeding the other workers), answers each
 * further request with `Connection: close`, closes connections once they
 * have been idle for `drainGraceMs` (1 s: a client that just connected or
 * just got an answer may be sending its next request), waits for the
 * requests in flight, and resolves {@link WorkerServer.finished}. With
 * nothing else left running, the process then exits 0 on its own.
 *
 * `onUsr1` is called on each USR1 (reopen log files there); under
 * `worker_usr1 = "blocked"` the signal is read from a signalfd, so the
 * runtime never sees it and `deno run` opens no inspector (`_usr1.ts`).
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
 *   onListen: ({ transport }) => console.log(`serving with ${transport}`),
 * });
 * await server.finished; // after SIGTERM, once every request is done
 * console.log("drained");
 * ```
 *
 * @module
 */

import { startNative } from "./_native.ts";
import { startNode } from "./_node.ts";
import { listenUsr1 } from "./_usr1.ts";
import { env, NotifyQueue, openNotifier, warn, watchdogIntervalMs } from "./_notify.ts";
import type { Handler, Transport, TransportKind } from "./_transport.ts";

export type { Handler, ServeInfo, TransportKind } from "./_transport.ts";

/** Which transport {@link serve} uses: `auto` tries `native` and falls back to `node`. */
export type TransportChoice = "auto" | TransportKind;

const CHOICES: readonly TransportChoice[] = ["auto", "native", "node"];
const MAX_LISTEN_FDS = 256;

/** Options of {@link serve}. */
export interface ServeOptions {
  /**
   * The inherited listening socket to serve. Default: every socket of
   * `LISTEN_FDS` (fds 3, 4, …) when `LISTEN_PID` is this process or unset,
   * else fd 3.
   */
  fd?: number;
  /**
   * `"auto"` (default): the native path when it can be verified, else
   * `node:http` with one warning line. `"native"` or `"node"` force one.
   * Default from `ARBITER_WORKER_TRANSPORT` when set.
   */
  transport?: TransportChoice;
  /** How long a connection must be idle before a drain closes it (ms, default 1000). */
  drainGraceMs?: number;
  /** Called once serving on every fd (before `READY=1` is sent), with the transport in use. */
  onListen?: (info: { transport: TransportKind }) => void;
  /**
   * Called on each SIGUSR1 (the master forwards it after a log rotation:
   * reopen your log files here), until the server has finished. Under
   * `worker_usr1 = "blocked"` it is read from a signalfd, which needs
   * `--allow-ffi` (else nothing happens on USR1); see `_usr1.ts`.
   */
  onUsr1?: () => void;
}

/** A running worker server, as returned by {@link serve}. */
export interface WorkerServer {
  /** Resolves once the server has drained and released everything after a shutdown. */
  finished: Promise<void>;
  /**
   * Drain now, as on SIGTERM: stop accepting, finish the requests in flight,
   * close connections once idle. Resolves with {@link WorkerServer.finished}.
   */
  shutdown(): Promise<void>;
}

function choice(opts: ServeOptions): TransportChoice {
  const fromEnv = env("ARBITER_WORKER_TRANSPORT");
  const value = opts.transport ?? fromEnv ?? "auto";
  if (!CHOICES.includes(value as TransportChoice)) {
    const where = opts.transport !== undefined ? "transport" : "ARBITER_WORKER_TRANSPORT";
    throw new RangeError(
      `${where}: expected "auto", "native" or "node", got ${JSON.stringify(value)}`,
    );
  }
  return value as TransportChoice;
}

/** The fds to serve: see {@link ServeOptions.fd}. */
function inheritedFds(opts: ServeOptions): number[] {
  if (opts.fd !== undefined) {
    if (!Number.isInteger(opts.fd) || opts.fd < 0) {
      throw new RangeError(`fd: expected an integer ≥ 0, got ${opts.fd}`);
    }
    return [opts.fd];
  }
  const count = Number(env("LISTEN_FDS"));
  const pid = env("LISTEN_PID");
  const mine = pid === undefined || Number(pid) === Deno.pid;
  if (!mine || !Number.isInteger(count) || count < 1 || count > MAX_LISTEN_FDS) return [3];
  return Array.from({ length: count }, (_, i) => 3 + i);
}

async function start(fds: number[], handler: Handler, how: TransportChoice): Promise<Transport> {
  if (how === "node") return await startNode(fds, handler);
  try {
    return await startNative(fds, handler);
  } catch (error) {
    const why = (error as Error).message;
    if (how === "native") throw new Error(`transport "native": ${why}`, { cause: error });
    warn(`serving with node:http (about a third of Deno.serve's speed): native path: ${why}`);
    return await startNode(fds, handler);
  }
}

/**
 * Serve `handler` on the listening sockets inherited from the master (or
 * systemd socket activation), the way a worker under arbiter should.
 *
 * Once serving it sends `READY=1` (so `ready = "notify"` works), then
 * `WATCHDOG=1` every `WATCHDOG_USEC / 2` when the master asks for it. On
 * SIGTERM it sends `STOPPING=1` and drains (see the module doc); then
 * everything is released and `finished` resolves. A handler that throws
 * gets a 500. A server that cannot start rejects `finished` after one line
 * on stderr.
 *
 * @param handler Turns each request into a response (as for `Deno.serve`);
 * may be async and may return a streaming body.
 * @param opts The fd, transport, drain grace and a callback once serving.
 * @returns `finished`, resolving after a drain, and `shutdown()` to start one.
 * @throws {RangeError} when an option (or `ARBITER_WORKER_TRANSPORT`) is invalid.
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
  const how = choice(opts);
  const fds = inheritedFds(opts);
  const graceMs = opts.drainGraceMs ?? 1000;
  if (!Number.isFinite(graceMs) || graceMs < 0 || graceMs > 60_000) {
    throw new RangeError(`drainGraceMs: expected 0 to 60000, got ${graceMs}`);
  }

  const notify = new NotifyQueue(openNotifier());
  let stopRequested = false;
  let requestStop!: () => void;
  const stopped = new Promise<void>((resolve) => requestStop = resolve);
  const onTerm = () => void shutdown();
  const forgetUsr1 = opts.onUsr1 ? listenUsr1(opts.onUsr1) : () => {};
  const forgetSignal = () => {
    try {
      Deno.removeSignalListener("SIGTERM", onTerm);
    } catch {
      // Not registered (no signal support): nothing to undo.
    }
  };

  const run = async (): Promise<void> => {
    let transport: Transport;
    try {
      transport = await start(fds, handler, how);
    } catch (error) {
      forgetSignal();
      warn(`cannot serve on fd ${fds.join(", ")}: ${(error as Error).message}`);
      await notify.close();
      throw error;
    }
    let watchdog: ReturnType<typeof setInterval> | undefined;
    if (!stopRequested) {
      opts.onListen?.({ transport: transport.kind });
      notify.send("READY=1");
      const every = watchdogIntervalMs();
      if (every !== undefined) {
        notify.send("WATCHDOG=1");
        watchdog = setInterval(() => notify.send("WATCHDOG=1"), every);
      }
      await stopped;
    }
    clearInterval(watchdog);
    notify.send("STOPPING=1");
    await transport.drain(graceMs);
    await notify.close();
  };

  // onUsr1 lasts until the drain is over (a worker may still log meanwhile).
  const finished = run().finally(forgetUsr1);
  const shutdown = (): Promise<void> => {
    if (!stopRequested) {
      stopRequested = true;
      forgetSignal();
      requestStop();
    }
    return finished;
  };
  Deno.addSignalListener("SIGTERM", onTerm);
  return { finished, shutdown };
}
