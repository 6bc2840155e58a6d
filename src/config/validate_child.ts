/**
 * The config checked out of the master's process: {@link validateInChild}
 * starts the same executable in a validate mode (./validate_mode.ts), which
 * loads and validates the config and answers with the effective config as
 * JSON. The running master thus never loads zod or the schema (they are most
 * of what it would otherwise hold; BENCHMARKS.md, "Master memory"), at start
 * and on every reload alike. `--check-config` still validates in-process.
 *
 * Invariants:
 * - The child goes through the exec shim like a hook (src/spawn/spawner.ts):
 *   no listening socket or other fd of the master reaches it, it has a
 *   process group of its own and dies with the master.
 * - Bounded: at most {@link VALIDATE_LIMITS} `timeoutMs` (then SIGKILL),
 *   `maxAnswerBytes` on stdout and `maxErrorBytes` on stderr (past either it
 *   is killed too). Every way it can fail is one error that says what the
 *   check did: exit 2 is the config mistake itself, its message unchanged
 *   (a {@link ConfigError}); a child that cannot be started (EAGAIN, ENOMEM),
 *   timed out, wrote too much, exited otherwise or answered unreadably is an
 *   {@link ArbiterError} (exit 1 at start; on a reload, the reload is refused
 *   and the running config kept, docs/operations.md).
 *
 * Part of the executor: it decides nothing; it only runs the check and
 * reports what happened.
 *
 * @module
 */

import { ArbiterError, ConfigError, ExitCode } from "../errors.ts";
import type { SelfInvocation } from "../spawn/self.ts";
import { signalWorkerGroup, sweepGroup } from "../spawn/process_group.ts";
import { spawnWorker } from "../spawn/spawner.ts";
import type { Config } from "./types.ts";

/** First argument that selects the validate mode. Not a public interface. */
export const VALIDATE_MODE_ARG = "__arbiter_validate";
/** Environment variable carrying the {@link ValidateRequest} as JSON. */
export const VALIDATE_REQUEST_ENV = "ARBITER_VALIDATE_REQUEST";

/** What the child needs besides its environment (which is the master's). */
export interface ValidateRequest {
  /** The master's command line, without the program. */
  argv: string[];
  /** The directory relative command-line paths resolve against. */
  cwd: string;
  /** Sockets inherited through socket activation (their fds, for the default binds). */
  inheritedFds: number[];
}

/** The bounds of one check. */
export interface ValidateLimits {
  /** From spawn to exit; a Deno start is ~0.1–0.3 s here. */
  timeoutMs: number;
  /** The JSON answer; a config is a few kB. */
  maxAnswerBytes: number;
  /** The error message. */
  maxErrorBytes: number;
}

/** The defaults: generous for a loaded machine, small enough that a stuck child is noticed. */
export const VALIDATE_LIMITS: ValidateLimits = {
  timeoutMs: 30_000,
  maxAnswerBytes: 4 << 20,
  maxErrorBytes: 256 << 10,
};

/** How to start the child. */
export interface ValidateOptions {
  self: SelfInvocation;
  /** The environment the config is loaded with (the child's own, which `deno run` needs too). */
  env: Record<string, string>;
  /** Records the child while it lives (the master's registry of `Deno.Command` children). */
  track?: (child: Deno.ChildProcess) => void;
  limits?: ValidateLimits;
}

const CHECK = "config check";

/** Reads a stream to the end, or until it holds more than `max` bytes (then calls `over`). */
async function readCapped(
  stream: ReadableStream<Uint8Array>,
  max: number,
  over: () => void,
): Promise<{ bytes: Uint8Array; overflow: boolean }> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = stream.getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > max) {
        over();
        await reader.cancel().catch(() => {});
        return { bytes: new Uint8Array(), overflow: true };
      }
      chunks.push(value);
    }
  } catch {
    // The pipe failed: what was read is what there is.
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) bytes.set(chunk, at), at += chunk.length;
  return { bytes, overflow: false };
}

/**
 * Loads and validates the config of `request` in a short-lived child.
 *
 * @returns The effective config, as `loadConfig` would give it.
 * @throws {ConfigError} the config's mistakes, exactly as `loadConfig` words them.
 * @throws {ArbiterError} when the check itself failed (see the module header).
 */
export async function validateInChild(
  request: ValidateRequest,
  options: ValidateOptions,
): Promise<Config> {
  const limits = options.limits ?? VALIDATE_LIMITS;
  const { self } = options;
  const program = self.executable;
  let child: Deno.ChildProcess;
  try {
    child = spawnWorker(self, {
      spec: {
        program,
        argv: [program, ...self.args, VALIDATE_MODE_ARG],
        env: { ...options.env, [VALIDATE_REQUEST_ENV]: JSON.stringify(request) },
        fds: [],
        masterPid: Deno.pid,
      },
      cwd: request.cwd,
      shimEnv: options.env,
      output: "piped",
      stdin: "null",
    });
  } catch (error) {
    throw new ArbiterError(
      ExitCode.Runtime,
      `cannot start the ${CHECK} (${program}): ${(error as Error)?.message ?? error}`,
      { cause: error },
    );
  }
  options.track?.(child);
  let stopped: string | undefined;
  let exited = false;
  // The child and whatever it started (its own process group, made by the
  // shim), so no straggler holds the pipes open.
  const stop = (why: string) => {
    stopped ??= why;
    if (exited) {
      sweepGroup(child.pid, "SIGKILL", new Set());
      return;
    }
    if (signalWorkerGroup(child.pid, "SIGKILL")) return;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  };
  // A bound on a short-lived child, like a hook's time limit: not a master deadline.
  const timer = setTimeout(
    () => stop(`gave no answer within ${limits.timeoutMs / 1000} s`),
    limits.timeoutMs,
  );
  const [answer, errors, status] = await Promise.all([
    readCapped(
      child.stdout,
      limits.maxAnswerBytes,
      () => stop(`answered with more than ${limits.maxAnswerBytes} bytes`),
    ),
    readCapped(
      child.stderr,
      limits.maxErrorBytes,
      () => stop(`wrote more than ${limits.maxErrorBytes} bytes of errors`),
    ),
    child.status.then((status) => {
      exited = true;
      if (stopped !== undefined) sweepGroup(child.pid, "SIGKILL", new Set());
      return status;
    }),
  ]).finally(() => clearTimeout(timer));
  const message = new TextDecoder().decode(errors.bytes).trim();
  const pid = child.pid;
  if (stopped !== undefined) {
    throw new ArbiterError(ExitCode.Runtime, `the ${CHECK} (pid ${pid}) ${stopped}; stopped it`);
  }
  if (status.code === ExitCode.Usage && message !== "") throw new ConfigError(message);
  if (!status.success) {
    const how = status.signal
      ? `was killed by ${status.signal}`
      : `exited with code ${status.code}`;
    throw new ArbiterError(
      ExitCode.Runtime,
      `the ${CHECK} (pid ${pid}) ${how}` + (message ? `: ${message}` : ""),
    );
  }
  try {
    return JSON.parse(new TextDecoder().decode(answer.bytes)) as Config;
  } catch (error) {
    throw new ArbiterError(
      ExitCode.Runtime,
      `the ${CHECK} (pid ${pid}) answered with unreadable JSON: ${(error as Error).message}`,
    );
  }
}
