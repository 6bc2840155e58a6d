/**
 * `arbiter ctl` (docs/contract.md, "Command line"; docs/operations.md,
 * "arbiter ctl"): the client of the master's control socket.
 *
 *     arbiter ctl [--socket PATH | --config FILE] status [--json]
 *     arbiter ctl ... reload [--wait [--timeout S]] | upgrade [--wait [--timeout S]]
 *     arbiter ctl ... scale N | scale +N | scale -N | stop | quick-stop
 *     arbiter ctl ... restart ID | signal SIG [ID]
 *     arbiter ctl ... logs [-f] [-n N] [ID]
 *     arbiter ctl ... top [--interval S] [-n N]
 *
 * The socket is `--socket PATH`, or else the `control_socket` of the
 * `--config` file (resolved against the file's directory, as the master
 * does). Exit codes: 0 when the master did it (with `--wait`: the rollout
 * is done), 1 when the socket is missing or refuses connections, the master
 * answers an error, or a waited-for rollout is refused or abandoned, 2 for
 * a usage problem (no socket named, unreadable config file), 3 when
 * `--wait`'s timeout passed first. Every failure is one line on stderr
 * starting with `arbiter ctl:`.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { parse as parseToml } from "smol-toml";
import type { CliRequest } from "../config/cli.ts";
import { checkSocketPath } from "../config/bind.ts";
import { readConfigText } from "../config/config_file.ts";
import { DEFAULT_LOG_LINES, DEFAULT_WAIT_S } from "../config/_ctl_options.ts";
import { ConfigError, ExitCode } from "../errors.ts";
import { formatDuration } from "./_table.ts";
import type { ActionBody, LogsReport, RecentQuery, StatusReport } from "./api.ts";
import { CtlFailure, exchange, parseAnswer } from "./_client.ts";
import { watchQuitKeys } from "./_keys.ts";
import { runLogs } from "./logs.ts";
import { formatStatus } from "./status_table.ts";
import { runTop } from "./top.ts";
import { waitForRollout } from "./wait.ts";

export { CTL_TIMEOUT_MS } from "./_client.ts";
export { formatDuration, formatStatus };

/** A `ctl` request as parsed by `parseCli`. */
export type CtlRequest = Extract<CliRequest, { kind: "ctl" }>;

/** Where `ctl` prints; stdout and stderr by default. */
export interface CtlOutput {
  out(text: string): void;
  err(text: string): void;
  /** Whether `out` is a terminal (`ctl top` redraws in place); stdout's by default. */
  tty?: boolean;
  /** Whether `ctl top` reads `q` from stdin (a terminal only); by default with stdout and stderr. */
  keys?: boolean;
}

const encoder = new TextEncoder();

const STD_OUTPUT: CtlOutput = {
  out: (text) => writeAllSync(Deno.stdout, encoder.encode(text)),
  err: (text) => writeAllSync(Deno.stderr, encoder.encode(text)),
};

function writeAllSync(w: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += w.writeSync(bytes.subarray(off));
}

/**
 * Run one `arbiter ctl` request and print its outcome.
 *
 * @param req The request from `parseCli`.
 * @param _env The environment (unused; kept so `main.ts` can pass it uniformly).
 * @param cwd The directory relative `--socket` and `--config` paths resolve against.
 * @param output Where to print (default: stdout and stderr).
 * @returns The exit code: 0 done, 1 master unreachable, refused or a rollout
 * abandoned, 2 usage error, 3 `--wait` timed out.
 *
 * @example Usage
 * ```ts
 * import { runCtl } from "./ctl.ts";
 * const code = await runCtl(
 *   { kind: "ctl", socket: "/run/app/ctl.sock", verb: "status", json: false },
 *   Deno.env.toObject(),
 *   Deno.cwd(),
 * );
 * ```
 */
