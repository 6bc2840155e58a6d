/**
 * The master never blocks on its own output: every line it writes (its log
 * lines, prefixed worker lines) goes through a {@link LineSink}, a bounded
 * queue of whole lines written by asynchronous writes. Deno performs those
 * on its blocking-I/O threads, so a reader that stops reading (a stuck log
 * shim, `arbiter … | less` left alone) stalls only that thread, never the
 * event loop: signals, exits, timers and the control socket go on.
 *
 * Invariants:
 * - Lines are written whole and in order; at most one write is in flight.
 *   A write joins queued lines up to {@link MAX_WRITE_BYTES} (PIPE_BUF), so
 *   on a pipe it lands in one piece, never interleaved with a worker's.
 * - At most {@link MAX_QUEUED_BYTES} wait; a line that does not fit is
 *   dropped whole and counted ({@link LineSink.dropped}). Once a write
 *   succeeds again, one line says how many were dropped (`notice`).
 * - A write that fails part-way (a full disk) loses that batch: its lines
 *   are counted as dropped, and the next write starts on a new line so no
 *   half line runs into the next.
 * - Never throws and never rejects; {@link LineSink.flush} waits a bounded
 *   time, for the last lines before an exit or an exec.
 * - Worker output ({@link workerLineWriter}) waits for room first, at most
 *   {@link MAX_ROOM_WAIT_MS}: a reader that is merely slow slows the worker
 *   (its pipe fills) and loses nothing; a reader that stopped costs lines,
 *   never the worker's progress nor the master's.
 *
 * @module
 */

/** What a sink writes to: `Deno.stderr`, `Deno.stdout`, a `Deno.FsFile`. */
export interface SinkTarget {
  write(p: Uint8Array): Promise<number>;
}

/** Most bytes of lines waiting at once per sink; more are dropped whole. */
export const MAX_QUEUED_BYTES = 4 * 1024 * 1024;
/** Most bytes written by one call: PIPE_BUF, so a write to a pipe is atomic. */
export const MAX_WRITE_BYTES = 4096;

/** How long worker output waits for room in a full sink before its lines are dropped. */
export const MAX_ROOM_WAIT_MS = 1000;

const NEWLINE = new Uint8Array([0x0a]);

/** Options of {@link LineSink}. */
export interface LineSinkOptions {
  /** The line that reports `count` dropped lines (with its line break). */
  notice?: (count: number) => string;
  /** Defaults to {@link MAX_QUEUED_BYTES}. */
  maxQueuedBytes?: number;
}

/**
 * A bounded, non-blocking writer of whole lines.
 *
 * @example Usage
 * ```ts
 * import { LineSink } from "./sink.ts";
 * const sink = new LineSink(Deno.stderr);
 * sink.write("hello\n");
 * await sink.flush(1000);
 * ```
 */
export class LineSink {
  readonly #target: SinkTarget;
  readonly #notice?: (count: number) => string;
  readonly #max: number;
  readonly #encoder = new TextEncoder();
  /** Lines waiting, from {@link #head} on (an index, not `shift()`, which copies long arrays). */
  #queue: Uint8Array[] = [];
  #head = 0;
  #queuedBytes = 0;
  #writing = false;
  #dropped = 0;
  #unreported = 0;
  /** The last write stopped part-way through a line. */
  #midLine = false;
  #idle: (() => void)[] = [];
  #roomWaiters: (() => void)[] = [];
  /** A wait for room ran out and the queue has not drained to half since: do not wait again. */
  #overflowing = false;

  constructor(target: SinkTarget, options: LineSinkOptions = {}) {
    this.#target = target;
    this.#notice = options.notice;
    this.#max = options.maxQueuedBytes ?? MAX_QUEUED_BYTES;
  }

