/**
 * `arbiter ctl` (docs/contract.md, "Command line", "Operations"): the client of
 * the master's control socket.
 *
 *     arbiter ctl [--socket PATH | --config FILE] status [--json]
 *     arbiter ctl ... reload | scale N | stop | quick-stop | upgrade
 *     arbiter ctl ... top [--interval S] [-n N]
 *
 * The socket is `--socket PATH`, or else the `control_socket` of the
 * `--config` file (resolved against the file's directory, as the master
 * does). Exit codes: 0 when the master did it, 1 when the socket is missing
 * or refuses connections or the master answers an error, 2 for a usage
 * problem (no socket named, unreadable config file). Every failure is one
 * line on stderr starting with `arbiter ctl:`.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { parse as parseToml } from "smol-toml";
import type { CliRequest } from "../config/cli.ts";
import { checkSocketPath } from "../config/bind.ts";
import { readConfigText } from "../config/config_file.ts";
import { ConfigError, ExitCode } from "../errors.ts";
import { formatBytes } from "../observe/proc.ts";
import { formatDuration, formatQueues, formatTable } from "./_table.ts";
import { API_PREFIX, type StatusReport } from "./api.ts";
import { runTop } from "./top.ts";

export { formatDuration };

/** A `ctl` request as parsed by `parseCli`. */
export type CtlRequest = Extract<CliRequest, { kind: "ctl" }>;

/** Where `ctl` prints; stdout and stderr by default. */
export interface CtlOutput {
  out(text: string): void;
  err(text: string): void;
  /** Whether `out` is a terminal (`ctl top` redraws in place); stdout's by default. */
  tty?: boolean;
}

/** How long `ctl` waits for the master's answer. */
export const CTL_TIMEOUT_MS = 15_000;

const encoder = new TextEncoder();

const STD_OUTPUT: CtlOutput = {
  out: (text) => writeAllSync(Deno.stdout, encoder.encode(text)),
  err: (text) => writeAllSync(Deno.stderr, encoder.encode(text)),
};

function writeAllSync(w: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += w.writeSync(bytes.subarray(off));
}

/** A failure with its exit code and one-line message. */
class CtlFailure extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/**
 * Run one `arbiter ctl` request and print its outcome.
 *
 * @param req The request from `parseCli`.
 * @param _env The environment (unused; kept so `main.ts` can pass it uniformly).
 * @param cwd The directory relative `--socket` and `--config` paths resolve against.
 * @param output Where to print (default: stdout and stderr).
 * @returns The exit code: 0 done, 1 master unreachable or refused, 2 usage error.
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
    if (req.verb === "top") {
      await runTop(
        {
          status: async () => parseAnswer(await exchange(path, "GET", "status")) as StatusReport,
          out: output.out,
          tty: output.tty ?? Deno.stdout.isTerminal(),
          wait: (ms) => new Promise((resolve) => setTimeout(() => resolve(true), ms)),
          now: () => performance.now(),
        },
        (req.interval ?? 1) * 1000,
        req.iterations,
      );
      return ExitCode.Ok;
    }
    if (req.verb === "status") {
      const text = await exchange(path, "GET", "status");
      if (req.json) {
        output.out(text.trimEnd() + "\n");
      } else {
        output.out(formatStatus(parseAnswer(text) as StatusReport));
      }
      return ExitCode.Ok;
    }
    const [route, body] = req.verb === "scale"
      ? ["scale", { workers: req.count }]
      : req.verb === "stop"
      ? ["stop", { quick: false }]
      : req.verb === "quick-stop"
      ? ["stop", { quick: true }]
      : [req.verb, undefined];
    const answer = parseAnswer(await exchange(path, "POST", route, body)) as { message?: unknown };
    output.out(`${typeof answer.message === "string" ? answer.message : "done"}\n`);
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

/** One HTTP request over the unix socket; returns the body of a 2xx answer. */
async function exchange(
  path: string,
  method: "GET" | "POST",
  route: string,
  body?: unknown,
): Promise<string> {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path } });
  try {
    let res: Response;
    try {
      res = await fetch(`http://arbiter${API_PREFIX}/${route}`, {
        client,
        method,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(CTL_TIMEOUT_MS),
      });
    } catch (error) {
      throw new CtlFailure(ExitCode.Runtime, connectError(path, error));
    }
    const text = await res.text();
    if (res.ok) return text;
    let reason = `HTTP ${res.status}`;
    try {
      const parsed = JSON.parse(text);
      if (typeof parsed?.error === "string") reason = parsed.error;
    } catch {
      if (text.trim() !== "") reason += `: ${text.trim().slice(0, 200)}`;
    }
    throw new CtlFailure(ExitCode.Runtime, `the master refused: ${reason}`);
  } finally {
    client.close();
  }
}