export async function runCtl(
  req: CtlRequest,
  _env: Record<string, string | undefined>,
  cwd: string,
  output: CtlOutput = STD_OUTPUT,
): Promise<number> {
  try {
    const path = socketPath(req, cwd);
    checkSocketFile(path);
    const status = async (timeoutMs?: number) =>
      parseAnswer(await exchange(path, "GET", "status", undefined, timeoutMs)) as StatusReport;
    switch (req.verb) {
      case "top":
        await top(req, status, output);
        return ExitCode.Ok;
      case "status": {
        const text = await exchange(path, "GET", "status");
        output.out(
          req.json ? text.trimEnd() + "\n" : formatStatus(parseAnswer(text) as StatusReport),
        );
        return ExitCode.Ok;
      }
      case "logs":
        return await runLogs({
          logs: async (q) => parseAnswer(await exchange(path, "GET", logsRoute(q))) as LogsReport,
          out: output.out,
          err: output.err,
          now: () => performance.now(),
          sleep,
        }, { id: req.id, lines: req.lines ?? DEFAULT_LOG_LINES, follow: req.follow ?? false });
    }
    const [route, body] = actionOf(req);
    const answer = parseAnswer(await exchange(path, "POST", route, body)) as ActionBody;
    output.out(`${typeof answer.message === "string" ? answer.message : "done"}\n`);
    if (!req.wait) return ExitCode.Ok;
    if (answer.rollout === undefined) {
      throw new CtlFailure(
        ExitCode.Runtime,
        "this master names no rollout in its answer; cannot wait",
      );
    }
    const io = { status, now: () => performance.now(), sleep };
    const outcome = await waitForRollout(
      io,
      answer.rollout,
      (req.timeout ?? DEFAULT_WAIT_S) * 1000,
    );
    if (outcome.code !== ExitCode.Ok) throw new CtlFailure(outcome.code, outcome.message);
    output.out(`${outcome.message}\n`);
    return ExitCode.Ok;
  } catch (error) {
    const failure = error instanceof CtlFailure
      ? error
      : error instanceof ConfigError
      ? new CtlFailure(ExitCode.Usage, error.message)
      : new CtlFailure(ExitCode.Runtime, error instanceof Error ? error.message : String(error));
    output.err(`arbiter ctl: ${failure.message.replaceAll("\n", "; ")}\n`);
    return failure.code;
  }
}

/** The socket: `--socket`, else the `control_socket` of `--config`. */
function socketPath(req: CtlRequest, cwd: string): string {
  if (req.socket !== undefined) return checkSocketPath(req.socket, cwd, "--socket");
  if (req.configPath === undefined) {
    throw new CtlFailure(
      ExitCode.Usage,
      "no control socket given: use --socket PATH, or --config FILE with control_socket set",
    );
  }
  const file = resolve(cwd, req.configPath);
  let values: Record<string, unknown>;
  try {
    values = parseToml(readConfigText(file, req.configPath));
  } catch (error) {
    // The reader's refusals already name the path; a TOML error does not.
    const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw new CtlFailure(
      ExitCode.Usage,
      error instanceof ConfigError
        ? message
        : `${req.configPath}: cannot read the config file: ${message}`,
    );
  }
  const value = values.control_socket;
  if (value === undefined) {
    throw new CtlFailure(
      ExitCode.Usage,
      `${req.configPath} sets no control_socket; set one there or use --socket PATH`,
    );
  }
  if (typeof value !== "string") {
    throw new CtlFailure(
      ExitCode.Usage,
      `${req.configPath}: control_socket: expected a path, got ${JSON.stringify(value)}`,
    );
  }
  return checkSocketPath(value, dirname(file), `${req.configPath}: control_socket`);
}

/** The route and body of a request that acts. */
function actionOf(req: CtlRequest): [string, unknown] {
  switch (req.verb) {
    case "scale":
      return ["scale", req.relative ? { by: req.count } : { workers: req.count }];
    case "stop":
      return ["stop", { quick: false }];
    case "quick-stop":
      return ["stop", { quick: true }];
    case "restart":
      return ["restart", { id: req.id }];
    case "signal":
      return ["signal", { signal: req.signal, ...(req.id === undefined ? {} : { id: req.id }) }];
    default:
      return [req.verb, undefined];
  }
}

function logsRoute(q: RecentQuery): string {
  const params = new URLSearchParams({ limit: String(q.limit) });
  if (q.id !== undefined) params.set("id", String(q.id));
  if (q.after !== undefined) params.set("after", String(q.after));
  return `logs?${params}`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `ctl top`: until its refreshes are done, or `q` (when stdin is a terminal). */
async function top(
  req: CtlRequest,
  status: () => Promise<StatusReport>,
  output: CtlOutput,
): Promise<void> {
  let quit = false;
  let wake: (() => void) | undefined;
  const keys = output.keys ?? output === STD_OUTPUT
    ? watchQuitKeys(() => {
      quit = true;
      wake?.();
    })
    : { restore() {} };
  try {
    await runTop(
      {
        status,
        out: output.out,
        tty: output.tty ?? Deno.stdout.isTerminal(),
        wait: (ms) =>
          quit ? Promise.resolve(false) : new Promise((resolve) => {
            const timer = setTimeout(() => resolve(true), ms);
            wake = () => {
              clearTimeout(timer);
              resolve(false);
            };
          }),
        now: () => performance.now(),
      },
      (req.interval ?? 1) * 1000,
      req.iterations,
    );
  } finally {
    keys.restore();
  }
}

function checkSocketFile(path: string): void {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new CtlFailure(
        ExitCode.Runtime,
        `no control socket at ${path}: is the master running, with control_socket set?`,
      );
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new CtlFailure(ExitCode.Runtime, `cannot reach ${path}: permission denied`);
    }
    throw error;
  }
  if (!info.isSocket) throw new CtlFailure(ExitCode.Runtime, `${path} is not a socket`);
}
