/**
 * The one line splitter: cuts a byte stream, chunk by chunk, into lines at
 * `\n`, holding at most `maxBytes` of a line that has not ended. Used for a
 * worker's prefixed output, a hook's output and sd_notify stream messages.
 *
 * Invariants:
 * - Memory is bounded: one buffer of `maxBytes`, whatever the stream sends.
 * - A line longer than `maxBytes` goes to `onLong`: cut into pieces at a
 *   UTF-8 character boundary (`"cut"`), or refused, which stops the splitter
 *   (`"stop"`, for protocols where such a line is an error).
 * - A last line without its `\n` is delivered by {@link LineSplitter.end}.
 * - The bytes passed to a callback are a view of the buffer: valid only
 *   during the call.
 *
 * @module
 */

/** What {@link LineSplitter} does with a line over its limit. */
export type LongLine = "cut" | "stop";

/** Options of {@link LineSplitter}. */
export interface LineSplitterOptions {
  /** The longest line (or piece of one) held, in bytes; at least 4. */
  maxBytes: number;
  /** Drop one `\r` before each line end (CRLF input). */
  trimCr?: boolean;
  /** `"cut"` (default): pieces of at most `maxBytes`; `"stop"`: {@link LineSplitterOptions.onStop}. */
  long?: LongLine;
  /**
   * A line, without its line break. `continued` is true for each piece of an
   * over-long line but its last. Returning `false` stops the splitter.
   */
  onLine: (bytes: Uint8Array, continued: boolean) => boolean | void;
  /** With `long: "stop"`: a line went over `maxBytes`; the splitter has stopped. */
  onStop?: () => void;
}

/**
 * Splits a byte stream into lines.
 *
 * @example Usage
 * ```ts
 * import { LineSplitter } from "./lines.ts";
 * const lines: string[] = [];
 * const split = new LineSplitter({
 *   maxBytes: 1024,
 *   trimCr: true,
 *   onLine: (bytes) => void lines.push(new TextDecoder().decode(bytes)),
 * });
 * split.push(new TextEncoder().encode("one\r\ntw"));
 * split.push(new TextEncoder().encode("o\nthree"));
 * split.end(); // lines: ["one", "two", "three"]
 * ```
 */
export class LineSplitter {
  readonly #opts: LineSplitterOptions;
  readonly #buf: Uint8Array;
  #len = 0;
  #stopped = false;

  constructor(opts: LineSplitterOptions) {
    if (!Number.isInteger(opts.maxBytes) || opts.maxBytes < 4) {
      throw new RangeError(`maxBytes: expected an integer of at least 4, got ${opts.maxBytes}`);
    }
    this.#opts = opts;
    this.#buf = new Uint8Array(opts.maxBytes);
  }

  /** Whether the splitter stopped (a callback returned false, or a line was too long). */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Bytes held of a line that has not ended yet. */
  get pending(): number {
    return this.#len;
  }

  /** Takes the next chunk of the stream; delivers every line it completes. */
  push(chunk: Uint8Array): void {
    const buf = this.#buf;
    let start = 0;
    while (start < chunk.length && !this.#stopped) {
      const newline = chunk.indexOf(0x0a, start);
      const end = newline < 0 ? chunk.length : newline;
      let from = start;
      while (from < end && !this.#stopped) {
        if (this.#len === buf.length) this.#overflow();
        if (this.#stopped) return;
        const n = Math.min(end - from, buf.length - this.#len);
        buf.set(chunk.subarray(from, from + n), this.#len);
        this.#len += n;
        from += n;
      }
      if (newline < 0 || this.#stopped) return;
      this.#emitLine();
      start = newline + 1;
    }
  }

  /** The stream ended: delivers a last line that had no `\n`. */
  end(): void {
    if (this.#len > 0 && !this.#stopped) this.#emitLine();
    this.#len = 0;
  }

  #emitLine(): void {
    let end = this.#len;
    if (this.#opts.trimCr && end > 0 && this.#buf[end - 1] === 0x0d) end--;
    this.#len = 0;
    this.#deliver(this.#buf.subarray(0, end), false);
  }

  /** The buffer is full and the line goes on. */
  #overflow(): void {
    if (this.#opts.long === "stop") {
      this.#stopped = true;
      this.#opts.onStop?.();
      return;
    }
    const cut = utf8Boundary(this.#buf, this.#len);
    this.#deliver(this.#buf.subarray(0, cut), true);
    this.#buf.copyWithin(0, cut, this.#len);
    this.#len -= cut;
  }

  #deliver(bytes: Uint8Array, continued: boolean): void {
    if (this.#opts.onLine(bytes, continued) === false) this.#stopped = true;
  }
}

/**
 * Where to cut `buf[0, len)` without splitting a UTF-8 character: before the
 * last character if its bytes are not all there yet, else at `len`.
 */
function utf8Boundary(buf: Uint8Array, len: number): number {
  let i = len - 1;
  while (i > len - 4 && i > 0 && (buf[i] & 0xc0) === 0x80) i--;
  const lead = buf[i];
  const size = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return i > 0 && i + size > len ? i : len;
}
