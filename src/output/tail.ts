/**
 * The last lines of a worker's stderr, for "worker N cannot boot":
 * a worker whose slot failed to boot before gets its stderr piped through the
 * master, which passes every byte on unchanged (to its own stderr in
 * `worker_output = "inherit"`, to the prefixer in `"prefix"`) and keeps only
 * the tail here.
 *
 * Invariants:
 * - The bytes passed on are exactly the bytes read, in order; the tap never
 *   holds a chunk back, so back-pressure still reaches the worker.
 * - Memory is bounded: at most {@link TAIL_LINES} lines of at most
 *   {@link TAIL_LINE_CHARS} characters, plus one partial line of at most
 *   {@link TAIL_PARTIAL_BYTES} bytes, however much the worker writes.
 * - Kept lines are safe to print on a terminal and in a log line: control
 *   characters (escape sequences, carriage returns) are shown escaped.
 *
 * @module
 */

/** How many lines are kept. */
export const TAIL_LINES = 10;
/** The longest kept line, in characters; longer ones are cut, marked with "…". */
export const TAIL_LINE_CHARS = 300;
/** Bytes of a line still without its line break kept while reading. */
const TAIL_PARTIAL_BYTES = 4096;

/** Keeps the last {@link TAIL_LINES} lines of a byte stream fed to it in chunks. */
export class OutputTail {
  readonly #lines: string[] = [];
  #partial = new Uint8Array(0);
  readonly #decoder = new TextDecoder();

  /** Feeds one chunk. */
  push(chunk: Uint8Array): void {
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(0x0a, start);
      const end = newline < 0 ? chunk.length : newline;
      this.#append(chunk.subarray(start, end));
      if (newline < 0) break;
      this.#endLine();
      start = newline + 1;
    }
  }

  /** The kept lines, oldest first, with a last line that had no line break. */
  lines(): string[] {
    const partial = this.#partial.length > 0 ? [this.#text(this.#partial)] : [];
    return [...this.#lines, ...partial].slice(-TAIL_LINES);
  }

  #append(bytes: Uint8Array): void {
    const room = TAIL_PARTIAL_BYTES - this.#partial.length;
    if (room <= 0 || bytes.length === 0) return;
    const next = new Uint8Array(this.#partial.length + Math.min(room, bytes.length));
    next.set(this.#partial);
    next.set(bytes.subarray(0, room), this.#partial.length);
    this.#partial = next;
  }

  #endLine(): void {
    const text = this.#text(this.#partial);
    this.#partial = new Uint8Array(0);
    if (text.trim() === "") return; // blank lines say nothing
    this.#lines.push(text);
    if (this.#lines.length > TAIL_LINES) this.#lines.shift();
  }

  #text(bytes: Uint8Array): string {
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === 0x0d) end--; // CRLF
    const text = escapeControls(this.#decoder.decode(bytes.subarray(0, end)));
    return text.length > TAIL_LINE_CHARS ? `${text.slice(0, TAIL_LINE_CHARS)}…` : text;
  }
}

/** Shows control characters (but tab) as `\xNN`, so a line cannot drive a terminal. */
export function escapeControls(text: string): string {
  return text.replace(
    // deno-lint-ignore no-control-regex
    /[\x00-\x08\x0a-\x1f\x7f\x80-\x9f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

/**
 * Passes `stream` on unchanged, feeding each chunk to `tail` on the way.
 * Back-pressure is kept: a chunk is read only when the consumer wants one.
 */
export function tapInto(
  stream: ReadableStream<Uint8Array>,
  tail: OutputTail,
): ReadableStream<Uint8Array> {
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        tail.push(chunk);
        controller.enqueue(chunk);
      },
    }),
  );
}

/**
 * Copies `stream` to `out` byte for byte until it ends (the master's stderr
 * for `worker_output = "inherit"`). Never rejects: a failed write ends the
 * copy's writing but reading goes on, so the worker never blocks on a full
 * pipe; a failed read ends the copy.
 */
export async function copyBytes(
  stream: ReadableStream<Uint8Array>,
  out: { write(p: Uint8Array): Promise<number> },
): Promise<void> {
  let writable = true;
  const reader = stream.getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      let rest = value;
      while (writable && rest.length > 0) {
        try {
          rest = rest.subarray(await out.write(rest));
        } catch {
          writable = false;
        }
      }
    }
  } catch {
    // The pipe failed: treat it as the end.
  } finally {
    reader.releaseLock();
  }
}
