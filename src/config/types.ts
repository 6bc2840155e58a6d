/**
 * The validated, effective configuration of an arbiter master: what the rest
 * of the program reads. Produced only by `loadConfig` (config file merged
 * with command-line options and checked), so every field here is already
 * known to be well-formed.
 *
 * The type is derived from the zod schema in `schema.ts`: a key added there
 * appears here with its type and default. Only the keys `loadConfig` turns
 * into another shape (parsed binds, absolute paths, a numeric umask, MiB,
 * autoscale bounds) are restated below, with the shape they take.
 *
 * @module
 */

import type { ConfigValues, HOOK_KEYS } from "./schema.ts";

/** One listen address, parsed from a `bind` string. */
export type BindSpec =
  /** `HOST:PORT` or `[V6]:PORT`; `hostname` has no brackets. */
  | { kind: "tcp"; hostname: string; port: number; text: string }
  /** `unix:PATH`; `path` is absolute (resolved against the master's cwd). */
  | { kind: "unix"; path: string; text: string }
  /** `fd://N`: a listening socket the master inherited at fd N. */
  | { kind: "fd"; fd: number; text: string };

/** Lifecycle hooks: each an argv array run without a shell. */
export type Hooks = Pick<ConfigValues, typeof HOOK_KEYS[number]>;

/** The keys whose effective shape differs from the schema's output. */
interface Effective {
  /** Absolute path of the config file, or undefined when none was given. */
  config_file?: string;
  /** Worker argv; never empty (required on the command line or in the file). */
  command: string[];
  bind: BindSpec[];
  /** Absolute path. */
  pidfile?: string;
  /** Absolute path of an existing directory. */
  chdir?: string;
  /** User name or numeric uid, as written. */
  user?: string;
  /** Group name or numeric gid, as written. */
  group?: string;
  /** File mode creation mask, e.g. 0o022. */
  umask?: number;
  /** Absolute path. */
  control_socket?: string;
  /** Absolute path, as configured; where it is resolved: src/cli/directories.ts. */
  runtime_dir?: string;
  /** `HOST:PORT`, normalised. */
  metrics_bind?: string;
  /** `warn` is read as `warning`, `critical` as `fatal`. */
  log_level: Exclude<ConfigValues["log_level"], "warn" | "critical">;
  /** Absolute path; undefined means stderr. */
  log_file?: string;
  /** Memory limit per worker in MiB (may be fractional); 0 is off. */
  max_worker_memory: number;
  /** Absolute paths. */
  reload_paths: string[];
}

/**
 * The effective configuration. Durations are in seconds (may be fractional).
 * With `autoscale` on, `workers_min` and `workers_max` are always set and
 * `workers` lies within them.
 */
export type Config = Omit<ConfigValues, keyof Effective> & Effective;
