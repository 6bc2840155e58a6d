/**
 * Turns the user's effective config into the private one `arbiter verify`
 * runs: the same worker (command, env, chdir, user, workers, readiness and
 * timeouts) on private loopback addresses, with nothing that reaches outside
 * the run — no pidfile, control socket, metrics, log file, hooks, file
 * watching or recycling — and the master logging JSON Lines for verify to
 * read. Pure: the caller picks the free ports and the private directory.
 *
 * Invariants:
 * - The user's real addresses, pidfile and log file are never in the
 *   private config, so verify cannot disturb a running production master.
 * - Every path in the private config is absolute (it lives in a temporary
 *   directory, not beside the user's file).
 *
 * @module
 */

import { stringify as stringifyToml } from "smol-toml";
import { HOOK_KEYS } from "../config/schema.ts";
import type { Config } from "../config/types.ts";
import type { Target } from "./http.ts";

/** At most this many workers are started, whatever the config says. */
export const MAX_WORKERS = 4;
/** The watchdog deadline verify uses (seconds) when the config's is longer. */
export const WATCHDOG_TIMEOUT_S = 3;

/** Where each of the user's binds goes in the private run. */
export interface PrivateAddresses {
  /** One free port on 127.0.0.1 per TCP or fd:// bind, in bind order. */
  tcpPorts: number[];
  /** The private directory (unix sockets go here). */
  dir: string;
}

/** The private run, as verify needs to know it. */
export interface VerifyPlan {
  /** The text of the private config file. */
  toml: string;
  /** Where to send requests: the first bind. */
  target: Target;
  /** The private binds, as written in the private config. */
  binds: string[];
  workers: number;
  ready: "spawn" | "notify";
  bootTimeoutS: number;
  gracefulTimeoutS: number;
  /** The user's `timeout`; 0 means no watchdog. */
  userTimeoutS: number;
  /** The `timeout` of the private run (shorter, so the check is quick). */
  timeoutS: number;
  /** The user's `worker_usr1`, kept in the private run. */
  workerUsr1: Config["worker_usr1"];
  /** Keys of the user's config left out of the private run. */
  dropped: string[];
  /** Notes for the user about what differs from their config. */
  notes: string[];
}

/** Keys that reach outside the run (or add noise to it) and are left out. */
const OUTSIDE_KEYS = [
  "pidfile",
  "control_socket",
  "metrics_bind",
  "log_file",
  "reload",
  "max_worker_lifetime",
  ...HOOK_KEYS,
] as const;

/** How many TCP ports {@link planRun} needs for `config`. */
export function portsNeeded(config: Config): number {
  return config.bind.filter((b) => b.kind !== "unix").length;
}

/**
 * The private run for `config`.
 *
 * @param config The user's effective config (file, command line and defaults).
 * @param addresses Free ports and the private directory.
 * @param cwd The directory verify runs in; the workers' directory when the
 *   config names none, as for a master started here.
 */
export function planRun(config: Config, addresses: PrivateAddresses, cwd: string): VerifyPlan {
  if (addresses.tcpPorts.length < portsNeeded(config)) {
    throw new RangeError(
      `tcpPorts: expected ${portsNeeded(config)} ports, got ${addresses.tcpPorts.length}`,
    );
  }
  const ports = [...addresses.tcpPorts];
  // IPv6 and fd:// binds become IPv4 loopback too: a worker takes the
  // socket's family from the fd, and 127.0.0.1 exists everywhere.
  const binds = config.bind.map((b, i) =>
    b.kind === "unix" ? `unix:${addresses.dir}/bind-${i}.sock` : `127.0.0.1:${ports.shift()}`
  );
  const first = binds[0];
  const target: Target = first.startsWith("unix:")
    ? { transport: "unix", path: first.slice("unix:".length) }
    : { transport: "tcp", hostname: "127.0.0.1", port: Number(first.split(":")[1]) };

  const workers = Math.min(config.workers, MAX_WORKERS);
  const timeoutS = config.timeout === 0 ? 0 : Math.min(config.timeout, WATCHDOG_TIMEOUT_S);
  const values: Record<string, unknown> = {
    command: config.command,
    workers,
    bind: binds,
    backlog: config.backlog,
    timeout: timeoutS,
    graceful_timeout: config.graceful_timeout,
    boot_timeout: config.boot_timeout,
    ready: config.ready,
    env: config.env,
    chdir: config.chdir ?? cwd,
    worker_output: "prefix",
    worker_usr1: config.worker_usr1,
    log_level: "info",
    log_format: "json",
  };
  if (config.user !== undefined) values.user = config.user;
  if (config.group !== undefined) values.group = config.group;
  if (config.umask !== undefined) values.umask = config.umask;

  const dropped = OUTSIDE_KEYS.filter((key) => {
    const value = config[key as keyof Config];
    return value !== undefined && value !== false && value !== 0;
  });
  const notes: string[] = [];
  if (workers < config.workers) notes.push(`${workers} of the ${config.workers} workers are run`);
  if (timeoutS > 0 && timeoutS < config.timeout) {
    notes.push(`the watchdog deadline is ${timeoutS} s instead of ${config.timeout} s`);
  }
  if (dropped.length > 0) notes.push(`not used here: ${dropped.join(", ")}`);
  const header = "# written by `arbiter verify`: a private run of the worker, removed afterwards\n";
  return {
    toml: header + stringifyToml(values) + "\n",
    target,
    binds,
    workers,
    ready: config.ready,
    bootTimeoutS: config.boot_timeout,
    gracefulTimeoutS: config.graceful_timeout,
    userTimeoutS: config.timeout,
    workerUsr1: config.worker_usr1,
    timeoutS,
    dropped,
    notes,
  };
}
