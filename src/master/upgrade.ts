/**
 * In-place upgrade (USR2): the master re-executes its own executable with
 * `execve`, keeping its pid, so it stays PID 1 in a container and the main
 * pid of a systemd unit (Gunicorn's fork-a-new-master upgrade is neither).
 *
 * What crosses the exec: the listening sockets (their fds lack FD_CLOEXEC on
 * purpose, everything else Deno opened has it and closes) and a JSON
 * {@link UpgradeState} (which fd is which bind, which pids are workers) in a
 * sealed memfd, also left open across the exec; one environment variable
 * names its fd.
 *
 * Why not the environment itself: a fresh start's environment is anyone's to
 * set, and a forged state once made the master delete a directory of the
 * attacker's choosing. An open fd cannot be conjured from the environment;
 * the new image reads the state only from a sealed memfd with our name and
 * owned by our uid (see src/sys/memfd.ts), so only the previous image (or a
 * parent already able to do anything as this user) can have left it. Anything
 * else — JSON in the variable, a wrong fd — is one warning, then a normal
 * fresh start (the variable is removed before anything else runs either way).
 *
 * Even a genuine state is trusted no further than needed: an fd must be a
 * listening stream socket, a pid must be our own child, the notify directory
 * must be one this user made (src/notify/dir.ts) (docs/contract.md, "Security"); anything else is
 * dropped with a warning.
 *
 * Before the exec, the new executable is run with `--check-config` and the
 * same arguments: if it fails, the upgrade is refused and nothing changes.
 *
 * Part of the executor: it decides nothing; every decision is the core's
 * (src/core/), and this only carries one out or reports what happened.
 *
 * @module
 */

import type { ChildRegistry } from "../spawn/children.ts";
import type { SelfInvocation } from "../spawn/self.ts";
import { checkHubDir } from "../notify/dir.ts";
import { close, isListeningStreamSocket, strerror } from "../sys/libc.ts";
import { blockAllSignals, execve } from "../sys/process.ts";
import { readSealedMemfd, writeSealedMemfd } from "../sys/memfd.ts";
import { MAX_WORKERS } from "../core/limits.ts";

/** The variable naming the fd of the memfd carrying {@link UpgradeState}: `memfd:<fd>`. */
export const UPGRADE_STATE_ENV = "ARBITER_UPGRADE_STATE";
/** The memfd's name (shown as `/memfd:<name>` in /proc). */
export const UPGRADE_MEMFD_NAME = "arbiter-upgrade-state";
/** The largest state accepted: far above any real one (a few KiB for hundreds of workers). */
const MAX_STATE_BYTES = 4 * 1024 * 1024;

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
  /** The worker count the old image ran (TTIN/TTOU, `ctl scale`, autoscale): it stays. */
  desiredWorkers?: number;
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
 * variable) and validates it. Undefined when this is not an upgraded image —
 * also when the variable is there but does not name a state the previous
 * image left (see the module notes): `onIgnored` then gets the reason, for
 * one warning line once logging is up.
 */
export function takeUpgradeState(
  env: Deno.Env = Deno.env,
  onIgnored: (why: string) => void = () => {},
): AdoptedState | undefined {
  const raw = env.get(UPGRADE_STATE_ENV);
  env.delete(UPGRADE_STATE_ENV);
  if (raw === undefined) return undefined;
  const ignored = (why: string) => {
    onIgnored(`${UPGRADE_STATE_ENV} ignored (${why}); starting fresh`);
    return undefined;
  };
  const match = /^memfd:(\d{1,10})$/.exec(raw);
  if (!match) return ignored("not an fd handed over by an in-place upgrade");
  const read = readSealedMemfd(Number(match[1]), UPGRADE_MEMFD_NAME, MAX_STATE_BYTES);
  if ("why" in read) return ignored(read.why);
  let state: UpgradeState;
  try {
    state = JSON.parse(new TextDecoder().decode(read.bytes));
  } catch {
    return ignored("the state is not JSON");
  }
  if (typeof state !== "object" || state === null) return ignored("the state is not an object");
  if (state.version !== 1 || state.masterPid !== Deno.pid) {
    return ignored("the state is not for this process");
  }
  const warnings: string[] = [];
  const listeners = (Array.isArray(state.listeners) ? state.listeners : []).filter((l) => {
    const ok = Number.isInteger(l?.fd) && l.fd > 2 && typeof l.text === "string" &&
      isListeningStreamSocket(l.fd);
    if (!ok) warnings.push(`inherited fd ${l?.fd} (${l?.text}) is not a listening socket; ignored`);
    return ok;
  });
  const workers = (Array.isArray(state.workers) ? state.workers : []).filter((w) => {
    const ok = Number.isInteger(w?.pid) && w.pid > 1 && Number.isInteger(w.slot) &&
      Number.isInteger(w.generation) && parentOf(w.pid) === Deno.pid;
    if (!ok) {
      warnings.push(`inherited worker pid ${w?.pid} is not a child of this process; ignored`);
    }
    return ok;
  });
  let notifyDir: string | undefined;
  if (state.notifyDir !== undefined) {
    const why = checkHubDir(state.notifyDir);
    if (why === undefined) notifyDir = state.notifyDir;
    else warnings.push(`the old notify directory is not one this master made (${why}); left alone`);
  }
  const generation = Number.isInteger(state.generation) ? state.generation : 0;
  const desired = state.desiredWorkers;
  let desiredWorkers: number | undefined;
  if (Number.isSafeInteger(desired) && desired! >= 0 && desired! <= MAX_WORKERS) {
    desiredWorkers = desired;
  } else if (desired !== undefined) {
    warnings.push(`the worker count handed over (${desired}) is out of range; using the config's`);
  }
  const startedAt = Number.isFinite(state.startedAt) ? state.startedAt : Date.now();
  return {
    state: {
      version: 1,
      masterPid: Deno.pid,
      generation,
      startedAt,
      listeners,
      workers,
      notifyDir,
      desiredWorkers,
    },
    warnings,
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
  let fd: number;
  try {
    fd = writeSealedMemfd(UPGRADE_MEMFD_NAME, new TextEncoder().encode(JSON.stringify(state)));
  } catch (error) {
    return `cannot hand the state over: ${(error as Error).message}`;
  }
  blockAllSignals(true); // pending until the new image listens (it unblocks them)
  const errno = execve(
    self.executable,
    [self.executable, ...self.args, ...args],
    { ...env, [UPGRADE_STATE_ENV]: `memfd:${fd}` },
  );
  blockAllSignals(false);
  close(fd);
  return `execve ${self.executable}: ${strerror(errno)}`;
}
