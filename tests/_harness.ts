/**
 * Helpers for integration tests that drive the real master (`main.ts`) as a
 * subprocess: start it, read its output as it comes, wait for log lines,
 * children and HTTP answers (events, never fixed sleeps), put load on it, and
 * never leave a process behind.
 *
 * Invariants:
 * - Both pipes of a started process are drained continuously into memory, so
 *   the child never blocks on a full pipe.
 * - While the process runs, its descendants are recorded (pid and start time)
 *   every {@link DESCENDANT_POLL_MS} ms; `[Symbol.asyncDispose]` SIGKILLs the
 *   process and then every recorded descendant that is still the same process
 *   (start time checked, so a reused pid is never hit).
 * - `status` resolves only once the process has exited and its pipes are
 *   drained (or, if a leftover grandchild keeps them open, after a short grace
 *   they are cancelled), so a test that awaits it leaks no resource.
 *
 * @module
 */

import { Http1Connection } from "./_http1.ts";
import { allStats, descendantsOf, parseStat, type ProcStat, readStat } from "../src/verify/proc.ts";

/** Absolute path of the repository root (no trailing slash). */
export const REPO_ROOT: string = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
/** Absolute path of `tests/workers`. */
export const WORKERS_DIR: string = `${REPO_ROOT}/tests/workers`;
/** Absolute path of the master's entry point. */
export const MAIN_TS: string = `${REPO_ROOT}/main.ts`;

/**
 * The variable naming a compiled `arbiter` to test instead of the checkout:
 * `ARBITER_BIN=./arbiter deno task test` runs every test that starts the
 * master through this harness against that executable.
 */
export const ARBITER_BIN_ENV = "ARBITER_BIN";

/**
 * The argv that runs arbiter: `$ARBITER_BIN` (resolved against the current
 * directory) when set, else `deno run -A --quiet main.ts`. Read at each call.
 */
export function arbiterArgv(): string[] {
  const bin = Deno.env.get(ARBITER_BIN_ENV);
  if (bin) return [bin.startsWith("/") ? bin : `${Deno.cwd()}/${bin.replace(/^\.\//, "")}`];
  return [Deno.execPath(), "run", "-A", "--quiet", MAIN_TS];
}

/**
 * A `Deno.Command` running `arbiter ARGS` (see {@link arbiterArgv}), for
 * one-shot uses such as `ctl` and `--check-config`.
 */
export function arbiterCommand(args: string[], options: Deno.CommandOptions = {}): Deno.Command {
  const [program, ...lead] = arbiterArgv();
  return new Deno.Command(program, { ...options, args: [...lead, ...args] });
}

/** How often a running {@link ArbiterProcess} records its descendants. */
export const DESCENDANT_POLL_MS = 100;

const DEFAULT_TIMEOUT_MS = 15_000;

/** Inherited variables that would change the master's behaviour; never passed on unless given. */
const SCRUBBED_ENV = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET"];

// ---------------------------------------------------------------------------
// /proc (the parsing is the one `arbiter verify` uses)

export { descendantsOf, parseStat, type ProcStat, readStat };

/** True while `/proc/<pid>` exists — zombies included (see {@link isAlive}). */
export function processExists(pid: number): boolean {
  return readStat(pid) !== undefined;
}

/** True if the process has exited but has not been reaped yet. */
export function isZombie(pid: number): boolean {
  return readStat(pid)?.state === "Z";
}

/** True if the process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const st = readStat(pid);
  return st !== undefined && st.state !== "Z";
}

/** Parent pid, or undefined when the process is gone. */
export function parentOf(pid: number): number | undefined {
  return readStat(pid)?.ppid;
}

/** Process group id, or undefined when the process is gone. */
export function pgidOf(pid: number): number | undefined {
  return readStat(pid)?.pgid;
}

/** The argv of a process (`/proc/<pid>/cmdline`); [] when gone or a zombie. */
export function cmdlineOf(pid: number): string[] {
  try {
    const raw = Deno.readTextFileSync(`/proc/${pid}/cmdline`);
    const parts = raw.split("\0");
    if (parts.at(-1) === "") parts.pop();
    return parts;
  } catch {
    return [];
  }
}

