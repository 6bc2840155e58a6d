/**
 * The strict HTTP/1.x request-head parser of the bounded server
 * ({@link ./bounded_server.ts}): request line and header fields, nothing
 * else. Pure: bytes in, a parsed head or an {@link HttpError} out.
 *
 * Invariants:
 * - Only what the master's two servers need is accepted: HTTP/1.0 and 1.1,
 *   origin-form (`/path?q`) or absolute-form (`http://host/path`, what a
 *   client sends through a proxy such as `Deno.createHttpClient({proxy})`)
 *   targets, `Content-Length` bodies. Everything else is refused with the
 *   status a client can act on (400, 501, 505), never guessed at: no
 *   obsolete line folding, no `Transfer-Encoding`, no conflicting lengths —
 *   the usual ways two parsers disagree about where a request ends.
 * - Lines may end in CRLF or a bare LF (RFC 9112 §2.2 lets a server accept
 *   both); control characters other than HTAB in a field value are refused.
 *
 * @module
 */

/** A request the server refuses, with the status to answer. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "HttpError";
  }
}

/** A parsed request line and header fields. */
export interface RequestHead {
  method: string;
  /** The origin-form target: path and query, always starting with `/`. */
  target: string;
  version: "HTTP/1.0" | "HTTP/1.1";
  /** Field names as sent (Headers lower-cases them), values trimmed. */
  headers: [string, string][];
  /** The declared body length; 0 without `Content-Length`. */
  contentLength: number;
}

/** The most header fields a request may carry. */
export const MAX_HEADER_FIELDS = 100;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([^ ]+) ([^ ]+) (HTTP\/\d\.\d)$/;
const ABSOLUTE_FORM = /^https?:\/\/[^/?#]*(.*)$/i;
// Any control character but HTAB, and DEL: matching them is the point.
// deno-lint-ignore no-control-regex
const BAD_VALUE_CHAR = /[\x00-\x08\x0a-\x1f\x7f]/;
const LF = 0x0a;
const CR = 0x0d;

/**
 * Where the head ends in `buf[0, end)`: the index just past the blank line
 * (`\r\n\r\n` or `\n\n`), or -1 if it has not arrived yet. `from` is where
 * the newest bytes start, so a caller reading in pieces scans each byte about
 * once.
 */
export function findHeadEnd(buf: Uint8Array, from: number, end: number): number {
  for (let i = Math.max(0, from - 3); i < end; i++) {
    if (buf[i] !== LF) continue;
    if (i + 1 < end && buf[i + 1] === LF) return i + 2;
    if (i + 2 < end && buf[i + 1] === CR && buf[i + 2] === LF) return i + 3;
  }
  return -1;
}

/**
 * Parse a request head (the bytes up to and including the blank line).
 *
 * @throws {HttpError} 400 for a malformed head, 501 for a transfer coding,
 * 505 for an HTTP version other than 1.0 and 1.1.
 *
 * @example Usage
 * ```ts
 * import { parseRequestHead } from "./request_head.ts";
 * const head = parseRequestHead(new TextEncoder().encode("GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"));
 * head.target; // "/livez"
 * ```
 */
export function parseRequestHead(bytes: Uint8Array): RequestHead {
  // latin1 maps each byte to one code unit, as Headers' ByteString expects.
  const lines = new TextDecoder("latin1").decode(bytes).split("\n").map((line) =>
    line.endsWith("\r") ? line.slice(0, -1) : line
  );
  while (lines.at(-1) === "") lines.pop();
  // RFC 9112 §2.2: ignore at least one empty line before the request line.
  while (lines[0] === "") lines.shift();
  const requestLine = lines.shift() ?? "";
  const match = REQUEST_LINE.exec(requestLine);
  if (!match) throw bad(`malformed request line ${quote(requestLine)}`);
  const [, method, rawTarget, version] = match;
  if (!TOKEN.test(method)) throw bad(`malformed method ${quote(method)}`);
  if (version !== "HTTP/1.0" && version !== "HTTP/1.1") {
    throw new HttpError(505, `HTTP version ${version} is not supported: use HTTP/1.1`);
  }
  const target = originForm(rawTarget);
  if (lines.length > MAX_HEADER_FIELDS) {
    throw bad(`too many header fields (${lines.length}; at most ${MAX_HEADER_FIELDS})`);
  }
  const headers: [string, string][] = [];
  let contentLength: number | undefined;
  for (const line of lines) {
    if (line.startsWith(" ") || line.startsWith("\t")) {
      throw bad("obsolete line folding in a header field is not accepted");
    }
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    if (!TOKEN.test(name)) throw bad(`malformed header field ${quote(line)}`);
    const value = line.slice(colon + 1).trim();
    if (BAD_VALUE_CHAR.test(value)) throw bad(`control character in header field ${quote(name)}`);
    const lower = name.toLowerCase();
    if (lower === "transfer-encoding") {
      throw new HttpError(501, "Transfer-Encoding is not supported: send Content-Length");
    }
    if (lower === "content-length") {
      const length = parseLength(value);
      if (contentLength !== undefined && contentLength !== length) {
        throw bad("conflicting Content-Length fields");
      }
      contentLength = length;
    }
    headers.push([name, value]);
  }
  return { method, target, version, headers, contentLength: contentLength ?? 0 };
}

function originForm(target: string): string {
  if (target.startsWith("/")) return target;
  const absolute = ABSOLUTE_FORM.exec(target);
  if (absolute) {
    const rest = absolute[1];
    if (rest === "" || rest.startsWith("?")) return `/${rest}`;
    if (rest.startsWith("/")) return rest;
  }
  throw bad(`malformed request target ${quote(target)}: expected /path or http://host/path`);
}

function parseLength(value: string): number {
  // Digits only, and short enough to be exact; the caller compares it with its own limit.
  if (!/^\d{1,15}$/.test(value)) throw bad(`malformed Content-Length ${quote(value)}`);
  return Number(value);
}

function bad(message: string): HttpError {
  return new HttpError(400, message);
}

/** JSON-quoted and shortened, so a message never carries a whole hostile line. */
function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
}
