/**
 * The command line (docs/contract.md, "Command line"): turns `argv` into one {@link CliRequest} —
 * show help, show the version, run a master, or send a `ctl` request — and
 * holds the `--help` text. Option values are checked against the same
 * schema fields as the config file, by `loadConfig` (./cli_values.ts), as
 * are reading the config file, defaults and merging.
 *
 * Options end at `--` or at the first word that is neither an option nor an
 * option's value: everything from there on is the worker command, passed
 * through untouched (`arbiter -w 2 python3 app.py --port 1`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ConfigError } from "../errors.ts";
import { parseTopOptions } from "./_top_options.ts";
import { type CtlArguments, parseCtlArguments } from "./_ctl_options.ts";
import { suggest } from "./_format.ts";
import { VERIFY_OPTIONS, type VerifyRequest, verifyRequest } from "./_verify_options.ts";

/** Config values given as command-line options; they override the file. */
export interface CliOverrides {
  workers?: number;
  bind?: string[];
  timeout?: number;
  graceful_timeout?: number;
  boot_timeout?: number;
  pidfile?: string;
  log_level?: string;
  log_format?: string;
  log_file?: string;
  ready?: string;
  reload?: boolean;
}

/** The verbs of `arbiter ctl`. */
export type CtlVerb =
  | "status"
  | "reload"
  | "scale"
  | "stop"
  | "quick-stop"
  | "upgrade"
  | "top"
  | "restart"
  | "signal"
  | "logs";

/** What the command line asks for. */
export type CliRequest =
  | { kind: "help" }
  | { kind: "version" }
  | {
    kind: "run";
    /** The `--config` file as given (not resolved). */
    configPath?: string;
    /** The worker command, when one follows the options or `--`. */
    command?: string[];
    /** `--check-config`: validate, print the effective config, exit. */
    checkConfig: boolean;
    overrides: CliOverrides;
  }
  | VerifyRequest
  | {
    kind: "ctl";
    socket?: string;
    configPath?: string;
    verb: CtlVerb;
    /** `status --json`. */
    json: boolean;
    /** The N of `scale N`. */
    count?: number;
    /** `top --interval S`: seconds between refreshes. */
    interval?: number;
    /** `top -n N`: refreshes before it ends; forever when undefined. */
    iterations?: number;
  } & CtlArguments;

type OptionSpec = { type: "string" | "boolean"; short?: string; multiple?: boolean };

