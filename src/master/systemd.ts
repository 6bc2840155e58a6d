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
 * Part of the executor: it decides nothing; every decision is the core's
 * (src/core/), and this only carries one out or reports what happened.
 *
 * @module
 */

import { ArbiterError, ConfigError, ExitCode } from "../errors.ts";
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
    runtimeDir: string,
  ): Promise<SystemdNotifier | undefined> {
    const target = env.NOTIFY_SOCKET;
    if (!target) return undefined;
    if (target.startsWith("@")) {
      throw new ArbiterError(
        ExitCode.Runtime,
        `NOTIFY_SOCKET ${target}: abstract sockets are not supported; use a path`,
      );
    }
    const usec = Number(env.WATCHDOG_USEC);
    const forUs = env.WATCHDOG_PID === undefined || env.WATCHDOG_PID === String(Deno.pid);
    // From the environment, so bounded: a timer past MAX_TIMER_MS would fire at once.
    const interval = forUs && usec > 0
      ? Math.min(MAX_TIMER_MS, Math.max(1, Math.floor(usec / 2000)))
      : undefined;
    // The sending socket needs a path of its own: in the runtime directory,
    // which was checked writable before start (a read-only root has no /tmp).
    let dir: string;
    try {
      dir = await Deno.makeTempDir({ dir: runtimeDir, prefix: "arbiter-sd-" });
    } catch (error) {
      const reason = (error as Error).message.replace(/ \(os error \d+\).*$/s, "").toLowerCase();
      throw new ConfigError(
        `runtime_dir: cannot make the systemd notify socket's directory in ` +
          `${JSON.stringify(runtimeDir)}: ${reason}; set runtime_dir to a writable directory`,
        { cause: error },
      );
    }
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
  private constructor(
    readonly notifier: SystemdNotifier | undefined,
    readonly log: { warn: (message: string, props: Record<string, unknown>) => void },
  ) {}

  /** @throws {ArbiterError} when `NOTIFY_SOCKET` is unusable (see {@link SystemdNotifier.fromEnv}) */
  static async fromEnv(
    env: Record<string, string | undefined>,
    runtimeDir: string,
    log: ServiceManager["log"],
  ): Promise<ServiceManager> {
    return new ServiceManager(await SystemdNotifier.fromEnv(env, runtimeDir), log);
  }

  /**
   * Half of systemd's `WATCHDOG_USEC`, when it asked this process for pings.
   * The core times the pings (its deadline table) and they are sent from the
   * loop, so a stuck loop stops them.
   */
  get watchdogIntervalMs(): number | undefined {
    return this.notifier?.watchdogIntervalMs;
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
    this.notifier?.close();
  }
}
