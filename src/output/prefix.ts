/**
 * `worker_output = "prefix"` (SPEC §8): a worker's stdout or stderr is
 * captured, split into lines and written with the worker's id in front
 * (`[worker 0] line`), or as one JSON object per line when
 * `log_format = "json"`.
 *
 * Invariants:
 * - Each line is written whole, with one call of `write`, so lines from
 *   different workers never interleave when they share one
 *   {@link lineWriter}; per worker and stream, lines keep their order.
 * - Lines are split across chunk boundaries; a last line without a line
 *   break is written at end of file; a line longer than {@link MAX_LINE_BYTES}
 *   is written in pieces of at most that size (cut on a UTF-8 character
 *   boundary), each but the last marked as continued.
 * - Back-pressure reaches the worker, never the master: the next chunk is
 *   read only after the previous lines were written, so a slow output fills
 *   the worker's pipe and blocks the worker's own writes. Memory per stream
 *   stays below one chunk plus {@link MAX_LINE_BYTES}.
 * - Never rejects: a failing `write` drops that line (reading goes on, so the
 *   worker is never stuck on a full pipe); a failing stream ends the copy.
 *
 * @module
 */

/** The longest piece of a line written at once, in bytes. */
export const MAX_LINE_BYTES = 64 * 1024;

/** Ends each piece but the last of a line split for being over {@link MAX_LINE_BYTES} (text format). */
export const CONTINUED_MARKER = " [continued]";

/** Options of {@link pipePrefixed}. */
export interface PrefixOptions {
  /** The worker's slot (`ARBITER_WORKER_ID`). */
  id: number;
  pid: number;
  stream: "stdout" | "stderr";
  /** `text`: `[worker 0] line`; `json`: one JSON object per line. */
  format: "text" | "json";
  /** Writes one line (given without its line break), e.g. from {@link lineWriter}. */
  write: (line: string) => Promise<void>;
}

/**
 * Copy a worker's output stream line by line to `opts.write`, prefixed.
 * Resolves at the end of the stream. Start it without awaiting it.
 *
 * @example Usage
 * ```ts
 * import { lineWriter, pipePrefixed } from "./prefix.ts";
 * const out = lineWriter(Deno.stdout);
 * pipePrefixed(child.stdout, { id: 0, pid: child.pid, stream: "stdout", format: "text", write: out });
 * ```
 */
export async function pipePrefixed(
  stream: ReadableStream<Uint8Array>,
  opts: PrefixOptions,
): Promise<void> {
  const format = formatter(opts);
  const decoder = new TextDecoder();
  const buf = new Uint8Array(MAX_LINE_BYTES);
  let len = 0;
  const emit = async (bytes: Uint8Array, continued: boolean) => {
    let end = bytes.length;
    if (!continued && end > 0 && bytes[end - 1] === 0x0d) end--; // CRLF
    try {
      await opts.write(format(decoder.decode(bytes.subarray(0, end)), continued));
    } catch {
      // The output failed: drop the line, keep draining the worker.
    }
  };
  const reader = stream.getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      let start = 0;
      while (start < value.length) {
        const newline = value.indexOf(0x0a, start);
        const end = newline < 0 ? value.length : newline;
        // Copy what fits; a full buffer is a piece of an over-long line.
        let from = start;
        while (from < end) {
          if (len === buf.length) {
            const cut = utf8Boundary(buf, len);
            await emit(buf.subarray(0, cut), true);
            buf.copyWithin(0, cut, len);
            len -= cut;
          }
          const n = Math.min(end - from, buf.length - len);
          buf.set(value.subarray(from, from + n), len);
          len += n;
          from += n;
        }
        if (newline < 0) break;
        await emit(buf.subarray(0, len), false);
        len = 0;
        start = newline + 1;
      }
    }
  } catch {
    // The stream failed (the pipe was closed): treat it as the end.
  } finally {
    reader.releaseLock();
  }
  if (len > 0) await emit(buf.subarray(0, len), false);
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

function formatter(opts: PrefixOptions): (line: string, continued: boolean) => string {
  if (opts.format === "text") {
    const prefix = `[worker ${opts.id}] `;
    return (line, continued) => prefix + line + (continued ? CONTINUED_MARKER : "");
  }
  return (line, continued) =>
    JSON.stringify({
      time: new Date().toISOString(),
      worker: opts.id,
      pid: opts.pid,
      stream: opts.stream,
      line,
      ...(continued ? { continued: true } : {}),
    });
}

/** Something lines can be written to: `Deno.stdout`, `Deno.stderr`, a `Deno.FsFile`. */
export interface LineTarget {
  write(p: Uint8Array): Promise<number>;
}

/**
 * A writer of whole lines to `target`, shared by every worker writing there.
 * Each call appends a line break and writes the line completely (looping
 * over short writes) before the next call's line starts: calls are served in
 * order, one at a time, so lines never interleave. The returned promise
 * settles when this line is written (or its write failed); a failure does not
 * affect later lines.
 *
 * @example Usage
 * ```ts
 * import { lineWriter } from "./prefix.ts";
 * const out = lineWriter(Deno.stdout);
 * await out("[worker 0] hello");
 * ```
 */
export function lineWriter(target: LineTarget): (line: string) => Promise<void> {
  const encoder = new TextEncoder();
  let tail: Promise<void> = Promise.resolve();
  return (line) => {
    const bytes = encoder.encode(line + "\n");
    const written = tail.then(async () => {
      let off = 0;
      while (off < bytes.length) off += await target.write(bytes.subarray(off));
    });
    tail = written.catch(() => {});
    return written;
  };
}
