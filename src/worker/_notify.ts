/**
 * The worker side of the notify protocol: `READY=1`, `WATCHDOG=1` and
 * `STOPPING=1` to the master, as a datagram on `NOTIFY_SOCKET` (needs
 * `--unstable-net` and `--allow-net`) or as `KEY=VALUE\n` lines on
 * `ARBITER_NOTIFY_STREAM` (needs `--allow-net`: Deno counts unix stream
 * sockets as net).
 *
 * Invariant: a worker that was asked for readiness (either variable set)
 * and cannot send it says so on stderr in one line with the reason, since
 * the master will otherwise kill it after `boot_timeout` without a word.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Sends sd_notify messages to the master, in order. */
export interface Notifier {
  send(message: string): Promise<void>;
  close(): void;
}

/** One warning line on stderr, prefixed so it is clear who speaks. */
export function warn(message: string): void {
  console.error(`arbiter worker: ${message}`);
}

/** An environment variable, or undefined when unset, empty or not readable (no --allow-env). */
export function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

function reason(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}

/** A datagram notifier on `NOTIFY_SOCKET`; throws when this Deno cannot send unix datagrams. */
function datagramNotifier(target: string): Notifier {
  const listenDatagram = (Deno as unknown as {
    listenDatagram?: (o: { transport: "unixpacket"; path: string }) => Deno.DatagramConn;
  }).listenDatagram;
  if (typeof listenDatagram !== "function") {
    throw new Error("unix datagrams need --unstable-net");
  }
  if (target.startsWith("@")) throw new Error("abstract socket addresses are not supported");
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

/**
 * The notify channel the environment offers, or undefined when it offers
 * none. When it offers one and none works, one line on stderr says why.
 */
export async function openNotifier(): Promise<Notifier | undefined> {
  const datagram = env("NOTIFY_SOCKET");
  const stream = env("ARBITER_NOTIFY_STREAM");
  const failures: string[] = [];
  if (datagram) {
    try {
      return datagramNotifier(datagram);
    } catch (error) {
      failures.push(`NOTIFY_SOCKET: ${reason(error)}`);
    }
  }
  if (stream) {
    try {
      return await streamNotifier(stream);
    } catch (error) {
      failures.push(`ARBITER_NOTIFY_STREAM: ${reason(error)}`);
    }
  }
  if (failures.length > 0) {
    warn(
      `cannot send READY=1 to the master (${failures.join("; ")}); ` +
        "run with -A, or at least --allow-env --allow-net --allow-read --allow-write --unstable-net",
    );
  }
  return undefined;
}

/** The watchdog interval in ms (half of `WATCHDOG_USEC`), when it is meant for this process. */
export function watchdogIntervalMs(): number | undefined {
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

/** Messages in order over a channel that opens in the background; `close()` after the last. */
export class NotifyQueue {
  #notifier: Promise<Notifier | undefined>;
  #sent: Promise<void> = Promise.resolve();

  constructor(notifier: Promise<Notifier | undefined>) {
    this.#notifier = notifier.catch(() => undefined);
  }

  send(message: string): void {
    this.#sent = this.#sent.then(async () => {
      try {
        await (await this.#notifier)?.send(message);
      } catch (error) {
        warn(`cannot send ${message}: ${reason(error)}`);
      }
    });
  }

  async close(): Promise<void> {
    await this.#sent;
    (await this.#notifier)?.close();
  }
}
