/**
 * Logging for the master (docs/logging.md): one line per event, as text or
 * JSON Lines, to stderr or to a file that is reopened on USR1. Every line
 * names its event (`props.event`, one of src/core/log_events.ts), and a line
 * about a worker has it as `props.worker` ({id, pid, generation}).
 *
 * Invariants:
 * - The master never blocks on its output: every line goes through a bounded
 *   {@link LineSink} (src/output/sink.ts) written off the event loop; when the
 *   reader stalls, whole lines are dropped and counted
 *   ({@link Logging.droppedLines}), and one line says how many once it reads
 *   again. {@link Logging.close} waits (a bounded time) for the last lines,
 *   so a line logged right before the exit is not lost to a reader that keeps up.
 * - A failing write never throws into the caller: logging must not bring the
 *   master down (a full disk or a closed stderr drops lines, counted).
 * - All loggers live under the category `["arbiter"]`; LogTape's own meta
 *   logger is routed to the same sink at warning level so that it stays
 *   quiet unless logging itself is broken.
 * - The mutable state (options and open file) belongs to the one
 *   {@link Logging} object returned by {@link setupLogging}; the sink reads it
 *   on every record, so `reopen` and `apply` take effect at once.
 *
 * @example Usage
 * ```ts
 * import { getLog, setupLogging } from "./log.ts";
 * const logging = await setupLogging({ level: "info", format: "text" });
 * getLog().info("listening at {address}", { event: "master.listening", address: "127.0.0.1:8000" });
 * await logging.close();
 * ```
 *
 * @module
 */

import { configure, getLogger, type Logger, type LogRecord, reset } from "@logtape/logtape";
import { ArbiterError, ExitCode } from "../errors.ts";
import { LineSink } from "../output/sink.ts";

/** The log levels, lowest first (LogTape's names). */
export const LOG_LEVELS = ["trace", "debug", "info", "warning", "error", "fatal"] as const;

/** One of {@link LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

/** How the master logs. */
export interface LogOptions {
  /** Lowest level written. */
  level: LogLevel;
  /** `text`: one line for people; `json`: one JSON object per line (JSON Lines). */
  format: "text" | "json";
  /** Absolute path of the log file, opened for append; undefined means stderr. */
  file?: string;
}

/** The handle returned by {@link setupLogging}. */
export interface Logging {
  /**
   * Reopen the log file at the same path (USR1, after logrotate renamed it).
   * The new file is opened before the old one is closed; if it cannot be
   * opened, the old file is kept and an error is logged. No-op for stderr.
   */
  reopen(): void;
  /** Apply new options (on reload). Throws {@link ArbiterError} if a new file cannot be opened. */
  apply(opts: LogOptions): Promise<void>;
  /** Reset LogTape and close the file, after the last lines (waiting at most a second). */
  close(): Promise<void>;
  /** Waits until the queued lines are written, at most `timeoutMs` (before an exec). */
  flush(timeoutMs: number): Promise<void>;
  /** The master's stdout and stderr, for prefixed worker lines (shared with the log on stderr). */
  readonly stdout: LineSink;
  readonly stderr: LineSink;
  /** Lines dropped because the output was not read (or failed), over every sink. */
  droppedLines(): number;
}

/** The category of every logger of the master. */
export const LOG_CATEGORY: readonly string[] = ["arbiter"];

/** The master's logger. Callers log with message templates: `log.info("pid {pid}", { pid })`. */
export function getLog(): Logger {
  return getLogger(["arbiter"]);
}

/**
 * Configure LogTape for the master and return the handle that reopens,
 * reconfigures and closes it.
 *
 * @throws {ArbiterError} (exit code 1) when the log file cannot be opened.
 */
export async function setupLogging(opts: LogOptions): Promise<Logging> {
  const state = new LogState(opts);
  await state.configure();
  return state;
}

/** How long {@link Logging.close} waits for the last lines. */
const CLOSE_FLUSH_MS = 1000;

