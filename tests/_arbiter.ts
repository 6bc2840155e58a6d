/**
 * The master as a subprocess of an integration test: start it, read its
 * output as it comes, wait for log lines, events and children (never fixed
 * sleeps), and never leave a process behind. Part of the integration-test
 * harness (re-exported by tests/_harness.ts).
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

import { descendantsOf, readStat } from "../src/verify/proc.ts";
import { linesWithoutEvent, logEvent } from "./_log_events.ts";
import { arbiterArgv, childrenOf, isWorkerProgram, MAIN_TS, pgidOf } from "./_proc.ts";
import { DEFAULT_TIMEOUT_MS, errText, waitFor } from "./_wait.ts";

/** How often a running {@link ArbiterProcess} records its descendants. */
export const DESCENDANT_POLL_MS = 100;

/** Inherited variables that would change the master's behaviour; never passed on unless given. */
const SCRUBBED_ENV = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET"];

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
