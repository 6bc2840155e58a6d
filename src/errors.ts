/**
 * Named exit codes and the one error type that carries them to the single
 * exit path in `main.ts`. Nothing else in the master calls `Deno.exit` (the exec
 * shim, src/spawn/exec_shim.ts, is a separate short-lived process that exits
 * with its own codes).
 *
 * @module
 */

/** Exit codes of the master (docs/contract.md, "Files and exit codes"). */
export const ExitCode = {
  /** Clean stop. */
  Ok: 0,
  /** Runtime error: bind failure, pidfile conflict, hook refusal. */
  Runtime: 1,
  /** Usage or config error. */
  Usage: 2,
  /** A worker failed to boot (Gunicorn's WORKER_BOOT_ERROR), or the command cannot run. */
  WorkerBoot: 3,
  /** A worker failed to load its app (Gunicorn's APP_LOAD_ERROR). */
  AppLoad: 4,
} as const;

/** One of the {@link ExitCode} values. */
export type ExitCode = typeof ExitCode[keyof typeof ExitCode];

/**
 * An error that ends the master with a given exit code. Its message is the
 * one line a person sees; `cause` keeps the underlying error.
 *
 * @example
 * ```ts
 * import { ArbiterError, ExitCode } from "./errors.ts";
 * throw new ArbiterError(ExitCode.Usage, "workers: expected an integer ≥ 1, got 0");
 * ```
 */
export class ArbiterError extends Error {
  /** The exit code the master ends with. */
  readonly exitCode: ExitCode;

  constructor(exitCode: ExitCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ArbiterError";
    this.exitCode = exitCode;
  }
}

/** A usage or config mistake (exit 2). */
export class ConfigError extends ArbiterError {
  constructor(message: string, options?: ErrorOptions) {
    super(ExitCode.Usage, message, options);
    this.name = "ConfigError";
  }
}