/** Pids whose parent is `pid` (zombies included). */
export function childrenOf(pid: number): number[] {
  return allStats().filter((s) => s.ppid === pid).map((s) => s.pid).sort((a, b) => a - b);
}

// ---------------------------------------------------------------------------
// Waiting

/** Options of the waiting helpers. */
export interface WaitOptions {
  /** Give up after this long (default 15 s). */
  timeoutMs?: number;
  /** Poll interval (default 20 ms). */
  intervalMs?: number;
  /** Said in the error on timeout. */
  message?: string;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Poll `probe` every ~20 ms until it returns something other than
 * `undefined`/`false`, and return that. Rejects on timeout with `message`
 * (and the last error `probe` threw, if any).
 */
export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  opts: WaitOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  while (true) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (performance.now() >= deadline) {
      const why = lastError === undefined ? "" : ` (last error: ${errText(lastError)})`;
      throw new Error(`timed out after ${timeoutMs} ms: ${opts.message ?? "waitFor"}${why}`);
    }
    await sleep(opts.intervalMs ?? 20);
  }
}

function errText(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
    return `${err.name}: ${err.message}${cause}`;
  }
  return String(err);
}

// ---------------------------------------------------------------------------
// HTTP

/** A fully read HTTP response. */
export interface HttpResult {
  status: number;
  headers: Headers;
  text: string;
  /** `text` parsed as JSON. */
  json<T = unknown>(): T;
}

/** Options of one HTTP request. */
export interface HttpOptions {
  /** Per-request timeout (default 5 s). */
  requestTimeoutMs?: number;
  /** Connect to this unix socket instead of the URL's host. */
  unixSocket?: string;
  method?: string;
}

/**
 * One request on a fresh connection (no pooled connection survives the call),
 * body always read.
 */
export async function httpRequest(url: string, opts: HttpOptions = {}): Promise<HttpResult> {
  const client = opts.unixSocket
    ? Deno.createHttpClient({
      proxy: { transport: "unix", path: opts.unixSocket },
      poolMaxIdlePerHost: 0,
    })
    : Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  const ac = new AbortController();
  const timer = setTimeout(
    () => ac.abort(new Error(`no answer within ${opts.requestTimeoutMs ?? 5000} ms`)),
    opts.requestTimeoutMs ?? 5000,
  );
  try {
    const res = await fetch(url, { client, signal: ac.signal, method: opts.method ?? "GET" });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      text,
      json<T>() {
        return JSON.parse(text) as T;
      },
    };
  } finally {
    clearTimeout(timer);
    client.close();
  }
}

/** Retry `url` until it answers 2xx (body read), or reject on timeout with the last error. */
export function waitForHttp(
  url: string,
  opts: WaitOptions & HttpOptions = {},
): Promise<HttpResult> {
  return waitFor(async () => {
    const r = await httpRequest(url, { requestTimeoutMs: 2000, ...opts });
    if (r.status < 200 || r.status > 299) throw new Error(`HTTP ${r.status}: ${r.text}`);
    return r;
  }, { message: `waiting for ${url} to answer 2xx`, ...opts });
}

/** GET `url` once; throws unless 2xx; returns the parsed JSON body. */
export async function httpGetJson<T = Record<string, unknown>>(
  url: string,
  opts: HttpOptions = {},
): Promise<T> {
  const r = await httpRequest(url, opts);
  if (r.status < 200 || r.status > 299) throw new Error(`GET ${url}: HTTP ${r.status}: ${r.text}`);
  return r.json<T>();
}

