/**
 * The validated, effective configuration of an arbiter master: what the rest
 * of the program reads. Produced only by `loadConfig` (config file merged
 * with command-line options and checked), so every field here is already
 * known to be well-formed.
 *
 * @module
 */

/** One listen address, parsed from a `bind` string. */
export type BindSpec =
  /** `HOST:PORT` or `[V6]:PORT`; `hostname` has no brackets. */
  | { kind: "tcp"; hostname: string; port: number; text: string }
  /** `unix:PATH`; `path` is absolute (resolved against the master's cwd). */
  | { kind: "unix"; path: string; text: string }
  /** `fd://N`: a listening socket the master inherited at fd N. */
  | { kind: "fd"; fd: number; text: string };

/** Lifecycle hooks: each an argv array run without a shell. */
export interface Hooks {
  on_starting?: string[];
  when_ready?: string[];
  on_reload?: string[];
  pre_spawn?: string[];
  post_exit?: string[];
  worker_timeout?: string[];
  nworkers_changed?: string[];
  on_exit?: string[];
}

/** The effective configuration. Durations are in seconds (may be fractional). */
export interface Config extends Hooks {
  /** Absolute path of the config file, or undefined when none was given. */
  config_file?: string;
  /** Worker argv; never empty. */
  command: string[];
  workers: number;
  bind: BindSpec[];
  backlog: number;
  timeout: number;
  graceful_timeout: number;
  boot_timeout: number;
  ready: "spawn" | "notify";
  /** Absolute path. */
  pidfile?: string;
  env: Record<string, string>;
  /** Absolute path. */
  chdir?: string;
  /** User name or numeric uid, as written. */
  user?: string;
  /** Group name or numeric gid, as written. */
  group?: string;
  /** File mode creation mask, e.g. 0o022. */
  umask?: number;
  control_socket?: string;
  metrics_bind?: string;
  worker_output: "inherit" | "prefix";
  /** USR1 to workers: forwarded, forwarded to workers started with it blocked, or never. */
  worker_usr1: "send" | "blocked" | "off";
  log_level: "trace" | "debug" | "info" | "warning" | "error" | "fatal";
  log_format: "text" | "json";
  /** Absolute path; undefined means stderr. */
  log_file?: string;
  /** Workers beyond `workers` allowed during a rollout; undefined: the whole generation at once. */
  max_surge?: number;
  max_worker_lifetime: number;
  max_worker_lifetime_jitter: number;
  hook_timeout: number;
  // ---- saturation (issue 15); see src/config/saturation.ts ----
  /** Memory limit per worker in MiB (may be fractional); 0 is off. */
  max_worker_memory: number;
  /** Seconds over the limit before a worker is recycled. */
  max_worker_memory_window: number;
  autoscale: boolean;
  /** Set when given, and always when `autoscale` is on (then `workers` lies within min..max). */
  workers_min?: number;
  workers_max?: number;
  autoscale_interval: number;
  autoscale_quiet_period: number;
  // ---- end of saturation ----
  reload: boolean;
  reload_paths: string[];
  reload_extensions: string[];
}
