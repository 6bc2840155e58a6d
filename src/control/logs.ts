/**
 * `arbiter ctl logs [-f] [ID] [-n N]` (docs/operations.md, "Recent worker
 * output"): the last lines the workers wrote, from the master's small ring
 * per slot (src/output/recent.ts), as `[worker ID] line`. With `-f` it
 * follows by polling `GET /v1/logs?after=…` every {@link FOLLOW_POLL_MS} —
 * a poll, not a stream, so the control server keeps its plain bounds (every
 * answer within 10 s) and nothing is held open.
 *
 * With `worker_output = "inherit"` the master never sees the output: ctl
 * says so and exits 1 rather than showing an empty page.
 *
 * @module
 */

import type { LogsReport, RecentLine, RecentQuery } from "./api.ts";
import { CtlFailure } from "./_client.ts";
import { ExitCode } from "../errors.ts";
import { RECENT_MAX_READ } from "../output/recent.ts";

/** How often `-f` asks for new lines. */
export const FOLLOW_POLL_MS = 500;
/** How long `-f` goes on while the master does not answer (an upgrade's exec is far shorter). */
export const FOLLOW_GIVE_UP_MS = 15_000;

/** The message when nothing is captured. */
export const NOT_CAPTURED = "nothing to show: worker output is not captured (worker_output = " +
  '"inherit" sends it straight to the master\'s stdout and stderr, e.g. the journal); ' +
  'set worker_output = "prefix" to keep recent lines';

/** What {@link runLogs} needs. */
export interface LogsIo {
  logs(query: RecentQuery): Promise<LogsReport>;
  out(text: string): void;
  err(text: string): void;
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** A line as `ctl logs` prints it. */
export function formatLine(l: RecentLine): string {
  return `[worker ${l.id}] ${l.line}\n`;
}

/** Prints the last `lines` lines (of worker `id`, or all); with `follow`, then what comes. */
export async function runLogs(
  io: LogsIo,
  request: { id?: number; lines: number; follow: boolean },
): Promise<number> {
  const { id } = request;
  const first = await io.logs({ id, limit: request.lines });
  if (!first.captured && first.lines.length === 0) {
    throw new CtlFailure(ExitCode.Runtime, NOT_CAPTURED);
  }
  io.out(first.lines.map(formatLine).join(""));
  if (!first.captured) io.err(`arbiter ctl: ${NOT_CAPTURED.replace("nothing to show: ", "")}\n`);
  if (!request.follow) return ExitCode.Ok;
  let after = first.next;
  let failingSince: number | undefined;
  while (true) {
    await io.sleep(FOLLOW_POLL_MS);
    let report: LogsReport;
    try {
      report = await io.logs({ id, after, limit: RECENT_MAX_READ });
      failingSince = undefined;
    } catch (error) {
      failingSince ??= io.now();
      if (io.now() - failingSince >= FOLLOW_GIVE_UP_MS) {
        const why = error instanceof Error ? error.message : String(error);
        throw new CtlFailure(ExitCode.Runtime, `stopped following: ${why}`);
      }
      continue;
    }
    if (report.next < after) {
      after = 0; // a new master image (an upgrade) counts afresh: take all it has next time
      continue;
    }
    io.out(report.lines.map(formatLine).join(""));
    after = report.next;
  }
}
