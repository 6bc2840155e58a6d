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
import { suggest } from "./_format.ts";
import { MAX_SECONDS, MAX_WORKERS } from "../core/limits.ts";
import {
  VERIFY_HELP,
  VERIFY_OPTIONS,
  type VerifyRequest,
  verifyRequest,
} from "./_verify_options.ts";

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
export type CtlVerb = "status" | "reload" | "scale" | "stop" | "quick-stop" | "upgrade" | "top";

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
  };

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
} as const satisfies Record<string, OptionSpec>;

const CTL_VERBS: readonly CtlVerb[] = [
  "status",
  "reload",
  "scale",
  "stop",
  "quick-stop",
  "upgrade",
  "top",
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
  let count: number | undefined;
  if (verb === "scale") {
    count = args.length === 1 && /^\d+$/.test(args[0]) ? Number(args[0]) : NaN;
    if (!Number.isSafeInteger(count) || count < 1 || count > MAX_WORKERS) {
      const got = args.length === 0 ? "nothing" : JSON.stringify(args.join(" "));
      throw new ConfigError(
        `ctl scale: expected a number of workers from 1 to ${MAX_WORKERS}, got ${got}`,
      );
    }
  } else if (args.length > 0) {
    throw new ConfigError(
      `ctl ${verb}: unexpected argument ${JSON.stringify(args[0])}; see arbiter --help`,
    );
  }
  const { interval, iterations } = parseTopOptions(verb, values);
  return {
    kind: "ctl",
    socket: values.socket,
    configPath: values.config,
    verb,
    json,
    count,
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

/**
 * The `--help` page.
 *
 * @returns Text for people new to arbiter: usage, options with defaults,
 * `ctl` requests, signals and examples.
 */
export function helpText(): string {
  return `arbiter: a pre-fork process supervisor. It holds the listening sockets,
runs N copies of a worker command (any language), hands them the sockets at
fd 3, 4, ... (systemd socket activation), keeps them alive, and reloads,
scales, upgrades and stops them on signals.

Usage:
  arbiter [options] [--] [command [args...]]
  arbiter ctl [--socket PATH] [--config FILE] REQUEST
  arbiter verify [--config FILE] [--json] [--path P] [--reloads N]
                 [-- command [args...]]

The worker command starts at \`--\` or at the first word that is not an option;
its own options are passed through untouched. It overrides \`command\` in the
config file, and each option overrides the file's value.

Options:
  -c, --config FILE         TOML config file (default: none)
  -w, --workers N           number of workers, 1 to ${MAX_WORKERS} (default: 1)
  -b, --bind ADDR           listen address, repeatable: HOST:PORT, [IPV6]:PORT,
                            unix:PATH or fd://N (default: 127.0.0.1:8000, or
                            0.0.0.0:$PORT when PORT is set)
  -t, --timeout S           watchdog deadline in seconds; 0 disables
                            (default: 30)
      --graceful-timeout S  seconds a stopping worker may drain before SIGKILL
                            (default: 30)
      --boot-timeout S      seconds a worker may take to become ready
                            (default: 30)
      --ready spawn|notify  a worker is ready once alive for 1 s (spawn), or
                            once it sends READY=1 (notify) (default: spawn)
  -p, --pidfile FILE        write the master's pid here (default: none)
      --log-level L         trace, debug, info, warning, error or fatal
                            (default: info)
      --log-format F        text or json (default: text)
      --log-file FILE       log file, reopened on USR1 (default: stderr)
      --reload              restart workers when files change; for
                            development (default: off)
      --check-config        validate, print the effective config and exit
                            (0 when valid, 2 when not)
  -h, --help                show this help
  -V, --version             show the version

Control requests (arbiter ctl), sent to the master's \`control_socket\`:
  -s, --socket PATH         the socket (default: \`control_socket\` of --config)
  -c, --config FILE         the config file naming the socket
  status [--json]           master and workers, as a table or as JSON
  reload                    like HUP        scale N      run N workers
  stop                      like TERM       quick-stop   like INT
  upgrade                   like USR2
  top [--interval S] [-n N] live view: accept queue, RSS and CPU per worker,
                            redrawn every S seconds (default 1); plain lines
                            when piped; ends after N refreshes or Ctrl-C

${VERIFY_HELP}
Signals to the master:
  HUP        reload the config, replace the workers
  TERM       graceful stop: workers finish their work, then exit
  INT, QUIT  quick stop
  TTIN/TTOU  one worker more / one fewer (never below 1)
  USR1       reopen log files
  USR2       upgrade the master in place, keeping its pid
  WINCH      stop all workers, keep the master (ignored on a terminal)

Durations are seconds from 0 to ${MAX_SECONDS} (365 days); fractions are allowed.

Exit codes: 0 stopped cleanly, 1 runtime error, 2 usage or config error,
3 a worker failed to boot, 4 a worker failed to load its app.

Examples:
  arbiter --config app.toml
  arbiter -w 4 -b 0.0.0.0:8000 -- node server.js
  arbiter verify --config app.toml
`;
}
