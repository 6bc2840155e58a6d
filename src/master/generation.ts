/**
 * Turns a validated config into what a generation of workers is started
 * with: the resolved program, the listeners (opened or reused from the pool),
 * the worker environment and identity. Everything that can fail for a new
 * config fails here, before the core hears of it, so a bad reload changes
 * nothing.
 *
 * Part of the executor: it decides nothing; every decision is the core's
 * (src/core/), and this only carries one out or reports what happened.
 *
 * @module
 */

import type { Config } from "../config/types.ts";
import { ArbiterError, ExitCode } from "../errors.ts";
import type { Listener, ListenerPool } from "../sockets/listeners.ts";
import { resolveIdentity } from "../spawn/identity.ts";
import { CommandNotExecutable, resolveCommand } from "../spawn/resolve.ts";
import type { Settings } from "../core/events.ts";
import { PRIVATE_ENV } from "../spawn/private_env.ts";
import { saturationSettingsOf } from "../core/saturation_policy.ts";

/** What every worker of one generation is started with. */
export interface GenerationContext {
  config: Config;
  /** Absolute path of the worker program. */
  program: string;
  listeners: Listener[];
  /** The worker environment, without the per-worker variables. */
  env: Record<string, string>;
  uid?: number;
  gid?: number;
}

export { PRIVATE_ENV };

/** The core's view of a config. */
export function settingsOf(config: Config): Settings {
  return {
    workers: config.workers,
    gracefulTimeoutMs: config.graceful_timeout * 1000,
    bootTimeoutMs: config.boot_timeout * 1000,
    ready: config.ready,
    watchdogMs: config.timeout * 1000,
    maxLifetimeMs: config.max_worker_lifetime * 1000,
    maxLifetimeJitterMs: config.max_worker_lifetime_jitter * 1000,
    maxSurge: config.max_surge,
    commandName: config.command[0],
    saturation: saturationSettingsOf(config),
    workerUsr1: config.worker_usr1,
    reloadVeto: config.on_reload !== undefined,
    shutdownDelayMs: config.shutdown_delay * 1000,
    quickStopSignal: `SIG${config.quick_stop_signal}`,
  };
}

/**
 * The absolute path of the worker program: `command[0]` looked up in the
 * worker's `PATH` (the master's environment plus `env`) from its directory.
 * @throws {CommandNotExecutable} when it cannot be executed
 */
export function workerProgram(config: Config, masterEnv: Record<string, string>): string {
  const path = { ...masterEnv, ...config.env }.PATH;
  return resolveCommand(config.command[0], path, config.chdir ?? Deno.cwd());
}

/**
 * Prepares a generation for `config`.
 * @param masterEnv the master's environment, already without {@link PRIVATE_ENV}
 * @throws {ArbiterError} exit 3 when the command cannot be executed, 1 when a
 *   listener cannot be opened, 2 for an unknown user or group
 */
export async function prepareGeneration(
  config: Config,
  pool: ListenerPool,
  masterEnv: Record<string, string>,
): Promise<GenerationContext> {
  const env: Record<string, string> = { ...masterEnv, ...config.env };
  for (const key of PRIVATE_ENV) delete env[key];
  let program: string;
  try {
    program = workerProgram(config, masterEnv);
  } catch (error) {
    if (!(error instanceof CommandNotExecutable)) throw error;
    throw new ArbiterError(ExitCode.WorkerBoot, `${error.message}`, { cause: error });
  }
  const { uid, gid } = resolveIdentity(config.user, config.group);
  const listeners = await pool.acquire(config.bind, config.backlog);
  if (listeners.length > 0) {
    env.LISTEN_FDS = String(listeners.length);
    env.LISTEN_FDNAMES = listeners.map((l) => l.name).join(":");
  }
  return { config, program, listeners, env, uid, gid };
}
