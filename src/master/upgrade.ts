/**
 * In-place upgrade (USR2): the master re-executes its own executable with
 * `execve`, keeping its pid, so it stays PID 1 in a container and the main
 * pid of a systemd unit (Gunicorn's fork-a-new-master upgrade is neither).
 *
 * What crosses the exec: the listening sockets (their fds lack FD_CLOEXEC on
 * purpose, everything else Deno opened has it and closes) and one environment
 * variable with a JSON {@link UpgradeState}: which fd is which bind, and which
 * pids are workers. The new image trusts none of it blindly: an fd must be a
 * listening stream socket, a pid must be our own child (SPEC §9); anything
 * else is dropped with a warning.
 *
 * Before the exec, the new executable is run with `--check-config` and the
 * same arguments: if it fails, the upgrade is refused and nothing changes.
 *
 * @module
 */

import type { ChildRegistry } from "../spawn/children.ts";
import type { SelfInvocation } from "../spawn/self.ts";
import { blockAllSignals, execve, isListeningStreamSocket, strerror } from "../sys/libc.ts";

/** The variable carrying {@link UpgradeState} into the new image. */
export const UPGRADE_STATE_ENV = "ARBITER_UPGRADE_STATE";

/** What the old image tells the new one. */
export interface UpgradeState {
  version: 1;
  /** The master's pid (unchanged by exec): a state naming another pid is ignored. */
  masterPid: number;
  /** Wall-clock start of the first image, for uptime. */
  startedAt: number;
  /** The last generation number the old image used. */
  generation: number;
  listeners: { fd: number; text: string }[];
  workers: { pid: number; slot: number; generation: number }[];
  /** The old image's notify directory, for the new one to remove. */
  notifyDir?: string;
}

/** A validated state plus what was dropped from it and why. */
export interface AdoptedState {
  state: UpgradeState;
  warnings: string[];
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/**
 * Takes the upgrade state out of the environment (always removing the
 * variable) and validates it. Undefined when this is not an upgraded image.
 */
export function takeUpgradeState(env: Deno.Env = Deno.env): AdoptedState | undefined {
  const raw = env.get(UPGRADE_STATE_ENV);
  env.delete(UPGRADE_STATE_ENV);
  if (raw === undefined) return undefined;
  const warnings: string[] = [];
  let state: UpgradeState;
  try {
    state = JSON.parse(raw);
  } catch {
    return { state: emptyState(), warnings: [`${UPGRADE_STATE_ENV} is not JSON; ignored`] };
  }
  if (state?.version !== 1 || state.masterPid !== Deno.pid) {
    return {
      state: emptyState(),
      warnings: [`${UPGRADE_STATE_ENV} is not for this process; ignored`],
    };
  }
  const listeners = (state.listeners ?? []).filter(({ fd, text }) => {
    const ok = Number.isInteger(fd) && fd > 2 && typeof text === "string" &&
      isListeningStreamSocket(fd);
    if (!ok) warnings.push(`inherited fd ${fd} (${text}) is not a listening socket; ignored`);
    return ok;
  });
  const workers = (state.workers ?? []).filter(({ pid, slot, generation }) => {
    const ok = Number.isInteger(pid) && Number.isInteger(slot) && Number.isInteger(generation) &&
      parentOf(pid) === Deno.pid;
    if (!ok) warnings.push(`inherited worker pid ${pid} is not a child of this process; ignored`);
    return ok;
  });
  const generation = Number.isInteger(state.generation) ? state.generation : 0;
  const startedAt = Number.isFinite(state.startedAt) ? state.startedAt : Date.now();
  return { state: { ...state, generation, startedAt, listeners, workers }, warnings };
}

function emptyState(): UpgradeState {
  return {
    version: 1,
    masterPid: Deno.pid,
    startedAt: Date.now(),
    generation: 0,
    listeners: [],
    workers: [],
  };
}

/**
 * Runs the executable that an upgrade would exec, with `--check-config` and
 * the master's own arguments. Resolves with an error message, or undefined
 * when it passed.
 */
export async function checkUpgrade(
  self: SelfInvocation,
  args: string[],
  env: Record<string, string>,
  registry: ChildRegistry,
  timeoutMs = 30_000,
): Promise<string | undefined> {
  let child: Deno.ChildProcess;
  try {
    child = registry.track(
      new Deno.Command(self.executable, {
        args: [...self.args, "--check-config", ...args],
        env,
        clearEnv: true,
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn(),
    );
  } catch (error) {
    return `cannot run ${self.executable}: ${error}`;
  }
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    const [status, stderr] = await Promise.all([
      child.status,
      new Response(child.stderr).text(),
    ]);
    if (status.success) return undefined;
    const why = stderr.trim().split("\n").slice(-3).join(" / ") || `exit code ${status.code}`;
    return `the new master's --check-config failed: ${why}`;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Replaces this process image with a fresh master carrying `state`. Returns
 * only on failure, with the reason.
 */
export function execUpgrade(
  self: SelfInvocation,
  args: string[],
  env: Record<string, string>,
  state: UpgradeState,
): string {
  blockAllSignals(true); // pending until the new image listens (it unblocks them)
  const errno = execve(
    self.executable,
    [self.executable, ...self.args, ...args],
    { ...env, [UPGRADE_STATE_ENV]: JSON.stringify(state) },
  );
  blockAllSignals(false);
  return `execve ${self.executable}: ${strerror(errno)}`;
}
