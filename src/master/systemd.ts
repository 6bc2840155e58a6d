/**
 * The master's side of systemd's notify protocol: `READY=1` once the first
 * generation is ready, `RELOADING=1` (with `MONOTONIC_USEC`) when a reload
 * starts and `READY=1` when it ends, `STOPPING=1` on stop, `STATUS=` lines,
 * and `WATCHDOG=1` pings when systemd set `WATCHDOG_USEC` for us.
 *
 * Sending is best effort: a notify failure is logged by the caller, never
 * fatal. The variables are read once at start; they never reach a worker
 * (see PRIVATE_ENV in generation.ts).
 *
 * @module
 */

import { monotonicUsec } from "../sys/libc.ts";

/** A connection to the service manager's notify socket. */
export class SystemdNotifier {
  readonly #target: string;
  readonly #dir: string;
  #socket?: Deno.DatagramConn;
  /** Interval for WATCHDOG=1 pings (half of WATCHDOG_USEC), when systemd asked for them. */
  readonly watchdogIntervalMs?: number;

  private constructor(target: string, dir: string, watchdogIntervalMs?: number) {
    this.#target = target;
    this.#dir = dir;
    this.watchdogIntervalMs = watchdogIntervalMs;
  }

  /**
   * A notifier when `NOTIFY_SOCKET` names a socket path, else undefined.
   * `WATCHDOG_USEC` counts only when `WATCHDOG_PID` is unset or our pid.
   */
  static async fromEnv(
    env: Record<string, string | undefined>,
  ): Promise<SystemdNotifier | undefined> {
    const target = env.NOTIFY_SOCKET;
    if (!target) return undefined;
    if (target.startsWith("@")) {
      throw new Error(`NOTIFY_SOCKET ${target}: abstract sockets are not supported; use a path`);
    }
    const usec = Number(env.WATCHDOG_USEC);
    const forUs = env.WATCHDOG_PID === undefined || env.WATCHDOG_PID === String(Deno.pid);
    const interval = forUs && usec > 0 ? Math.max(1, Math.floor(usec / 2000)) : undefined;
    const dir = await Deno.makeTempDir({ prefix: "arbiter-sd-" });
    return new SystemdNotifier(target, dir, interval);
  }

  /** Sends one datagram of newline-separated `KEY=VALUE` fields. */
  async send(...fields: string[]): Promise<void> {
    this.#socket ??= Deno.listenDatagram({ transport: "unixpacket", path: `${this.#dir}/s` });
    await this.#socket.send(new TextEncoder().encode(fields.join("\n")), {
      transport: "unixpacket",
      path: this.#target,
    });
  }

  /** `RELOADING=1` with the monotonic timestamp systemd requires alongside it. */
  reloading(status: string): Promise<void> {
    return this.send("RELOADING=1", `MONOTONIC_USEC=${monotonicUsec()}`, `STATUS=${status}`);
  }

  /** Closes the socket and removes its temporary directory. */
  close(): void {
    try {
      this.#socket?.close();
    } catch { /* closed */ }
    try {
      Deno.removeSync(`${this.#dir}/s`);
    } catch { /* never bound */ }
    try {
      Deno.removeSync(this.#dir); // rmdir: only the directory made in fromEnv, never recursive
    } catch { /* gone */ }
  }
}
