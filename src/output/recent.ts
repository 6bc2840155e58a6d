/**
 * The recent output of each worker slot, for `arbiter ctl logs`
 * (docs/operations.md, "Recent worker output"): when `worker_output =
 * "prefix"`, every line a worker writes is also kept here, in a small ring
 * per slot, which the control socket reads (`GET /v1/logs`).
 *
 * Invariants:
 * - Bounded whatever the workers write: at most {@link RECENT_LINES_PER_SLOT}
 *   lines and {@link RECENT_CHARS_PER_SLOT} characters per slot, each line cut
 *   at {@link RECENT_LINE_CHARS} characters, for at most
 *   {@link RECENT_MAX_SLOTS} slots (the one written to least recently is
 *   dropped first). Older lines go first.
 * - Every line has a sequence number, increasing over all slots, so a
 *   follower asks for what came after the last one it saw.
 * - Kept lines are safe on a terminal: control characters are shown escaped.
 * - In memory only: lost when the master re-executes (an upgrade) or stops.
 *
 * @module
 */

import { escapeControls } from "./tail.ts";

/** Lines kept per worker slot. */
export const RECENT_LINES_PER_SLOT = 200;
/** The longest kept line, in characters; longer ones are cut, marked with "…". */
export const RECENT_LINE_CHARS = 2048;
/** Characters kept per slot: the oldest lines go first beyond this. */
export const RECENT_CHARS_PER_SLOT = 64 * 1024;
/** Slots with a ring at once; the one written to least recently goes first beyond this. */
export const RECENT_MAX_SLOTS = 128;
/** The most lines one read returns. */
export const RECENT_MAX_READ = 1000;

/** One kept line. */
export interface RecentLine {
  /** Increasing over every slot since the master image started. */
  seq: number;
  /** The worker's slot (`ARBITER_WORKER_ID`). */
  id: number;
  pid: number;
  stream: "stdout" | "stderr";
  /** When the master read it (ISO 8601). */
  time: string;
  line: string;
}

/** What a read asks for. */
export interface RecentQuery {
  /** One slot only; every slot when undefined. */
  id?: number;
  /** Only lines with a larger `seq`. */
  after?: number;
  /** The last `limit` such lines (at most {@link RECENT_MAX_READ}). */
  limit: number;
}

interface Ring {
  lines: RecentLine[];
  chars: number;
}

/** The rings of every slot. */
export class RecentOutput {
  #seq = 0;
  /** In order of last write (a Map keeps insertion order; a write moves its slot last). */
  readonly #rings = new Map<number, Ring>();

  /** Keeps one line worker `id` (pid `pid`) wrote on `stream`. */
  push(id: number, pid: number, stream: "stdout" | "stderr", text: string, now = new Date()): void {
    let line = escapeControls(text);
    if (line.length > RECENT_LINE_CHARS) line = `${line.slice(0, RECENT_LINE_CHARS)}…`;
    let ring = this.#rings.get(id);
    if (ring) this.#rings.delete(id);
    else ring = { lines: [], chars: 0 };
    this.#rings.set(id, ring);
    if (this.#rings.size > RECENT_MAX_SLOTS) {
      this.#rings.delete(this.#rings.keys().next().value!);
    }
    ring.lines.push({ seq: ++this.#seq, id, pid, stream, time: now.toISOString(), line });
    ring.chars += line.length;
    while (
      ring.lines.length > RECENT_LINES_PER_SLOT ||
      (ring.chars > RECENT_CHARS_PER_SLOT && ring.lines.length > 1)
    ) {
      ring.chars -= ring.lines.shift()!.line.length;
    }
  }

  /** The last lines matching `query`, oldest first, and the sequence number to follow from. */
  read(query: RecentQuery): { lines: RecentLine[]; next: number } {
    const after = query.after ?? 0;
    const rings = query.id === undefined
      ? [...this.#rings.values()]
      : [this.#rings.get(query.id)].filter((r) => r !== undefined);
    const lines = rings.flatMap((r) => r.lines.filter((l) => l.seq > after))
      .sort((a, b) => a.seq - b.seq);
    const limit = Math.max(1, Math.min(query.limit, RECENT_MAX_READ));
    return { lines: lines.slice(-limit), next: this.#seq };
  }
}
