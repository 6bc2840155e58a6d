/**
 * Builds the effective {@link Config}: reads the TOML config file, lays the
 * command-line options over it, validates the result against the schema,
 * applies the defaults (docs/contract.md, "Configuration") and resolves paths. Also renders a
 * `Config` back as TOML for `--check-config`.
 *
 * Invariants:
 * - Every mistake becomes one {@link ConfigError} (exit 2) whose message has
 *   one line per problem, each naming where the value came from (the config
 *   file as given, or the option), the key path, the value and what was
 *   expected.
 * - Relative paths from the file resolve against the file's directory;
 *   relative paths from the command line resolve against `cwd`. The
 *   workers' directory (`chdir`) defaults to the file's directory too.
 * - Loading only reads: nothing is bound, written or started, so a bad
 *   config (at start or on HUP) changes nothing.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { parse as parseToml, stringify as stringifyToml, TomlError } from "smol-toml";
import { ConfigError } from "../errors.ts";
import { readConfigText } from "./config_file.ts";
import { checkSocketPath, parseBind, parseHostPort } from "./bind.ts";
import type { CliOverrides } from "./cli.ts";
import { checkOptionValues } from "./cli_values.ts";
import { keyPath, showValue } from "./_format.ts";
import { describeIssues } from "./_issues.ts";
import { CONFIG_KEYS, configSchema, parseUmask } from "./schema.ts";
import { saturationConfig } from "./saturation.ts";
import type { BindSpec, Config } from "./types.ts";

/** What `loadConfig` reads: the parts of a `run` request from `parseCli`. */
export interface LoadRequest {
  /** The config file, as given (relative to `cwd`). */
  configPath?: string;
  /** The worker command from the command line; overrides the file's. */
  command?: string[];
  /** Option values; each overrides the file's value. */
  overrides: CliOverrides;
  /**
   * Sockets inherited through systemd socket activation. When no `bind` is
   * configured they are the default binds (`fd://3`, …) instead of
   * 127.0.0.1:8000, as a socket-activated Gunicorn would do.
   */
  inheritedFds?: number[];
}

/** The bind used when neither the file nor the options name one and PORT is unset. */
export const DEFAULT_BIND = "127.0.0.1:8000";

/**
 * Load, merge and validate the configuration.
 *
 * @param req The config file, the command-line command and option values.
 * @param env The master's environment (only `PORT` is read).
 * @param cwd The directory relative command-line paths resolve against.
 * @returns The effective configuration.
 * @throws {ConfigError} When the file cannot be read or parsed, or any value
 * is wrong; the message has one line per problem.
 *
 * @example Usage
 * ```ts
 * import { loadConfig } from "./load.ts";
 * const config = await loadConfig(
 *   { command: ["node", "server.js"], overrides: { workers: 4 } },
 *   Deno.env.toObject(),
 *   Deno.cwd(),
 * );
 * config.bind[0].text; // "127.0.0.1:8000" (or "0.0.0.0:$PORT")
 * ```
 */
export async function loadConfig(
  req: LoadRequest,
  env: Record<string, string | undefined>,
  cwd: string,
): Promise<Config> {
  checkOptionValues(req.overrides); // before the file, as the command line comes first
  const file = req.configPath === undefined ? undefined : readConfigFile(req.configPath, cwd);

  // Where each top-level key's value came from: the option that set it, or
  // the file. Errors and relative paths follow the source.
  const cliLabels = new Map<string, string>();
  const merged: Record<string, unknown> = { ...file?.values };
  for (const [key, value] of Object.entries(req.overrides)) {
    if (value === undefined) continue;
    merged[key] = value;
    cliLabels.set(key, `--${key.replaceAll("_", "-")}`);
  }
  if (req.command !== undefined) {
    merged.command = req.command;
    cliLabels.set("command", "worker command");
  }
  const name = (path: readonly PropertyKey[]): string => {
    const [key, ...rest] = path;
    const label = cliLabels.get(String(key));
    if (label !== undefined) return label + keyPath(rest);
    const prefix = file === undefined ? "" : `${file.shown}: `;
    return path.length === 0 ? (file?.shown ?? "config") : prefix + keyPath(path);
  };
  // Another key named within a message: the option that set it, else the key alone.
  const keyName = (path: readonly PropertyKey[]): string => {
    const label = cliLabels.get(String(path[0]));
    return label === undefined ? keyPath(path) : label + keyPath(path.slice(1));
  };
  const baseDir = (key: string) => cliLabels.has(key) || file === undefined ? cwd : file.dir;
  const path = (key: string, value: string) => resolve(baseDir(key), value);

  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const problems = describeIssues(parsed.error.issues, merged, CONFIG_KEYS);
    throw new ConfigError(problems.map((p) => `${name(p.path)}: ${p.text}`).join("\n"));
  }
  const v = parsed.data;

  if (v.command === undefined) {
    throw new ConfigError(
      (file ? `${file.shown}: ` : "") +
        "no worker command: give one after `--` or set `command` in the config file",
    );
  }

  // Keys kept as the schema gives them come across with the spread; the
  // ones below change shape (paths resolved, binds parsed, units converted).
  const config: Config = {
    ...v,
    config_file: file?.path,
    command: v.command,
    bind: binds(v.bind, env, cliLabels.get("bind") ?? name, baseDir("bind"), req.inheritedFds),
    pidfile: v.pidfile === undefined ? undefined : path("pidfile", v.pidfile),
    // The workers' directory: the config file's unless `chdir` says otherwise (relative to the
    // file), as the docs promise for every path in the file; `cwd` without a file. Always
    // explicit, so `--check-config` output loads back the same from anywhere.
    chdir: v.chdir === undefined
      ? file?.dir ?? cwd
      : await existingDirectory(path("chdir", v.chdir), name(["chdir"])),
    user: v.user === undefined ? undefined : String(v.user),
    group: v.group === undefined ? undefined : String(v.group),
    umask: v.umask === undefined ? undefined : parseUmask(v.umask),
    control_socket: v.control_socket === undefined
      ? undefined
      : checkSocketPath(v.control_socket, baseDir("control_socket"), name(["control_socket"])),
    runtime_dir: v.runtime_dir === undefined ? undefined : path("runtime_dir", v.runtime_dir),
    metrics_bind: v.metrics_bind === undefined
      ? undefined
      : parseHostPort(v.metrics_bind, name(["metrics_bind"])).text,
    log_level: v.log_level === "warn"
      ? "warning"
      : v.log_level === "critical"
      ? "fatal"
      : v.log_level,
    log_file: v.log_file === undefined
      ? undefined
      : await logFile(path("log_file", v.log_file), name(["log_file"])),
    // Also `workers`, kept within workers_min..workers_max when autoscaling.
    ...saturationConfig(v, name, keyName),
    reload_paths: v.reload_paths.map((p) => path("reload_paths", p)),
  };
  return dropUndefined(config);
}