/** A free TCP port on 127.0.0.1 at the time of the call (bind port 0, read it, close). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Options of {@link LoadGenerator.start}. */
export interface LoadOptions {
  /** Number of request loops (default 4). */
  concurrency?: number;
  /** Reuse connections (default true); false opens a new connection per request. */
  keepAlive?: boolean;
  /** A request that takes longer counts as failed (default 10 s). */
  requestTimeoutMs?: number;
  /** Error messages kept (default 10). */
  maxErrors?: number;
  /**
   * Speak HTTP/1.1 over raw TCP instead of `fetch`, so that every failure
   * counts (refused, reset, short read, timeout, non-2xx), as with wrk:
   * `"close"` sends `Connection: close` on a new connection per request;
   * `"keep-alive"` keeps one connection per loop, reconnecting only when the
   * server says `Connection: close`. `keepAlive` is ignored when this is set.
   */
  connection?: "close" | "keep-alive";
}

/** Counts of a load run. */
export interface LoadResult {
  ok: number;
  failed: number;
  /** Raw keep-alive mode: answers that asked to close the connection (`Connection: close`). */
  closedByServer: number;
  /** The first few error messages. */
  errors: string[];
}

/** Sends requests back to back from several loops and counts the outcomes. */
export class LoadGenerator {
  #running = false;
  #loops: Promise<void>[] = [];
  #client?: Deno.HttpClient;
  #result: LoadResult = { ok: 0, failed: 0, closedByServer: 0, errors: [] };
  #maxErrors = 10;