function connectError(path: string, error: unknown): string {
  if (error instanceof DOMException && error.name === "TimeoutError") {
    return `no answer from the master at ${path} within ${CTL_TIMEOUT_MS / 1000} s`;
  }
  let text = "";
  for (let e: unknown = error; e instanceof Error; e = e.cause) text += ` ${e.message}`;
  if (/connection refused/i.test(text)) {
    return `the master is not running: connection refused at ${path} (a stale socket?)`;
  }
  if (/permission denied/i.test(text)) {
    return `cannot connect to ${path}: permission denied (run as the master's user)`;
  }
  if (/connection reset|connection closed|broken pipe|incomplete message/i.test(text)) {
    // What the bounded server does past its connection cap (or to a client too slow).
    return `the master closed the connection at ${path} without an answer: its control ` +
      `socket may be at its connection limit (see the master's log); try again`;
  }
  if (/no such file/i.test(text)) {
    return `no control socket at ${path}: is the master running, with control_socket set?`;
  }
  const detail = text.trim().replace(/^fetch failed\s*/, "") || "unknown error";
  return `cannot talk to the master at ${path}: ${detail}`;
}

function parseAnswer(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new CtlFailure(
      ExitCode.Runtime,
      `the master's answer is not JSON: ${text.slice(0, 200)}`,
    );
  }
}

// ---------------------------------------------------------------------------
// The status table

/**
 * A status report as `arbiter ctl status` prints it for people. The
 * saturation parts appear only when the master reports them:
 * the accept queue per listener, the autoscaling bounds, and RSS and CPU
 * columns like `pm2 list`.
 *
 * @example Output
 * ```text
 * master   pid 4242, arbiter 0.1.0, up 2h05m, running
 * config   /app/app.toml
 * workers  4 desired (autoscale 2..16), 4 ready, generation 2
 * queue    127.0.0.1:8000 0/2048
 *
 * ID  PID   GEN  STATE  AGE    RSS       CPU    RESTARTS  LAST EXIT  STATUS
 * 0   4250  2    ready  3m12s  52.4 MiB  12.5%  0         -          -
 * ```
 */
export function formatStatus(report: StatusReport): string {
  const m = report.master;
  const count = (state: string) => report.workers.filter((w) => w.state === state).length;
  const states = ["ready", "booting", "stopping"]
    .filter((s) => s === "ready" || count(s) > 0)
    .map((s) => `${count(s)} ${s}`);
  const flags = [m.phase, ...(m.reloading ? ["reloading"] : [])].join(", ");
  const bounds = m.autoscale ? ` (autoscale ${m.autoscale.min}..${m.autoscale.max})` : "";
  const lines = [
    `master   pid ${m.pid}, arbiter ${m.version}, up ${formatDuration(m.uptime_s)}, ${flags}`,
    `config   ${m.config_file ?? "(none: command line only)"}`,
    `workers  ${m.workers_desired} desired${bounds}, ${
      states.join(", ")
    }, generation ${m.generation}`,
    ...(m.cannot_boot ?? []).flatMap((f) => [
      `failing  worker ${f.id} cannot boot: ${f.ended_with} before ready on each of the last ${f.tries} tries`,
      ...(f.last_stderr ?? []).map((line) => `         stderr: ${line}`),
    ]),
  ];
  if (m.listeners !== undefined && m.listeners.length > 0) {
    lines.push(`queue    ${formatQueues(m.listeners)}`);
  }
  if (typeof m.max_worker_memory_bytes === "number") {
    lines.push(`memory   workers above ${formatBytes(m.max_worker_memory_bytes)} are recycled`);
  }
  lines.push("");
  const resources = report.workers.some((w) =>
    w.memory_bytes !== undefined || w.cpu_s !== undefined
  );
  const header = [
    "ID",
    "PID",
    "GEN",
    "STATE",
    "AGE",
    ...(resources ? ["MEM", "PROCS", "CPU"] : []),
    "RESTARTS",
    "LAST EXIT",
    "STATUS",
  ];
  const rows = report.workers.map((w) => [
    String(w.id),
    w.pid === null ? "-" : String(w.pid),
    String(w.generation),
    w.stop_reason ? `${w.state} (${w.stop_reason})` : w.state,
    formatDuration(w.age_s),
    ...(resources
      ? [formatMemory(w.memory_bytes), String(w.processes ?? "-"), formatCpu(w.cpu_percent)]
      : []),
    String(w.restarts),
    w.last_exit ?? "-",
    w.status ?? "-",
  ]);
  if (rows.length === 0) return [...lines, "(no workers)"].join("\n") + "\n";
  return [...lines, ...formatTable(header, rows)].map((l) => l.trimEnd()).join("\n") + "\n";
}

function formatMemory(bytes: number | null | undefined): string {
  return typeof bytes === "number" ? formatBytes(bytes) : "-";
}

function formatCpu(percent: number | null | undefined): string {
  return typeof percent === "number" ? `${percent.toFixed(1)}%` : "-";
}
