/**
 * The results of `arbiter verify` and how they are shown: one row per point
 * of the worker contract, as a table for people or as JSON for programs, and
 * the exit code. Pure functions.
 *
 * Exit codes: 0 when every check passed or does not apply, 1 when any
 * failed (or verify itself could not finish), 2 for a usage or config error
 * (raised before any check runs).
 *
 * @module
 */

/** The outcome of one check. `n/a`: it does not apply, or could not run (the evidence says which). */
export type CheckStatus = "pass" | "fail" | "n/a";

/** The points of the worker contract, in the order they run. */
export const CHECKS = {
  "fd3": "serves on the inherited socket (fd 3)",
  "ready": "READY=1 within boot_timeout",
  "usr1": "survives USR1",
  "watchdog": "watchdog pings (WATCHDOG=1)",
  "hup-close": "HUP under load, new connections",
  "hup-keepalive": "HUP under load, keep-alive",
  "term-inflight": "TERM: in-flight request finishes",
  "term-open": "TERM: open connections served",
  "term-exit": "TERM: exits within graceful_timeout",
  "leftovers": "nothing left running",
} as const;

/** The id of a check. */
export type CheckId = keyof typeof CHECKS;

/** One row of the report. */
export interface CheckResult {
  id: CheckId;
  status: CheckStatus;
  /** What was seen: numbers, pids, timings, log lines. */
  evidence: string;
  /** One line saying how to fix a failure (also on an n/a row that deserves a hint). */
  fix?: string;
}

/** The whole report. */
export interface VerifyReport {
  /** The worker command verified. */
  command: string[];
  workers: number;
  /** The private address the workers served on. */
  address: string;
  /** Seconds the run took. */
  duration_s: number;
  /** What differs from the user's config in the private run. */
  notes: string[];
  checks: CheckResult[];
}

/** 0 when nothing failed, 1 otherwise. */
export function exitCodeOf(report: VerifyReport): 0 | 1 {
  return report.checks.some((c) => c.status === "fail") ? 1 : 0;
}

/** The report as JSON (one object, with `ok` and a title per check). */
export function reportJson(report: VerifyReport): string {
  return JSON.stringify(
    {
      ok: exitCodeOf(report) === 0,
      ...report,
      checks: report.checks.map((c) => ({ ...c, title: CHECKS[c.id] })),
    },
    null,
    2,
  ) + "\n";
}

/** Wraps `text` at `width` columns (words are never split). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line || lines.length === 0) lines.push(line);
  return lines;
}

/** The report as a table for people, with each fix under its row. */
export function reportTable(report: VerifyReport): string {
  const titleWidth = Math.max(...Object.values(CHECKS).map((t) => t.length));
  const evidenceWidth = Math.max(40, 100 - titleWidth - 9);
  const out: string[] = [];
  out.push(`${"check".padEnd(titleWidth)}  result  evidence`);
  for (const c of report.checks) {
    const evidence = wrap(c.evidence, evidenceWidth);
    out.push(`${CHECKS[c.id].padEnd(titleWidth)}  ${c.status.padEnd(6)}  ${evidence[0]}`);
    for (const more of evidence.slice(1)) out.push(`${"".padEnd(titleWidth + 10)}${more}`);
    if (c.fix) {
      const fix = wrap(`fix: ${c.fix}`, evidenceWidth);
      for (const line of fix) out.push(`${"".padEnd(titleWidth + 10)}${line}`);
    }
  }
  const failed = report.checks.filter((c) => c.status === "fail").length;
  const passed = report.checks.filter((c) => c.status === "pass").length;
  const na = report.checks.length - failed - passed;
  out.push("");
  out.push(
    `${passed} passed, ${failed} failed, ${na} not applicable (${report.duration_s} s)` +
      (failed > 0 ? ": the worker is not ready for arbiter yet" : ": ready for arbiter"),
  );
  return out.join("\n") + "\n";
}

/** The one progress line printed as a check finishes. */
export function progressLine(c: CheckResult): string {
  const mark = c.status === "pass" ? "ok  " : c.status === "fail" ? "FAIL" : "n/a ";
  return `  ${mark} ${CHECKS[c.id]}: ${c.evidence}`;
}