  /** Lines dropped so far (the reader stalled, or a write failed). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Bytes waiting to be written. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /**
   * Queues one line, which should end with `\n`. Returns false when it was
   * dropped (the queue is full).
   */
  write(line: string | Uint8Array): boolean {
    const bytes = typeof line === "string" ? this.#encoder.encode(line) : line;
    if (this.#queuedBytes + bytes.length > this.#max) {
      this.#dropped++;
      this.#unreported++;
      return false;
    }
    this.#queue.push(bytes);
    this.#queuedBytes += bytes.length;
    if (!this.#writing) {
      this.#writing = true;
      // On the next microtask, so lines written together go out in one write.
      queueMicrotask(() => this.#drain());
    }
    return true;
  }

  /** Whether a writer need not wait: the queue is at most half full, or its reader stalled. */
  hasRoom(): boolean {
    return this.#queuedBytes <= this.#max / 2 || this.#overflowing;
  }

  /**
   * Resolves once the queue is at most half full, or after `timeoutMs`,
   * whichever is first (then a write may still be dropped).
   */
  room(timeoutMs: number): Promise<void> {
    if (this.hasRoom()) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#overflowing = true; // the reader stalled: drop, do not hold the writer up any more
        done();
      }, timeoutMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#roomWaiters.push(done);
    });
  }

  /** Resolves once everything queued is written, or after `timeoutMs`, whichever is first. */
  flush(timeoutMs: number): Promise<void> {
    if (!this.#writing) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#idle.push(done);
    });
  }

  async #drain(): Promise<void> {
    while (this.#head < this.#queue.length) {
      const batch = this.#takeBatch();
      let written = 0;
      try {
        while (written < batch.bytes.length) {
          written += await this.#target.write(batch.bytes.subarray(written));
        }
        this.#midLine = false;
        this.#reportDropped();
      } catch {
        // A full disk, a closed pipe: this batch is lost, counted, never half-silent.
        this.#dropped += batch.lines;
        this.#unreported += batch.lines;
        this.#midLine = written > 0 && batch.bytes[written - 1] !== 0x0a;
      }
      if (this.#queuedBytes <= this.#max / 2) {
        this.#overflowing = false;
        for (const done of this.#roomWaiters.splice(0)) done();
      }
    }
    this.#writing = false;
    for (const done of this.#idle.splice(0)) done();
  }

  /** The next write: queued lines up to {@link MAX_WRITE_BYTES} (one line at least). */
  #takeBatch(): { bytes: Uint8Array; lines: number } {
    const parts: Uint8Array[] = this.#midLine ? [NEWLINE] : [];
    let size = parts.length;
    let lines = 0;
    while (this.#head < this.#queue.length) {
      const next = this.#queue[this.#head];
      if (lines > 0 && size + next.length > MAX_WRITE_BYTES) break;
      this.#head++;
      this.#queuedBytes -= next.length;
      parts.push(next);
      size += next.length;
      lines++;
    }
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    if (parts.length === 1) return { bytes: parts[0], lines };
    const bytes = new Uint8Array(size);
    let offset = 0;
    for (const p of parts) {
      bytes.set(p, offset);
      offset += p.length;
    }
    return { bytes, lines };
  }

  /** After a good write, the one line saying how many were lost before it. */
  #reportDropped(): void {
    if (this.#unreported === 0 || !this.#notice) return;
    const line = this.#encoder.encode(this.#notice(this.#unreported));
    this.#unreported = 0;
    if (this.#head > 0) this.#queue[--this.#head] = line;
    else this.#queue.unshift(line);
    this.#queuedBytes += line.length;
  }
}

/**
 * A line writer for `pipePrefixed` over `sink`: each line waits for room
 * (at most {@link MAX_ROOM_WAIT_MS}), in call order, then is queued or dropped.
 */
export function workerLineWriter(sink: LineSink): (line: string) => Promise<void> {
  let chain = Promise.resolve();
  let waiting = 0;
  return (line) => {
    // The common case costs no promise: room, and no earlier line waiting for it.
    if (waiting === 0 && sink.hasRoom()) {
      sink.write(line + "\n");
      return RESOLVED;
    }
    waiting++;
    return chain = chain.then(() => sink.room(MAX_ROOM_WAIT_MS)).then(() => {
      waiting--;
      sink.write(line + "\n");
    });
  };
}

const RESOLVED = Promise.resolve();

/** A byte writer over `sink` (for output copied unchanged), waiting for room the same way. */
export function workerByteWriter(sink: LineSink): { write(p: Uint8Array): Promise<number> } {
  return {
    async write(p) {
      await sink.room(MAX_ROOM_WAIT_MS);
      sink.write(p.slice());
      return p.length;
    },
  };
}
