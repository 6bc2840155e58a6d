/**
 * The arguments and options of `arbiter ctl` requests beyond the verb,
 * kept out of cli.ts: `scale N|+N|-N`, `restart ID`, `signal SIG [ID]`,
 * `logs [-f] [ID] [-n N]`, `reload|upgrade --wait [--timeout S]`. Each is
 * checked here, with its range in the message, and refused for requests it
 * does not apply to.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import { MAX_WORKERS } from "../core/limits.ts";
import { OPERATOR_SIGNALS } from "../core/events.ts";
import { RECENT_MAX_READ } from "../output/recent.ts";

/** The default of `--timeout` for `--wait`, in seconds. */
export const DEFAULT_WAIT_S = 300;
/** The longest `--timeout`, in seconds (a day). */
export const MAX_WAIT_S = 86_400;
/** The default of `ctl logs -n`. */
export const DEFAULT_LOG_LINES = 50;

/** What the options beyond the verb ask for. */
export interface CtlArguments {
  /** `scale N` (absolute), or `scale +N`/`-N` (`relative`: signed). */
  count?: number;
  relative?: boolean;
  /** The worker id of `restart ID`, `signal SIG ID`, `logs ID`. */
  id?: number;
  /** `signal SIG`, as `SIGHUP`. */
  signal?: string;
  /** `reload --wait`, `upgrade --wait`. */
  wait?: boolean;
  /** `--timeout S` of `--wait`, in seconds. */
  timeout?: number;
  /** `logs -f`. */
  follow?: boolean;
  /** `logs -n N`. */
  lines?: number;
}

/** The raw option values `ctl` takes beyond those of every request. */
export interface CtlOptionValues {
  wait?: boolean;
  timeout?: string;
  follow?: boolean;
  iterations?: string;
}

/** Checks the words after the verb and the verb's own options. */
export function parseCtlArguments(
  verb: string,
  args: string[],
  values: CtlOptionValues,
): CtlArguments {
  const onlyFor = (option: string, verbs: string) =>
    new ConfigError(`ctl ${verb}: ${option} applies only to ${verbs}`);
  const waits = verb === "reload" || verb === "upgrade";
  if (values.wait && !waits) throw onlyFor("--wait", "`ctl reload` and `ctl upgrade`");
  if (values.timeout !== undefined && !values.wait) {
    throw new ConfigError(`ctl ${verb}: --timeout applies only with --wait`);
  }
  if (values.follow && verb !== "logs") throw onlyFor("-f/--follow", "`ctl logs`");
  const out: CtlArguments = {};
  const extra = (from: number) => {
    if (args.length > from) {
      throw new ConfigError(
        `ctl ${verb}: unexpected argument ${JSON.stringify(args[from])}; see arbiter --help`,
      );
    }
  };
  switch (verb) {
    case "scale":
      Object.assign(out, scaleArgument(args));
      break;
    case "restart":
      if (args.length === 0) throw new ConfigError(`ctl restart: missing worker id (ID)`);
      out.id = idArgument(verb, args[0]);
      extra(1);
      break;
    case "signal":
      if (args.length === 0) {
        throw new ConfigError(`ctl signal: missing signal; expected one of ${allowed()}`);
      }
      out.signal = signalArgument(args[0]);
      if (args.length > 1) out.id = idArgument(verb, args[1]);
      extra(2);
      break;
    case "logs":
      if (args.length > 0) out.id = idArgument(verb, args[0]);
      extra(1);
      out.follow = values.follow ?? false;
      out.lines = DEFAULT_LOG_LINES;
      if (values.iterations !== undefined) {
        const n = /^\d{1,6}$/.test(values.iterations) ? Number(values.iterations) : NaN;
        if (!(n >= 1 && n <= RECENT_MAX_READ)) {
          throw new ConfigError(
            `ctl logs -n: expected a number of lines from 1 to ${RECENT_MAX_READ}, got ${
              JSON.stringify(values.iterations)
            }`,
          );
        }
        out.lines = n;
      }
      break;
    default:
      if (verb !== "top") extra(0);
  }
  if (values.wait) {
    out.wait = true;
    out.timeout = DEFAULT_WAIT_S;
    if (values.timeout !== undefined) {
      const s = /^\d+(\.\d+)?$/.test(values.timeout) ? Number(values.timeout) : NaN;
      if (!(s >= 1 && s <= MAX_WAIT_S)) {
        throw new ConfigError(
          `ctl ${verb} --timeout: expected seconds from 1 to ${MAX_WAIT_S}, got ${
            JSON.stringify(values.timeout)
          }`,
        );
      }
      out.timeout = s;
    }
  }
  return out;
}

function scaleArgument(args: string[]): { count: number; relative?: boolean } {
  const text = args.length === 1 ? args[0] : undefined;
  const match = text === undefined ? null : /^([+-]?)(\d{1,6})$/.exec(text);
  const n = match ? Number(match[2]) : NaN;
  const relative = match !== null && match[1] !== "";
  if (!match || n > MAX_WORKERS || (relative ? n === 0 : n < 1)) {
    const got = args.length === 0 ? "nothing" : JSON.stringify(args.join(" "));
    throw new ConfigError(
      `ctl scale: expected a number of workers from 1 to ${MAX_WORKERS}, or +N/-N to add or ` +
        `remove N, got ${got}`,
    );
  }
  return relative ? { count: match[1] === "-" ? -n : n, relative } : { count: n };
}

function idArgument(verb: string, text: string): number {
  const n = /^\d{1,6}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 0 && n < MAX_WORKERS)) {
    throw new ConfigError(
      `ctl ${verb}: expected a worker id (ARBITER_WORKER_ID) from 0 to ${MAX_WORKERS - 1}, got ${
        JSON.stringify(text)
      }`,
    );
  }
  return n;
}

/** `HUP`, `hup`, `SIGHUP` → `SIGHUP`, if it is one ctl may send. */
function signalArgument(text: string): string {
  const name = text.toUpperCase().replace(/^SIG/, "");
  const signal = `SIG${name}`;
  if (!(OPERATOR_SIGNALS as readonly string[]).includes(signal)) {
    const why = ["KILL", "STOP", "CONT"].includes(name)
      ? ` (see docs/operations.md, "Signalling workers", for why not ${name})`
      : "";
    throw new ConfigError(
      `ctl signal: ${
        JSON.stringify(text)
      } is not a signal ctl may send${why}; expected one of ${allowed()}`,
    );
  }
  return signal;
}

function allowed(): string {
  return OPERATOR_SIGNALS.map((s) => s.slice(3)).join(", ");
}
