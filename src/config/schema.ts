/**
 * The zod schema of the config file (docs/contract.md, "Configuration"): its
 * keys, their types, their static defaults and the "expected …" text of every
 * error. `loadConfig` validates the config file merged with command-line
 * options against it, and `parseCli` checks single option values against its
 * fields, so one set of rules covers both.
 *
 * The schema stays representable as JSON Schema (no transforms): turning
 * values into the shapes of `Config` (bind specs, absolute paths, a numeric
 * umask) is `loadConfig`'s job.
 *
 * @module
 */

import { z } from "zod";
import { HOOK_KEYS } from "./hook_keys.ts";
import { MAX_BACKLOG, MAX_ID, MAX_SECONDS, MAX_WORKERS } from "../core/limits.ts";

/** An integer in `[min, max]`, with one message for every way to miss. */
function integer(min: number, max: number, error = `expected an integer from ${min} to ${max}`) {
  return z.int({ error }).min(min, { error }).max(max, { error });
}

/** A duration in seconds: a number from 0 to {@link MAX_SECONDS}, fractions allowed. */
function seconds() {
  const error = `expected a number of seconds from 0 to ${MAX_SECONDS} (365 days)`;
  return z.number({ error }).min(0, { error }).max(MAX_SECONDS, { error });
}

/** A non-empty string. */
function text(what = "a non-empty string") {
  const error = `expected ${what}`;
  return z.string({ error }).min(1, { error });
}

/** A file or directory path: no kernel call takes one with a NUL byte in it. */
function path() {
  return text("a path").refine((value) => !value.includes("\0"), {
    error: "expected a path without NUL bytes",
  });
}

/** A command line: a non-empty array of non-empty strings, run without a shell. */
function argv() {
  const error = 'expected a non-empty array of strings, e.g. ["python3", "app.py"]';
  return z.array(text(), { error }).min(1, { error });
}

/** One of a few strings. */
function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: `expected one of ${values.map((v) => `"${v}"`).join(", ")}` });
}

/** A user or group: a name, or a numeric id ≥ 0. */
function identity(what: "user" | "group") {
  const id = what === "user" ? "uid" : "gid";
  const error = `expected a ${what} name or a numeric ${id} from 0 to ${MAX_ID}`;
  return z.union([text(`a ${what} name`), integer(0, MAX_ID, error)], { error });
}

/** An octal umask written as a string: "0o022", "022" or "0022". */
const UMASK_STRING = /^(?:0|0o?[0-7]{1,4})$/;
const UMASK_ERROR = 'expected an integer from 0 to 0o777, or an octal string such as "0o022"';

/**
 * The numeric value of a valid `umask` setting (an integer, or an octal
 * string such as `"0o022"`, `"022"` or `"0022"`).
 *
 * @param value A value the schema accepted for `umask`.
 * @returns The mask as a number, e.g. `0o022`.
 */
export function parseUmask(value: number | string): number {
  return typeof value === "number" ? value : parseInt(value.replace(/^0o?/, "") || "0", 8);
}

/** The largest `max_worker_memory`, in MiB (1 TiB). */
export const MAX_MEMORY_MIB = 1024 * 1024;
/** The largest `workers_min` / `workers_max` (the control API's scale limit too). */
export const MAX_AUTOSCALE_WORKERS = 10_000;
/** A memory size written with a unit: "512MB", "512M", "512MiB", "1.5G", "800K". */
const MEMORY_STRING = /^\s*(\d+(?:\.\d+)?)\s*([KMGT])(?:I?B)?\s*$/i;
const MEMORY_ERROR = `expected 0 (off), a number of MiB from 1 to ${MAX_MEMORY_MIB}, ` +
  'or a size such as "512MB" or "1.5G" (K/M/G/T, binary: 1M = 1024 KiB)';

/**
 * The MiB of a valid `max_worker_memory` setting: a number is MiB already
 * (uWSGI's `reload-on-rss`); a string has a binary unit as PM2's
 * `max_memory_restart` does ("512M", "1.5G"; "MB" and "MiB" mean the same).
 *
 * @param value A value the schema accepted for `max_worker_memory`.
 * @returns The limit in MiB (0 means off); NaN for a malformed string.
 */
export function parseMemoryMib(value: number | string): number {
  if (typeof value === "number") return value;
  const match = MEMORY_STRING.exec(value);
  if (!match) return NaN;
  const power = { K: -1, M: 0, G: 1, T: 2 }[match[2].toUpperCase() as "K" | "M" | "G" | "T"];
  return Number(match[1]) * 1024 ** power;
}

function memoryMibInRange(mib: number): boolean {
  return mib === 0 || (mib >= 1 && mib <= MAX_MEMORY_MIB);
}