const RUN_OPTIONS = {
  config: { type: "string", short: "c" },
  workers: { type: "string", short: "w" },
  bind: { type: "string", short: "b", multiple: true },
  timeout: { type: "string", short: "t" },
  "graceful-timeout": { type: "string" },
  "boot-timeout": { type: "string" },
  pidfile: { type: "string", short: "p" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  "log-file": { type: "string" },
  ready: { type: "string" },
  reload: { type: "boolean" },
  "check-config": { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const satisfies Record<string, OptionSpec>;

const CTL_OPTIONS = {
  socket: { type: "string", short: "s" },
  config: { type: "string", short: "c" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  interval: { type: "string" },
  iterations: { type: "string", short: "n" },
  wait: { type: "boolean" },
  timeout: { type: "string" },
  follow: { type: "boolean", short: "f" },
} as const satisfies Record<string, OptionSpec>;

const CTL_VERBS: readonly CtlVerb[] = [
  "status",
  "reload",
  "scale",
  "stop",
  "quick-stop",
  "upgrade",
  "top",
  "restart",
  "signal",
  "logs",
];

/**
 * Options that map to a config key. Their values are checked against the
 * key's schema field by `loadConfig` (./cli_values.ts), not here: the running
 * master parses its command line without loading the schema.
 */
export const CHECKED_OPTIONS = [
  ["workers", "workers", "number"],
  ["timeout", "timeout", "number"],
  ["graceful-timeout", "graceful_timeout", "number"],
  ["boot-timeout", "boot_timeout", "number"],
  ["pidfile", "pidfile", "string"],
  ["log-level", "log_level", "string"],
  ["log-format", "log_format", "string"],
  ["log-file", "log_file", "string"],
  ["ready", "ready", "string"],
] as const;

/**
 * Parse the command line (without the program name).
 *
 * @param argv The arguments, e.g. `Deno.args`.
 * @returns What the command line asks for.
 * @throws {ConfigError} On an unknown option, a missing or bad option value,
 * or a bad `ctl` request; the message names the option and the value.
 *
 * @example Usage
 * ```ts
 * import { parseCli } from "./cli.ts";
 * const req = parseCli(["-w", "2", "python3", "app.py", "--port", "1"]);
 * // { kind: "run", command: ["python3", "app.py", "--port", "1"],
 * //   overrides: { workers: 2 }, checkConfig: false }
 * ```
 */
export function parseCli(argv: string[]): CliRequest {
  if (argv[0] === "ctl") return parseCtl(argv.slice(1));
  if (argv[0] === "verify") return parseVerify(argv.slice(1));
  const { tokens, rest } = scan(argv, RUN_OPTIONS, "stop");
  const { values } = runParseArgs(tokens, RUN_OPTIONS);
  if (values.help) return { kind: "help" };
  if (values.version) return { kind: "version" };

  const overrides: CliOverrides = {};
  const target = overrides as Record<string, unknown>;
  for (const [option, key, type] of CHECKED_OPTIONS) {
    const raw = values[option];
    if (raw === undefined) continue;
    target[key] = type === "number" ? toNumber(raw) : raw;
  }
  if (values.bind !== undefined) overrides.bind = values.bind;
  if (values.reload !== undefined) overrides.reload = values.reload;

  return {
    kind: "run",
    configPath: values.config,
    command: rest.length > 0 ? rest : undefined,
    checkConfig: values["check-config"] ?? false,
    overrides,
  };
}

function parseCtl(argv: string[]): CliRequest {
  const { tokens, words, rest } = scan(argv, CTL_OPTIONS, "collect");
  const { values } = runParseArgs(tokens, CTL_OPTIONS);
  if (values.help) return { kind: "help" };
  const [verb, ...args] = [...words, ...rest];
  if (verb === undefined) {
    throw new ConfigError(`ctl: missing request; expected one of ${CTL_VERBS.join(", ")}`);
  }
  if (!isCtlVerb(verb)) {
    const near = suggest(verb, CTL_VERBS);
    throw new ConfigError(
      `ctl: unknown request ${JSON.stringify(verb)}` +
        (near ? ` (did you mean "${near}"?)` : "") + `; expected one of ${CTL_VERBS.join(", ")}`,
    );
  }
  const json = values.json ?? false;
  if (json && verb !== "status") {
    throw new ConfigError(`ctl ${verb}: --json applies only to \`ctl status\``);
  }
  const { count, ...more } = parseCtlArguments(verb, args, values);
  // `-n` is the line count of `logs` (checked above), the refreshes of `top`.
  const topValues = verb === "logs" ? { interval: values.interval } : values;
  const { interval, iterations } = parseTopOptions(verb, topValues);
  return {
    kind: "ctl",
    socket: values.socket,
    configPath: values.config,
    verb,
    json,
    count,
    ...more,
    ...(interval === undefined ? {} : { interval }),
    ...(iterations === undefined ? {} : { iterations }),
  };
}

function parseVerify(argv: string[]): CliRequest {
  const { tokens, rest } = scan(argv, VERIFY_OPTIONS, "stop");
  const { values } = runParseArgs(tokens, VERIFY_OPTIONS);
  return values.help ? { kind: "help" } : verifyRequest(values, rest);
}

function isCtlVerb(word: string): word is CtlVerb {
  return (CTL_VERBS as readonly string[]).includes(word);
}

/**
 * Walks the options of `argv`, checking that each is known and rewriting an
 * option and its separate value into one `--name=value` token (so a value
 * starting with "-", such as `--timeout -1`, reaches the value check instead
 * of reading as an option). `stop`: the first other word starts the worker
 * command, returned as `rest`. `collect`: other words (and negative
 * numbers) are returned as `words`, and `rest` is what follows `--`.
 */
function scan(
  argv: string[],
  options: Record<string, OptionSpec>,
  positionals: "stop" | "collect",
): { tokens: string[]; words: string[]; rest: string[] } {
  const byShort = new Map(
    Object.entries(options).flatMap(([long, spec]) => spec.short ? [[spec.short, long]] : []),
  );
  const tokens: string[] = [];
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") return { tokens, words, rest: argv.slice(i + 1) };
    const isOption = arg.startsWith("-") && arg !== "-" &&
      !(positionals === "collect" && /^-\d/.test(arg));
    if (!isOption) {
      if (positionals === "stop") return { tokens, words, rest: argv.slice(i) };
      words.push(arg);
      continue;
    }
    // The option that takes a separate value, and the flags before it.
    let valueOption: string | undefined;
    let head = arg;
    if (arg.startsWith("--")) {
      const name = arg.slice(2).split("=")[0];
      if (!Object.hasOwn(options, name)) throw unknownOption(`--${name}`, options);
      if (options[name].type === "string" && !arg.includes("=")) [valueOption, head] = [name, ""];
    } else {
      // A group of short flags; a value-taking one ends the group and takes
      // the rest of the word, or else the next argument, as its value.
      for (let j = 1; j < arg.length; j++) {
        const name = byShort.get(arg[j]);
        if (name === undefined) throw unknownOption(`-${arg[j]}`, options);
        if (options[name].type === "string") {
          if (j === arg.length - 1) [valueOption, head] = [name, arg.slice(0, j)];
          break;
        }
      }
    }
    if (head !== "" && head !== "-") tokens.push(head);
    if (valueOption !== undefined) {
      if (i + 1 >= argv.length) {
        throw new ConfigError(`--${valueOption}: missing value; see arbiter --help`);
      }
      tokens.push(`--${valueOption}=${argv[++i]}`);
    }
  }
  return { tokens, words, rest: [] };
}

function unknownOption(name: string, options: Record<string, OptionSpec>): ConfigError {
  const near = name.startsWith("--") ? suggest(name.slice(2), Object.keys(options)) : undefined;
  const hint = near === undefined ? "" : ` (did you mean "--${near}"?)`;
  return new ConfigError(`unknown option ${JSON.stringify(name)}${hint}; see arbiter --help`);
}

function runParseArgs<T extends Record<string, OptionSpec>>(
  args: string[],
  options: T,
) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}; see arbiter --help`, { cause: error });
  }
}

/** A decimal number written on the command line, or the text itself if it is none. */
function toNumber(text: string): number | string {
  return /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/.test(text) ? Number(text) : text;
}

export { helpText } from "./_help.ts";