/** Where lines go: stderr, or a file opened for append; each through its own sink. */
interface Output {
  readonly path?: string;
  readonly file?: Deno.FsFile;
  readonly sink: LineSink;
}

function openOutput(
  path: string | undefined,
  stderr: LineSink,
  notice: (count: number) => string,
): Output {
  if (path === undefined) return { sink: stderr };
  try {
    const file = Deno.openSync(path, { append: true, create: true });
    return { path, file, sink: new LineSink(file, { notice }) };
  } catch (err) {
    throw new ArbiterError(
      ExitCode.Runtime,
      `log_file: cannot open ${path}: ${err instanceof Error ? err.message : err}`,
      { cause: err },
    );
  }
}

/** Closes a log file once its last lines are written (or a bounded wait ran out). */
async function closeOutput(out: Output, waitMs: number): Promise<void> {
  if (!out.file) return;
  await out.sink.flush(waitMs);
  try {
    out.file.close();
  } catch {
    // Already closed: nothing to do.
  }
}

class LogState implements Logging {
  #opts: LogOptions;
  #out: Output;
  readonly #pid = Deno.pid;
  /** Lines dropped by log files already closed (reopened or replaced). */
  #droppedBefore = 0;
  /** Old log files still writing their last lines before they close. */
  readonly #closing = new Set<Promise<void>>();
  readonly #notice = (count: number): string =>
    this.#format({
      category: LOG_CATEGORY,
      level: "warning",
      message: [
        `${count} output line(s) were dropped: the output was not read fast enough or could ` +
        "not be written (arbiter_log_lines_dropped_total counts them)",
      ],
      rawMessage: "output lines dropped",
      timestamp: Date.now(),
      properties: { event: "log.lines_dropped", dropped: count },
    });
  readonly stdout = new LineSink(Deno.stdout, { notice: this.#notice });
  readonly stderr = new LineSink(Deno.stderr, { notice: this.#notice });
  // The sink is a plain function (not Disposable), so LogTape's reset never
  // closes our file behind our back.
  readonly #sink = (record: LogRecord): void => {
    this.#out.sink.write(this.#format(record));
  };

  constructor(opts: LogOptions) {
    this.#opts = { ...opts };
    this.#out = openOutput(opts.file, this.stderr, this.#notice);
  }

  #format(record: LogRecord): string {
    return this.#opts.format === "json"
      ? formatJson(record, this.#pid)
      : formatText(record, this.#pid);
  }

  droppedLines(): number {
    const file = this.#out.file ? this.#out.sink.dropped : 0;
    return this.#droppedBefore + file + this.stdout.dropped + this.stderr.dropped;
  }

  async flush(timeoutMs: number): Promise<void> {
    await Promise.all([
      ...[this.#out.sink, this.stdout, this.stderr].map((s) => s.flush(timeoutMs)),
      ...this.#closing,
    ]);
  }

  /** Makes `next` the output; the old file closes once its last lines are out. */
  #replace(next: Output): void {
    const old = this.#out;
    this.#out = next;
    if (!old.file) return;
    const closed = closeOutput(old, CLOSE_FLUSH_MS).finally(() => {
      this.#droppedBefore += old.sink.dropped;
      this.#closing.delete(closed);
    });
    this.#closing.add(closed);
  }

  async configure(): Promise<void> {
    await configure({
      reset: true,
      sinks: { main: this.#sink },
      loggers: [
        { category: ["arbiter"], sinks: ["main"], lowestLevel: this.#opts.level },
        { category: ["logtape", "meta"], sinks: ["main"], lowestLevel: "warning" },
      ],
    });
  }

  reopen(): void {
    const path = this.#out.path;
    if (path === undefined) return;
    let next: Output;
    try {
      next = openOutput(path, this.stderr, this.#notice);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      // Said where someone looks: the old file was most likely renamed or
      // deleted by the rotation, so stderr gets it too.
      getLog().error("cannot reopen log file {path}: {error}; still writing to the old one", {
        event: "log.reopen_failed",
        path,
        error,
      });
      this.stderr.write(
        `arbiter[${this.#pid}]: cannot reopen log file ${path}: ${error}; ` +
          "still writing to the old one\n",
      );
      return;
    }
    this.#replace(next);
  }

  async apply(opts: LogOptions): Promise<void> {
    if (opts.file !== this.#out.path) {
      this.#replace(openOutput(opts.file, this.stderr, this.#notice));
    }
    const levelChanged = opts.level !== this.#opts.level;
    this.#opts = { ...opts };
    if (levelChanged) await this.configure();
  }

  async close(): Promise<void> {
    await reset();
    await this.flush(CLOSE_FLUSH_MS);
    await closeOutput(this.#out, 0);
    this.#out = { sink: this.stderr };
  }
}

/** Render a value substituted into a message: strings verbatim, others inspected. */
function renderValue(v: unknown): string {
  if (typeof v === "string") return v;
  if (
    v === null || v === undefined || typeof v === "number" || typeof v === "boolean" ||
    typeof v === "bigint"
  ) {
    return String(v);
  }
  if (v instanceof Error) return v.message;
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return JSON.stringify(v);
  return Deno.inspect(v, { colors: false, compact: true, breakLength: Infinity, depth: 4 });
}

/** The rendered message of a record (template parts interleaved with values). */
export function renderMessage(record: LogRecord): string {
  let s = "";
  for (let i = 0; i < record.message.length; i++) {
    const part = record.message[i];
    s += i % 2 === 0 ? String(part) : renderValue(part);
  }
  return s;
}

/**
 * One text line: `2026-11-25T17:40:00.123Z arbiter[1234] INFO [worker.ready] message\n`.
 * The event name is in brackets after the level (left out for a record
 * without one). Line breaks inside the message are escaped (`\n`) so that
 * an event stays on one line; properties not used in the message are not
 * shown.
 */
export function formatText(record: LogRecord, pid: number): string {
  const msg = renderMessage(record).replace(/\r?\n|\r/g, "\\n");
  const event = eventOf(record);
  return `${
    new Date(record.timestamp).toISOString()
  } arbiter[${pid}] ${record.level.toUpperCase()} ${
    event === undefined ? "" : `[${event}] `
  }${msg}\n`;
}

/** The record's event name, when it has one. */
function eventOf(record: LogRecord): string | undefined {
  const event = record.properties.event;
  return typeof event === "string" && event !== "" ? event : undefined;
}

const RESERVED = new Set(["time", "level", "event", "pid", "msg"]);

function jsonKey(k: string): string {
  return RESERVED.has(k) ? `_${k}` : k;
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack };
  }
  return value;
}

/**
 * One JSON Lines object: `{"time","level","event","pid","msg", ...properties}\n`.
 * `pid` is the master's; the worker a line is about is the property
 * `worker` ({id, pid, generation}). Any other property named like one of the
 * fixed keys is kept under that name prefixed with `_` (`"_pid": 99`). A
 * value that cannot be serialised is replaced by its inspected text.
 */
export function formatJson(record: LogRecord, pid: number): string {
  const obj: Record<string, unknown> = {
    time: new Date(record.timestamp).toISOString(),
    level: record.level,
    ...(eventOf(record) === undefined ? {} : { event: eventOf(record) }),
    pid,
    msg: renderMessage(record),
  };
  for (const [k, v] of Object.entries(record.properties)) {
    if (k !== "event") obj[jsonKey(k)] = v;
  }
  try {
    return JSON.stringify(obj, jsonReplacer) + "\n";
  } catch {
    for (const [k, v] of Object.entries(record.properties)) {
      try {
        JSON.stringify(v, jsonReplacer);
      } catch {
        obj[jsonKey(k)] = renderValue(v);
      }
    }
    return JSON.stringify(obj, jsonReplacer) + "\n";
  }
}
