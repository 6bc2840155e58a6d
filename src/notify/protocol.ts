/**
 * The sd_notify message format (see `sd_notify(3)`): a datagram of
 * newline-separated `KEY=VALUE` assignments, several per datagram, e.g.
 * `READY=1\nSTATUS=serving`. The stream channel (`ARBITER_NOTIFY_STREAM`)
 * carries the same text, one message per line.
 *
 * @module
 */

/** Largest payload accepted, in bytes; bigger ones are garbage. */
export const MAX_NOTIFY_BYTES = 4096;

const KEY = /^[A-Z_][A-Z0-9_]*$/;
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The outcome of {@link checkNotify}: the fields, or why the payload is garbage. */
export type NotifyParse =
  | { ok: true; fields: Record<string, string> }
  | { ok: false; why: string };

/**
 * Splits one sd_notify payload into its fields.
 *
 * Empty lines are ignored (so an empty payload gives `{}`); a key given twice
 * keeps its last value; a value may hold `=` (only the first one splits).
 * Returns undefined — the whole payload is garbage — when it is over
 * {@link MAX_NOTIFY_BYTES}, is not valid UTF-8, or has a line without `=` or
 * with a key that does not match `/^[A-Z_][A-Z0-9_]*$/`.
 */
export function parseNotify(payload: Uint8Array): Record<string, string> | undefined {
  const r = checkNotify(payload);
  return r.ok ? r.fields : undefined;
}

/** {@link parseNotify}, saying why a payload is refused (for log lines). */
export function checkNotify(payload: Uint8Array): NotifyParse {
  if (payload.length > MAX_NOTIFY_BYTES) {
    return { ok: false, why: `message over ${MAX_NOTIFY_BYTES} bytes` };
  }
  let text: string;
  try {
    text = decoder.decode(payload);
  } catch {
    return { ok: false, why: "message is not valid UTF-8" };
  }
  const fields: Record<string, string> = {};
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const eq = line.indexOf("=");
    if (eq < 0) return { ok: false, why: `line without "=": ${quote(line)}` };
    const key = line.slice(0, eq);
    if (!KEY.test(key)) return { ok: false, why: `bad key ${quote(key)}` };
    fields[key] = line.slice(eq + 1);
  }
  return { ok: true, fields };
}

function quote(s: string): string {
  return JSON.stringify(s.length > 40 ? s.slice(0, 40) + "…" : s);
}
