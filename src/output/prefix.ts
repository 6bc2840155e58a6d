/**
 * `worker_output = "prefix"` (docs/contract.md, "Operations"): a worker's stdout or stderr is
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
 *   read only after the lines of the previous one were written, so a slow
 *   output fills the worker's pipe and blocks the worker's own writes. Memory per stream
 *   stays below one chunk plus {@link MAX_LINE_BYTES}.
 * - Never rejects: a failing `write` drops that line (reading goes on, so the
 *   worker is never stuck on a full pipe); a failing stream ends the copy.
 *
 * @module
 */

import { LineSplitter } from "./lines.ts";

/** The longest piece of a line written at once, in bytes. */
export const MAX_LINE_BYTES = 64 * 1024;

/** Ends each piece but the last of a line split for being over {@link MAX_LINE_BYTES} (text format). */
export const CONTINUED_MARKER = " [continued]";

/** Options of {@link pipePrefixed}. */
export interface PrefixOptions {
  /** The worker's slot (`ARBITER_WORKER_ID`). */
  id: number;
  pid: number;
  /** The worker's generation, for the JSON form's `worker` object. */
  generation?: number;
  stream: "stdout" | "stderr";
  /** `text`: `[worker 0] line`; `json`: one JSON object per line. */
  format: "text" | "json";
  /**
   * Writes one line (given without its line break), e.g. from {@link lineWriter}.
   * The lines of one chunk are passed without waiting for the previous
   * call's promise, so `write` must keep its calls' order (as
   * {@link lineWriter} does).
   */
  write: (line: string) => Promise<void>;
  /** Also sees every line as the worker wrote it (without prefix), e.g. for `ctl logs`. */
  tap?: (line: string) => void;
}

/**
 * Copy a worker's output stream line by line to `opts.write`, prefixed.
 * Resolves at the end of the stream. Start it without awaiting it.
 *
 * @example Usage
 * ```ts
 * import { lineWriter, pipePrefixed } from "./prefix.ts";
 * const child = new Deno.Command("echo", { args: ["hi"], stdout: "piped" }).spawn();
 * const out = lineWriter(Deno.stdout);
 * pipePrefixed(child.stdout, { id: 0, pid: child.pid, stream: "stdout", format:
 * "text", write: out });
 * ```
 */
export async function pipePrefixed(
  stream: ReadableStream<Uint8Array>,
  opts: PrefixOptions,
): Promise<void> {
  const format = formatter(opts);
  const decoder = new TextDecoder();
  // The lines of one chunk are handed to `write` together, and the next
  // chunk is read once they are all written: that is the back-pressure.
  let inFlight: Promise<void>[] = [];
  const lines = new LineSplitter({
    maxBytes: MAX_LINE_BYTES,
    trimCr: true,
    onLine: (bytes, continued) => {
      const text = decoder.decode(bytes);
      opts.tap?.(text);
      const line = format(text, continued);
      // A failed write drops its line; reading goes on so the worker never blocks.
      let written: Promise<void>;
      try {
        written = opts.write(line);
      } catch (error) {
        written = Promise.reject(error);
      }
      inFlight.push(written.catch(() => {}));
    },
  });
  const settle = async () => {
    const waiting = inFlight;
    inFlight = [];
    await Promise.all(waiting);
  };
  const reader = stream.getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      lines.push(value);
      await settle();
    }
  } catch {
    // The stream failed (the pipe was closed): treat it as the end.
  } finally {
    reader.releaseLock();
  }
  lines.end();
  await settle();
}

function formatter(opts: PrefixOptions): (line: string, continued: boolean) => string {
  if (opts.format === "text") {
    const prefix = `[worker ${opts.id}] `;
    return (line, continued) => prefix + line + (continued ? CONTINUED_MARKER : "");
  }
  return (line, continued) =>
    JSON.stringify({
      time: new Date().toISOString(),
      event: "worker.output",
      worker: { id: opts.id, pid: opts.pid, generation: opts.generation },
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
 * The most bytes of queued lines {@link lineWriter} joins into one write:
 * PIPE_BUF on Linux, so that a batch written to a pipe lands in one piece,
 * never interleaved with another writer's line (such as the master's own log
 * line on stderr).
 */
export const MAX_BATCH_BYTES = 4096;

/**
 * A writer of whole lines to `target`, shared by every worker writing there.
 * Each call appends a line break; lines are written in call order, and a
 * line is always written completely (looping over short writes) before the
 * next one starts, so lines never interleave. Lines queued while a write is
 * under way are joined into one write (up to {@link MAX_BATCH_BYTES}), which
 * keeps a chatty worker from costing one system call per line. The returned
 * promise settles once the line is written, or rejects if that write failed;
 * a failure affects only the lines of that one write.
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
  const queue: { bytes: Uint8Array; done: (error?: unknown) => void }[] = [];
  let draining = false;

  const drain = async () => {
    while (queue.length > 0) {
      let size = queue[0].bytes.length;
      let n = 1;
      while (n < queue.length && size + queue[n].bytes.length <= MAX_BATCH_BYTES) {
        size += queue[n++].bytes.length;
      }
      const batch = queue.splice(0, n);
      let bytes = batch[0].bytes;
      if (n > 1) {
        bytes = new Uint8Array(size);
        let offset = 0;
        for (const item of batch) {
          bytes.set(item.bytes, offset);
          offset += item.bytes.length;
        }
      }
      let failure: unknown = undefined;
      try {
        let off = 0;
        while (off < bytes.length) off += await target.write(bytes.subarray(off));
      } catch (error) {
        failure = error ?? new Error("write failed");
      }
      for (const item of batch) item.done(failure);
    }
    draining = false;
  };

  return (line) =>
    new Promise<void>((resolve, reject) => {
      queue.push({
        bytes: encoder.encode(line + "\n"),
        done: (error) => error === undefined ? resolve() : reject(error),
      });
      if (!draining) {
        draining = true;
        // Start on the next microtask, so lines handed over together go out together.
        queueMicrotask(drain);
      }
    });
}