/** The config file, read and parsed as TOML. */
interface ConfigFile {
  /** Absolute path. */
  path: string;
  /** The path as given, for messages. */
  shown: string;
  /** Absolute directory, for relative paths in the file. */
  dir: string;
  values: Record<string, unknown>;
}

function readConfigFile(given: string, cwd: string): ConfigFile {
  const path = resolve(cwd, given);
  const text = readConfigText(path, given);
  try {
    return { path, shown: given, dir: dirname(path), values: parseToml(text) };
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    const reason = error.message.split("\n")[0].replace(/^Invalid TOML document: /, "");
    throw new ConfigError(`${given}:${error.line}:${error.column}: invalid TOML: ${reason}`, {
      cause: error,
    });
  }
}

/** The listen addresses: given, or the default; parsed, without duplicates. */
function binds(
  value: string | string[] | undefined,
  env: Record<string, string | undefined>,
  name: string | ((path: readonly PropertyKey[]) => string),
  cwd: string,
  inheritedFds: number[] = [],
): BindSpec[] {
  if (value === undefined && inheritedFds.length > 0) {
    return inheritedFds.map((fd) => parseBind(`fd://${fd}`, cwd));
  }
  if (value === undefined) {
    const port = env.PORT;
    // An empty PORT is taken as unset, as shells often export one.
    if (port === undefined || port === "") return [parseBind(DEFAULT_BIND, cwd)];
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
      throw new ConfigError(
        `PORT: expected a port number from 0 to 65535 (the default bind is 0.0.0.0:$PORT), ` +
          `got ${showValue(port)}`,
      );
    }
    return [parseBind(`0.0.0.0:${Number(port)}`, cwd)];
  }
  const list = typeof value === "string" ? [value] : value;
  const seen = new Set<string>();
  return list.map((text, i) => {
    // Each --bind option is one address; a file's array is indexed.
    const label = typeof name === "string"
      ? name
      : name(typeof value === "string" ? ["bind"] : ["bind", i]);
    const spec = parseBind(text, cwd, label);
    if (seen.has(spec.text)) {
      throw new ConfigError(`${label}: ${showValue(spec.text)} is listed more than once`);
    }
    seen.add(spec.text);
    return spec;
  });
}

async function existingDirectory(path: string, label: string): Promise<string> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    throw new ConfigError(`${label}: ${showValue(path)} ${statReason(error)}`, { cause: error });
  }
  if (!info.isDirectory) throw new ConfigError(`${label}: ${showValue(path)} is not a directory`);
  return path;
}

async function logFile(path: string, label: string): Promise<string> {
  const dir = dirname(path);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (error) {
    throw new ConfigError(
      `${label}: the directory ${showValue(dir)} of ${showValue(path)} ${statReason(error)}`,
      { cause: error },
    );
  }
  if (!info.isDirectory) {
    throw new ConfigError(`${label}: ${showValue(dir)} of ${showValue(path)} is not a directory`);
  }
  const target = await Deno.stat(path).catch(() => undefined);
  if (target?.isDirectory) {
    throw new ConfigError(`${label}: ${showValue(path)} is a directory, not a file`);
  }
  return path;
}

/** The OS's reason for a failed file operation, in a few words. */
function osReason(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file or directory";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.IsADirectory) return "is a directory";
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/ \(os error \d+\).*$/, "").toLowerCase();
}

/** Why a path could not be looked at, completing a sentence about the path. */
function statReason(error: unknown): string {
  return error instanceof Deno.errors.NotFound
    ? "does not exist"
    : `cannot be looked at: ${osReason(error)}`;
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/**
 * Render an effective config as TOML, as `--check-config` prints it. Every
 * value is explicit and every path absolute, so loading the output again
 * (from any directory) gives the same config.
 *
 * @param config A config from {@link loadConfig}.
 * @returns A TOML document; `config_file` appears as a comment.
 */
export function formatConfig(config: Config): string {
  const values: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    const value = config[key as keyof Config];
    if (value === undefined) continue;
    if (key === "bind") values.bind = config.bind.map((spec) => spec.text);
    else if (key === "umask") values.umask = `0o${config.umask!.toString(8).padStart(3, "0")}`;
    else values[key] = value;
  }
  const header = config.config_file === undefined
    ? "# effective configuration (no config file)\n"
    : `# effective configuration of ${config.config_file}\n`;
  return header + stringifyToml(values).trimEnd() + "\n";
}