/** A duration in seconds within `[min, max]`. */
function secondsIn(min: number, max: number) {
  const error = `expected a number of seconds from ${min} to ${max}`;
  return z.number({ error }).min(min, { error }).max(max, { error });
}

/**
 * The log levels a config may name; `warn` is read as `warning` and Gunicorn's
 * `critical` as `fatal` (docs/logging.md, "Levels").
 */
export const LOG_LEVELS = [
  "trace",
  "debug",
  "info",
  "warning",
  "warn",
  "error",
  "fatal",
  "critical",
] as const;

export { HOOK_KEYS };

/** A lifecycle hook: an argv run without a shell. */
function hook(when: string) {
  return argv().optional().describe(`Command run ${when}; an argv array, no shell.`);
}

/**
 * The config file schema (docs/contract.md, "Configuration"): flat keys, unknown keys rejected.
 * Static defaults are applied by the schema; `bind`'s default depends on
 * `$PORT` and is applied by `loadConfig`.
 */
export const configSchema = z.strictObject({
  command: argv().optional().describe(
    "Worker argv, run without a shell. Required here or after `--` on the command line.",
  ),
  workers: integer(1, MAX_WORKERS).default(1).describe(`Number of workers, 1 to ${MAX_WORKERS}.`),
  bind: z.union([
    text("a listen address"),
    z.array(text("a listen address"), {
      error: "expected a non-empty array of listen addresses",
    }).min(1, { error: "expected a non-empty array of listen addresses" }),
  ], {
    error: "expected a listen address or an array of them",
  }).optional().describe(
    'Listen address(es): HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N. Default "127.0.0.1:8000",' +
      ' or "0.0.0.0:$PORT" when PORT is set.',
  ),
  backlog: integer(1, MAX_BACKLOG).default(2048).describe(
    "Listen backlog; the kernel caps it at net.core.somaxconn.",
  ),
  timeout: seconds().default(30).describe(
    "Watchdog deadline in seconds after a worker's first WATCHDOG=1; 0 disables.",
  ),
  graceful_timeout: seconds().default(30).describe(
    "Seconds a stopping worker may drain before SIGKILL.",
  ),
  shutdown_delay: seconds().default(0).describe(
    "On TERM: seconds the workers go on serving while /readyz says 503, before the stop begins.",
  ),
  quick_stop_signal: oneOf(["INT", "QUIT", "TERM"]).default("INT").describe(
    "What workers get on a quick stop (INT/QUIT to the master, ctl quick-stop); " +
      "SIGKILL follows after 1 s.",
  ),
  boot_timeout: seconds().default(30).describe(
    "Seconds a worker may take to become ready (ready = notify); 0 disables.",
  ),
  ready: oneOf(["spawn", "notify"]).default("spawn").describe(
    'What makes a worker ready: "spawn" (alive after 1 s) or "notify" (sends READY=1).',
  ),
  pidfile: path().optional().describe("Pidfile path; none by default."),
  env: z.record(
    z.string().regex(/^[^=\0]+$/, { error: 'expected a variable name without "="' }),
    z.string({ error: 'expected a string (quote numbers: FOO = "1")' }),
    { error: "expected a table of strings" },
  ).default(() => ({})).describe("Variables added to the worker environment."),
  chdir: path().optional().describe(
    "Directory the workers and hooks start in, relative to the config file; " +
      "default: the config file's directory.",
  ),
  user: identity("user").optional().describe("User the workers run as."),
  group: identity("group").optional().describe("Group the workers run as."),
  umask: z.union([
    integer(0, 0o777, UMASK_ERROR),
    z.string({ error: UMASK_ERROR }).regex(UMASK_STRING, { error: UMASK_ERROR })
      .refine((s) => parseUmask(s) <= 0o777, { error: UMASK_ERROR }),
  ], { error: UMASK_ERROR }).optional().describe(
    "File mode creation mask for unix sockets and workers.",
  ),
  control_socket: path().optional().describe(
    "Unix socket (mode 0600) for `arbiter ctl`; none by default.",
  ),
  runtime_dir: path().optional().describe(
    "Writable directory for the master's private sockets (workers' notify sockets); " +
      "default: $RUNTIME_DIRECTORY, $XDG_RUNTIME_DIR, the temp dir, then control_socket's directory.",
  ),
  metrics_bind: text("a HOST:PORT address").optional().describe(
    "HOST:PORT serving /livez, /readyz and /metrics; none by default.",
  ),
  worker_output: oneOf(["inherit", "prefix"]).default("inherit").describe(
    'Worker stdout/stderr: "inherit" as is, or "prefix" each line with the worker id.',
  ),
  worker_usr1: oneOf(["send", "blocked", "off"]).default("send").describe(
    'USR1 to workers: "send" forwards it; "blocked" forwards it to workers started with ' +
      'SIGUSR1 blocked (a Deno worker then opens no inspector); "off" never sends it.',
  ),
  log_level: oneOf(LOG_LEVELS).default("info").describe("Lowest level logged."),
  log_format: oneOf(["text", "json"]).default("text").describe("Log line format."),
  log_file: path().optional().describe("Log file, reopened on USR1; stderr by default."),
  max_surge: integer(1, MAX_WORKERS).optional().describe(
    `Workers beyond \`workers\` that may run during a rollout (reload, upgrade, recycling), 1 to ${MAX_WORKERS}; unset starts the whole new generation at once.`,
  ),
  max_worker_lifetime: seconds().default(0).describe(
    "Recycle a worker after this many seconds; 0 disables.",
  ),
  max_worker_lifetime_jitter: seconds().default(0).describe(
    "Up to this many seconds added at random to max_worker_lifetime per worker.",
  ),
  // ---- saturation: memory recycling and autoscaling; keep this block together ----
  max_worker_memory: z.union([
    z.number({ error: MEMORY_ERROR }).refine(memoryMibInRange, { error: MEMORY_ERROR }),
    z.string({ error: MEMORY_ERROR }).regex(MEMORY_STRING, { error: MEMORY_ERROR })
      .refine((v) => memoryMibInRange(parseMemoryMib(v)), { error: MEMORY_ERROR }),
  ], { error: MEMORY_ERROR }).default(0).describe(
    'Recycle a worker whose resident memory stays above this: MiB, or "512MB", "1.5G"; 0 disables.',
  ),
  max_worker_memory_window: secondsIn(0, 3600).default(10).describe(
    "Seconds a worker must stay above max_worker_memory before it is recycled (spikes are ignored).",
  ),
  autoscale: z.boolean({ error: "expected true or false" }).default(false).describe(
    "Add workers while the accept queue stays non-empty, remove them after a quiet period.",
  ),
  workers_min: integer(1, MAX_AUTOSCALE_WORKERS).optional().describe(
    "Fewest workers autoscaling keeps (default 1).",
  ),
  workers_max: integer(1, MAX_AUTOSCALE_WORKERS).optional().describe(
    "Most workers autoscaling starts (default: twice the CPUs, at least `workers`).",
  ),
  autoscale_interval: secondsIn(0.1, 60).default(1).describe(
    "Seconds between two looks at the accept queue when autoscale = true.",
  ),
  autoscale_quiet_period: secondsIn(1, 86400).default(30).describe(
    "Seconds without a sustained accept queue before autoscaling removes one worker.",
  ),
  // ---- end of the saturation block ----
  on_starting: hook("when the master starts"),
  when_ready: hook("when all workers of a generation are ready"),
  on_reload: hook("on a reload"),
  pre_spawn: hook("before each worker starts"),
  post_exit: hook("after a worker exits"),
  worker_timeout: hook("when a worker misses its watchdog deadline"),
  nworkers_changed: hook("when the number of workers changes"),
  on_exit: hook("when the master exits"),
  hook_timeout: seconds().default(30).describe(
    "Seconds a hook may run before it is killed; 0 disables.",
  ),
  reload: z.boolean({ error: "expected true or false" }).default(false).describe(
    "Rolling reload when watched files change (development).",
  ),
  reload_paths: z.array(path(), { error: "expected an array of paths" })
    .default(() => []).describe("Files or directories watched when reload = true."),
  reload_extensions: z.array(text(), { error: "expected an array of strings" })
    .default(() => []).describe('File extensions watched, e.g. [".py"]; all when empty.'),
});

/** What the config file (merged with options) may hold, before defaults. */
export type ConfigInput = z.input<typeof configSchema>;

/** The config file merged with options, validated, with static defaults. */
export type ConfigValues = z.output<typeof configSchema>;

/** Every key the config file may hold. */
export const CONFIG_KEYS: readonly string[] = Object.keys(configSchema.shape);

/**
 * The JSON Schema of the config file, for editors and documentation
 * (TOML language servers such as taplo read JSON Schema).
 *
 * @returns A JSON Schema (draft 2020-12) object describing the input form.
 *
 * @example Usage
 * ```ts
 * import { configJsonSchema } from "./schema.ts";
 * console.log(JSON.stringify(configJsonSchema(), null, 2));
 * ```
 */
export function configJsonSchema(): Record<string, unknown> {
  return {
    title: "arbiter config file",
    ...z.toJSONSchema(configSchema, { io: "input" }),
  };
}
