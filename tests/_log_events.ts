/**
 * The master's log events as tests see them (docs/logging.md, "Events"): a
 * pattern for a line with a given event in either log format, and the lines
 * that name none. Part of the integration-test harness (re-exported by
 * tests/_harness.ts).
 *
 * @module
 */

const escapeRe = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * A pattern for a master log line with the event `event` (docs/logging.md,
 * "Events"), in either log format: the text form shows `[event]` after the
 * level, a JSON line has `"event":"event"`. `detail`, when given, must match
 * later on the same line (a string literally); its capture groups are the
 * match's groups. Pass it to {@link ArbiterProcess.waitForLog}, or use
 * {@link ArbiterProcess.waitForEvent}.
 */
export function logEvent(event: string, detail?: RegExp | string): RegExp {
  const name = escapeRe(event);
  const rest = detail === undefined
    ? ""
    : `[^\\n]*?${typeof detail === "string" ? escapeRe(detail) : detail.source}`;
  const flags = typeof detail === "object" ? detail.flags.replace(/[gy]/g, "") : "";
  return new RegExp(`(?:\\[${name}\\] |"event":"${name}")${rest}`, flags);
}

/** A master log line in text form, with or without an event. */
const TEXT_LOG_LINE = /^\d{4}-\d\d-\d\dT[\d:.]+Z arbiter\[\d+\] [A-Z]+ (\[[a-z_]+\.[a-z_]+\] )?/;

/**
 * The master log lines in `output` (either format) that name no event: every
 * line the master logs must have one.
 */
export function linesWithoutEvent(output: string): string[] {
  return output.split("\n").filter((line) => {
    const text = TEXT_LOG_LINE.exec(line);
    if (text) return text[1] === undefined;
    if (!line.startsWith("{")) return false;
    try {
      const obj = JSON.parse(line);
      const isLog = typeof obj?.level === "string" || typeof obj?.line === "string";
      return isLog && (typeof obj.event !== "string" || obj.event === "");
    } catch {
      return false;
    }
  });
}
