/**
 * The V8 flags the master runs with, in one place for both ways it runs:
 * `deno compile` bakes them in (scripts/compile.ts), and under `deno run`
 * the start-up re-exec adds them (src/master/usr1.ts). No imports: the
 * compile script loads this module on its own.
 *
 * @module
 */

/**
 * V8 flags the master runs with: `--expose-gc`, so that once workers have
 * been quiet for a while it can run one full collection before it gives its
 * freed heap back (docs/decisions.md, "The master gives freed memory back
 * after a rollout"). Nothing but the program's own code runs in the master.
 * Workers never get them: flags on the master's command line are not
 * inherited, and the exec shim starts each worker's own program.
 */
export const MASTER_V8_FLAGS = "--expose-gc";

/**
 * `deno run …` argv with {@link MASTER_V8_FLAGS} added after `run`, unless
 * the command line already sets V8 flags (the user's choice stands; the
 * master then only trims the C heap). Any other argv is returned as it is.
 *
 * @example
 * ```ts
 * withMasterV8Flags(["deno", "run", "-A", "main.ts"]);
 * // ["deno", "run", "--v8-flags=--expose-gc", "-A", "main.ts"]
 * ```
 */
export function withMasterV8Flags(argv: readonly string[]): string[] {
  if (argv[1] !== "run" || argv.some((arg) => arg.startsWith("--v8-flags"))) return [...argv];
  return [argv[0], "run", `--v8-flags=${MASTER_V8_FLAGS}`, ...argv.slice(2)];
}
