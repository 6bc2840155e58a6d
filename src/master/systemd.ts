/**
 * The master's side of systemd's notify protocol: `READY=1` once the first
 * generation is ready, `RELOADING=1` (with `MONOTONIC_USEC`) when a reload
 * starts and `READY=1` when it ends, `STOPPING=1` on stop, `STATUS=` lines,
 * and `WATCHDOG=1` pings when systemd set `WATCHDOG_USEC` for us.
 *
 * Sending is best effort: a notify failure is logged by the caller, never
 * fatal. The variables are read once at start; they never reach a worker
 * (see src/spawn/private_env.ts).
 *
 * @module
 */

import { monotonicUsec } from "../sys/process.ts";
import { MAX_TIMER_MS } from "../core/limits.ts";
import type { CoreSnapshot } from "../core/core.ts";

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
    // From the environment, so bounded: past MAX_TIMER_MS setInterval would spin every 1 ms.
    const interval = forUs && usec > 0
      ? Math.min(MAX_TIMER_MS, Math.max(1, Math.floor(usec / 2000)))
      : undefined;
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

/**
 * The master's link to the service manager, whether there is one or not:
 * without `NOTIFY_SOCKET` every method does nothing. Failures to notify are
 * logged, never thrown.
 */
export class ServiceManager {
  #lastPing = -Infinity;
  #interval?: ReturnType<typeof setInterval>;

  private constructor(
    readonly notifier: SystemdNotifier | undefined,
    readonly log: { warn: (message: string, props: Record<string, unknown>) => void },
  ) {}

  /** @throws {Error} when `NOTIFY_SOCKET` is unusable (see {@link SystemdNotifier.fromEnv}) */
  static async fromEnv(
    env: Record<string, string | undefined>,
    log: ServiceManager["log"],
  ): Promise<ServiceManager> {
    return new ServiceManager(await SystemdNotifier.fromEnv(env), log);
  }

  /**
   * Calls `tick` at systemd's watchdog interval, when it asked for pings.
   * The tick goes through the master's queue and the ping is sent from the
   * loop ({@link pingIfDue}), so a stuck loop stops the pings.
   */
  startWatchdog(tick: () => void): void {
    const interval = this.notifier?.watchdogIntervalMs;
    if (interval !== undefined) this.#interval = setInterval(tick, interval);
  }

  /** Sends `WATCHDOG=1` if most of an interval passed since the last one. */
  pingIfDue(now: number): void {
    const interval = this.notifier?.watchdogIntervalMs;
    if (interval === undefined || now - this.#lastPing < interval * 0.9) return;
    this.#lastPing = now;
    this.send("WATCHDOG=1");
  }

  /** Sends fields without waiting. */
  send(...fields: string[]): void {
    this.sendNow(...fields);
  }

  /** Sends fields; resolves once sent (or failed, which is logged). */
  async sendNow(...fields: string[]): Promise<void> {
    await this.notifier?.send(...fields).catch((error) =>
      this.log.warn("cannot notify systemd: {error}", {
        event: "systemd.notify_failed",
        error: String(error),
      })
    );
  }

  /** `READY=1` with a status line from the core's snapshot. */
  ready(snapshot: CoreSnapshot): void {
    const ready = snapshot.workers.filter((w) => w.state === "ready").length;
    const { desiredWorkers, generation } = snapshot;
    this.send(
      "READY=1",
      `STATUS=${ready} of ${desiredWorkers} worker(s) ready, generation ${generation}`,
    );
  }

  /** `RELOADING=1`. */
  reloading(): void {
    this.notifier?.reloading("reloading").catch(() => {});
  }

  close(): void {
    if (this.#interval !== undefined) clearInterval(this.#interval);
    this.notifier?.close();
  }
}
