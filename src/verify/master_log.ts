/**
 * Reads the private master's JSON log (`--log-format json`) and its
 * prefixed worker output (`worker_output = "prefix"`) into typed events, and
 * keeps from them the book of workers verify reasons about: which pid has
 * which slot and generation, when it started, became ready and exited.
 *
 * Lines are told apart by their `event` name (docs/logging.md, "Events")
 * and read through their properties (`worker`, `how`, `why`, ...), never by
 * their wording: a reworded message changes nothing here.
 *
 * @module
 */

/** What verify learns from one line of the private master's output. */
export type MasterEvent =
  | { type: "started"; id: number; pid: number; generation: number }
  | { type: "ready"; id: number; pid: number; why: string }
  | { type: "exited"; id: number; pid: number; how: string; reason?: string }
  | { type: "kill-late"; id: number; pid: number; reason: string }
  | { type: "boot-timeout"; id: number; pid: number; timeout: number }
  | { type: "watchdog"; id: number; pid: number; timeout: number }
  | { type: "boot-failed"; id: number; what: string; count: number }
  | { type: "generation-ready"; generation: number }
  | { type: "stopping"; reason: string }
  | { type: "halting"; reason: string }
  | { type: "exit"; code: number }
  | { type: "problem"; level: string; message: string }
  | { type: "output"; id: number; pid: number; stream: string; line: string }
  | { type: "text"; line: string };

/** A parsed line, stamped with when verify read it (`performance.now()`). */
export type StampedEvent = MasterEvent & { at: number };

type Props = Record<string, unknown>;

const num = (v: unknown): number => typeof v === "number" ? v : Number(v);
const str = (v: unknown): string => typeof v === "string" ? v : String(v ?? "");

/** Parses one line of the private master's stdout or stderr. */
export function parseLine(line: string): MasterEvent | undefined {
  const text = line.trim();
  if (text === "") return undefined;
  let obj: Props;
  try {
    obj = JSON.parse(text);
  } catch {
    return { type: "text", line: text };
  }
  if (typeof obj !== "object" || obj === null) return { type: "text", line: text };
  const worker = (typeof obj.worker === "object" && obj.worker !== null ? obj.worker : {}) as Props;
  const id = num(worker.id);
  const pid = num(worker.pid);
  switch (obj.event) {
    case "worker.output":
      if (typeof obj.line !== "string") break;
      return { type: "output", id, pid, stream: str(obj.stream), line: obj.line };
    case "worker.spawned":
      return { type: "started", id, pid, generation: num(worker.generation) };
    case "worker.ready":
      return { type: "ready", id, pid, why: str(obj.why) };
    case "worker.exited":
      return {
        type: "exited",
        id,
        pid,
        how: str(obj.how),
        ...(obj.reason !== undefined ? { reason: str(obj.reason) } : {}),
      };
    case "worker.killed":
      return { type: "kill-late", id, pid, reason: str(obj.reason) };
    case "worker.boot_timeout":
      return { type: "boot-timeout", id, pid, timeout: num(obj.timeout) };
    case "worker.watchdog_timeout":
      return { type: "watchdog", id, pid, timeout: num(obj.timeout) };
    case "worker.boot_failed":
      return { type: "boot-failed", id, what: str(obj.what), count: num(obj.count) };
    case "generation.ready":
      return { type: "generation-ready", generation: num(obj.generation) };
    case "master.halting":
      return { type: "halting", reason: str(obj.reason) };
    case "stop.started":
    case "stop.quickened":
      return { type: "stopping", reason: str(obj.reason) };
    case "master.exiting":
      return { type: "exit", code: num(obj.code) };
  }
  const msg = str(obj.msg);
  const level = str(obj.level);
  if (level === "warning" || level === "error" || level === "fatal") {
    return { type: "problem", level, message: msg };
  }
  return undefined;
}

/** One worker as the log tells it. */
export interface WorkerInfo {
  id: number;
  pid: number;
  generation: number;
  startedAt: number;
  readyAt?: number;
  readyWhy?: string;
  exitedAt?: number;
  how?: string;
  reason?: string;
  /** The master had to SIGKILL it after its grace period. */
  killedLate?: boolean;
  /** The last lines it wrote to stdout or stderr. */
  output: string[];
}

const OUTPUT_LINES = 20;

/** The workers of the private master, built from its events in order. */
export class WorkerBook {
  readonly #byPid = new Map<number, WorkerInfo>();
  /** Output of workers whose pid is not known yet (lines can come first). */
  readonly #early = new Map<number, string[]>();

  /** Applies one event. */
  apply(e: StampedEvent): void {
    switch (e.type) {
      case "started":
        this.#byPid.set(e.pid, {
          id: e.id,
          pid: e.pid,
          generation: e.generation,
          startedAt: e.at,
          output: this.#early.get(e.pid) ?? [],
        });
        this.#early.delete(e.pid);
        break;
      case "ready": {
        const w = this.#byPid.get(e.pid);
        if (w) [w.readyAt, w.readyWhy] = [e.at, e.why];
        break;
      }
      case "exited": {
        const w = this.#byPid.get(e.pid);
        if (w) [w.exitedAt, w.how, w.reason] = [e.at, e.how, e.reason];
        break;
      }
      case "kill-late": {
        const w = this.#byPid.get(e.pid);
        if (w) w.killedLate = true;
        break;
      }
      case "output": {
        const lines = this.#byPid.get(e.pid)?.output ?? this.#early.get(e.pid) ?? [];
        if (!this.#byPid.has(e.pid)) this.#early.set(e.pid, lines);
        lines.push(`${e.stream}: ${e.line}`);
        if (lines.length > OUTPUT_LINES) lines.shift();
        break;
      }
    }
  }

  /** Every worker seen, in start order. */
  all(): WorkerInfo[] {
    return [...this.#byPid.values()];
  }

  /** The worker with this pid. */
  get(pid: number): WorkerInfo | undefined {
    return this.#byPid.get(pid);
  }

  /** Workers that have not exited. */
  running(): WorkerInfo[] {
    return this.all().filter((w) => w.exitedAt === undefined);
  }

  /** Running workers of the newest generation that are ready. */
  readyCurrent(): WorkerInfo[] {
    const gen = Math.max(0, ...this.all().map((w) => w.generation));
    return this.running().filter((w) => w.generation === gen && w.readyAt !== undefined);
  }

  /** The last lines of output of any worker, newest last (for evidence). */
  recentOutput(max = 5): string[] {
    const lines = [...this.all().flatMap((w) => w.output), ...[...this.#early.values()].flat()];
    return lines.slice(-max);
  }
}