  /** Start the loops; resolves at once. */
  start(url: string, opts: LoadOptions = {}): this {
    if (this.#running) throw new Error("LoadGenerator: already running");
    this.#running = true;
    this.#result = { ok: 0, failed: 0, closedByServer: 0, errors: [] };
    this.#maxErrors = opts.maxErrors ?? 10;
    this.#client = Deno.createHttpClient(opts.keepAlive === false ? { poolMaxIdlePerHost: 0 } : {});
    const n = opts.concurrency ?? 4;
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(`concurrency: expected an integer ≥ 1, got ${n}`);
    }
    const timeoutMs = opts.requestTimeoutMs ?? 10_000;
    for (let i = 0; i < n; i++) {
      this.#loops.push(
        opts.connection
          ? this.#rawLoop(new URL(url), opts.connection, timeoutMs)
          : this.#loop(url, timeoutMs),
      );
    }
    return this;
  }

  /** The counts so far (a copy). */
  snapshot(): LoadResult {
    return { ...this.#result, errors: [...this.#result.errors] };
  }

  /** Stop the loops (in-flight requests complete and are counted) and return the counts. */
  async stop(): Promise<LoadResult> {
    this.#running = false;
    await Promise.all(this.#loops);
    this.#loops = [];
    this.#client?.close();
    this.#client = undefined;
    return this.snapshot();
  }

  async #loop(url: string, timeoutMs: number): Promise<void> {
    while (this.#running) {
      const ac = new AbortController();
      const timer = setTimeout(
        () => ac.abort(new Error(`no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      try {
        const res = await fetch(url, { client: this.#client, signal: ac.signal });
        const body = await res.text();
        if (res.ok) this.#result.ok++;
        else this.#fail(`HTTP ${res.status}: ${body.slice(0, 200)}`);
      } catch (err) {
        this.#fail(errText(err));
      } finally {
        clearTimeout(timer);
      }
    }
  }

  async #rawLoop(url: URL, mode: "close" | "keep-alive", timeoutMs: number): Promise<void> {
    const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = Number(url.port || 80);
    let conn: Http1Connection | undefined;
    while (this.#running) {
      // A hung request is cut by closing its connection, which fails the pending read.
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        conn?.close();
      }, timeoutMs);
      try {
        conn ??= await Http1Connection.open(hostname, port);
        const res = await conn.request(url.pathname + url.search, url.host, mode === "close");
        if (res.status >= 200 && res.status <= 299) this.#result.ok++;
        else this.#fail(`HTTP ${res.status}: ${res.body.slice(0, 200)}`);
        if (mode === "keep-alive" && res.closes) this.#result.closedByServer++;
        if (mode === "close" || res.closes) {
          conn.close();
          conn = undefined;
        }
      } catch (err) {
        this.#fail(timedOut ? `no answer within ${timeoutMs} ms` : errText(err));
        conn?.close();
        conn = undefined;
      } finally {
        clearTimeout(timer);
      }
    }
    conn?.close();
  }

  #fail(msg: string): void {
    this.#result.failed++;
    if (this.#result.errors.length < this.#maxErrors) this.#result.errors.push(msg);
  }
}

// ---------------------------------------------------------------------------
// The master's log events

const escapeRe = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * A pattern for a master log line with the event `event` (docs/logging.md,
 * "Events"), in either log format: the text form shows `[event]` after the
 * level, a JSON line has `"event":"event"`. `detail`, when given, must match
 * later on the same line (a string literally); its capture groups are the
 * match's groups. Pass it to {@link ArbiterProcess.waitForLog}, or use
 * {@link ArbiterProcess.waitForEvent}.
 */
export function logEvent(event: string, detail?: RegExp | string): RegExp {
  const name = escapeRe(event);
  const rest = detail === undefined
    ? ""
    : `[^\\n]*?${typeof detail === "string" ? escapeRe(detail) : detail.source}`;
  const flags = typeof detail === "object" ? detail.flags.replace(/[gy]/g, "") : "";
  return new RegExp(`(?:\\[${name}\\] |"event":"${name}")${rest}`, flags);
}

/** A master log line in text form, with or without an event. */
const TEXT_LOG_LINE = /^\d{4}-\d\d-\d\dT[\d:.]+Z arbiter\[\d+\] [A-Z]+ (\[[a-z_]+\.[a-z_]+\] )?/;

/**
 * The master log lines in `output` (either format) that name no event: every
 * line the master logs must have one.
 */
export function linesWithoutEvent(output: string): string[] {
  return output.split("\n").filter((line) => {
    const text = TEXT_LOG_LINE.exec(line);
    if (text) return text[1] === undefined;
    if (!line.startsWith("{")) return false;
    try {
      const obj = JSON.parse(line);
      const isLog = typeof obj?.level === "string" || typeof obj?.line === "string";
      return isLog && (typeof obj.event !== "string" || obj.event === "");
    } catch {
      return false;
    }
  });
}

// ---------------------------------------------------------------------------
// The master as a subprocess

/** Options of {@link startArbiter}. */
export interface StartOptions {
  /** Added to the environment (inherited, minus LISTEN_* and NOTIFY_SOCKET, plus NO_COLOR=1). */
  env?: Record<string, string>;
  cwd?: string;
  /**
   * Run this program instead of arbiter ({@link arbiterArgv}); `args` are
   * appended to it. For a wrapper, put `...arbiterArgv()` at its end.
   */
  cmd?: string[];
}

/** Options of {@link ArbiterProcess.waitForLog}. */
export interface WaitForLogOptions {
  /** Default 15 s. */
  timeoutMs?: number;
  /** Only search text after this offset (from {@link ArbiterProcess.logOffset}). */
  after?: number;
  /** Which output to search (default `stderr`, where the master logs). */
  stream?: "stderr" | "stdout";
}

/** Options of {@link ArbiterProcess.waitForChildren}. */
export interface ChildrenOptions {
  timeoutMs?: number;
  /**
   * Which children count. Default: not a zombie and not running `main.ts`
   * (i.e. a worker that has exec'ed its own program, not a shim of the master).
   */
  predicate?: (pid: number) => boolean;
}

/** Default worker test: a live child whose argv names neither `main.ts` nor `$ARBITER_BIN`. */
export function isWorkerProgram(pid: number): boolean {
  const st = readStat(pid);
  if (!st || st.state === "Z") return false;
  const argv = cmdlineOf(pid);
  const [bin] = Deno.env.get(ARBITER_BIN_ENV) ? arbiterArgv() : [];
  return argv.length > 0 && argv[0] !== bin &&
    !argv.some((a) => a === MAIN_TS || a.endsWith("/main.ts"));
}

type StreamName = "stdout" | "stderr";

interface Waiter {
  check(): void;
  eof(): void;
}

/**
 * Start the master: `deno run -A --quiet main.ts ...args`, or the compiled
 * `$ARBITER_BIN ...args` ({@link arbiterArgv}), or `opts.cmd ...args`;
 * stdin null, stdout and stderr piped and drained continuously.
 * Use with `await using` so it is killed, with every process it started, when
 * the test ends.
 */
export function startArbiter(args: string[], opts: StartOptions = {}): ArbiterProcess {
  const argv = opts.cmd ? [...opts.cmd, ...args] : [...arbiterArgv(), ...args];
  const env: Record<string, string> = { ...Deno.env.toObject(), NO_COLOR: "1" };
  for (const k of SCRUBBED_ENV) delete env[k];
  Object.assign(env, opts.env ?? {});
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: opts.cwd,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return new ArbiterProcess(child, argv);
}

/** A running master (or, in harness tests, any program) with captured output. */
export class ArbiterProcess implements AsyncDisposable {
  /** Pid of the process. */
  readonly pid: number;
  /** The argv it was started with. */
  readonly argv: readonly string[];
  /** Resolves once the process has exited and its output is drained. */
  readonly status: Promise<Deno.CommandStatus>;

  #child: Deno.ChildProcess;
  /** Runs main.ts (not another program, as the harness's own tests do). */
  readonly #isMaster: boolean;
  #text: Record<StreamName, string> = { stdout: "", stderr: "" };
  #eof: Record<StreamName, boolean> = { stdout: false, stderr: false };
  #readers: ReadableStreamDefaultReader<string>[] = [];
  #drained: Promise<void>;
  #waiters = new Set<Waiter>();
  #exited?: Deno.CommandStatus;
  #poller?: ReturnType<typeof setInterval>;
  /** Every descendant ever seen: pid → start time. */
  #seen = new Map<number, number>();

  constructor(child: Deno.ChildProcess, argv: string[]) {
    this.#child = child;
    this.#isMaster = argv.includes(MAIN_TS) || argv.some((a) => a.endsWith("/arbiter"));
    this.pid = child.pid;
    this.argv = argv;
    this.#drained = Promise.all([
      this.#drain("stdout", child.stdout),
      this.#drain("stderr", child.stderr),
    ]).then(() => {});
    this.#poller = setInterval(() => this.#recordDescendants(), DESCENDANT_POLL_MS);
    this.status = child.status.then(async (s) => {
      this.#exited = s;
      clearInterval(this.#poller);
      this.#poller = undefined;
      // A leftover grandchild may hold the pipes open: give it a moment, then cancel.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((r) => timer = setTimeout(r, 1000));
      await Promise.race([this.#drained, grace]);
      clearTimeout(timer);
      await Promise.all(this.#readers.map((r) => r.cancel().catch(() => {})));
      await this.#drained;
      return s;
    });
  }

  async #drain(name: StreamName, stream: ReadableStream<Uint8Array>): Promise<void> {
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    this.#readers.push(reader);
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        this.#text[name] += value;
        for (const w of [...this.#waiters]) w.check();
      }
    } catch {
      // Cancelled: treat as end of output.
    } finally {
      this.#eof[name] = true;
      for (const w of [...this.#waiters]) w.eof();
    }
  }

  #recordDescendants(): void {
    for (const d of descendantsOf(this.pid)) {
      if (!this.#seen.has(d.pid)) this.#seen.set(d.pid, d.starttime);
    }
  }

  /** Everything written to stderr so far. */
  stderr(): string {
    return this.#text.stderr;
  }

  /** Everything written to stdout so far. */
  stdout(): string {
    return this.#text.stdout;
  }

  /** Current length of the captured stderr (or stdout): pass as `after` to `waitForLog`. */
  logOffset(stream: StreamName = "stderr"): number {
    return this.#text[stream].length;
  }

  /** True once the process has exited. */
  get exited(): boolean {
    return this.#exited !== undefined;
  }

  /**
   * Resolve with the first match of `pattern` (a string matches literally) in
   * the output after `opts.after`, as soon as it appears. `match.index` is an
   * offset into the whole output, so `index + match[0].length` can be the next
   * `after`. Rejects on timeout, or when the output ends without a match,
   * with the tail of stderr.
   */
  waitForLog(pattern: RegExp | string, opts: WaitForLogOptions = {}): Promise<RegExpMatchArray> {
    const stream = opts.stream ?? "stderr";
    const after = opts.after ?? 0;
    const re = typeof pattern === "string"
      ? new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
      : new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ""));
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const finish = (fn: () => void) => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        fn();
      };
      const fail = (why: string) =>
        finish(() => reject(new Error(`${why} waiting for ${re} in ${stream}\n${this.#tail()}`)));
      const waiter: Waiter = {
        check: () => {
          const m = this.#text[stream].slice(after).match(re);
          if (m) {
            m.index = (m.index ?? 0) + after;
            finish(() => resolve(m));
          }
        },
        eof: () => {
          if (!this.#eof[stream]) return;
          waiter.check();
          if (this.#waiters.has(waiter)) {
            const code = this.#exited ? ` (exit code ${this.#exited.code})` : "";
            fail(`output ended${code}`);
          }
        },
      };
      const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);
      this.#waiters.add(waiter);
      waiter.check();
      if (this.#waiters.has(waiter)) waiter.eof();
    });
  }

  /**
   * Resolve with the first master log line with event `event` (and
   * `detail`, see {@link logEvent}) after `opts.after`.
   */
  waitForEvent(
    event: string,
    detail?: RegExp | string,
    opts: WaitForLogOptions = {},
  ): Promise<RegExpMatchArray> {
    return this.waitForLog(logEvent(event, detail), opts);
  }

  #tail(): string {
    const err = this.#text.stderr.slice(-2000);
    const out = this.#text.stdout.slice(-500);
    return `--- last 2000 chars of stderr ---\n${err}\n--- last 500 chars of stdout ---\n${out}`;
  }

  /** Send a signal to the process (throws if it has already been reaped). */
  signal(sig: Deno.Signal): void {
    this.#child.kill(sig);
  }

  /** Wait for the exit (and drained output); rejects after `timeoutMs` (default 15 s). */
  async waitExit(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Deno.CommandStatus> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`process ${this.pid} still running after ${timeoutMs} ms\n${this.#tail()}`),
          ),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.status, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Pids whose parent is this process (zombies included); records them for cleanup. */
  children(): number[] {
    this.#recordDescendants();
    return childrenOf(this.pid);
  }

  /**
   * Wait until exactly `count` children pass `opts.predicate` (default
   * {@link isWorkerProgram}) and return their pids, sorted.
   */
  waitForChildren(count: number, opts: ChildrenOptions = {}): Promise<number[]> {
    const pred = opts.predicate ?? isWorkerProgram;
    let last: number[] = [];
    return waitFor(() => {
      if (this.#exited) throw new Error(`process exited with code ${this.#exited.code}`);
      last = this.children().filter(pred);
      return last.length === count ? last : undefined;
    }, { timeoutMs: opts.timeoutMs, message: `${count} children of ${this.pid}` })
      .catch((err) => {
        throw new Error(`${errText(err)}; last seen: [${last}]\n${this.#tail()}`);
      });
  }

  /** Pids of every descendant recorded so far. */
  seenDescendants(): number[] {
    return [...this.#seen.keys()];
  }

  /**
   * SIGKILL the process if it still runs, await its status, then SIGKILL every
   * recorded descendant still alive (and its process group, when it leads one).
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#exited) {
      this.#recordDescendants();
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Exited in between.
      }
    }
    await this.status;
    this.#killLeftovers();
    // Every line the master logs names its event: tools and these tests match names.
    const unnamed = this.#isMaster
      ? [...linesWithoutEvent(this.#text.stderr), ...linesWithoutEvent(this.#text.stdout)]
      : [];
    if (unnamed.length > 0) {
      throw new Error(`master log line(s) without an event:\n${unnamed.slice(0, 5).join("\n")}`);
    }
  }

  #killLeftovers(): void {
    const ownPgid = pgidOf(Deno.pid);
    for (const [pid, start] of this.#seen) {
      const st = readStat(pid);
      if (!st || st.starttime !== start || st.state === "Z") continue;
      try {
        if (st.pgid === pid && pid !== ownPgid) Deno.kill(-pid, "SIGKILL");
        else Deno.kill(pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
  }
}
