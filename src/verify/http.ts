/**
 * The small HTTP/1.1 client `arbiter verify` drives workers with. It talks
 * over raw sockets (`Deno.connect`) instead of `fetch` because verify must
 * see exactly what happened to each request — refused, reset, closed half
 * way, too slow, or answered with an error — and must control the connection
 * itself: one per request, kept alive, or sent slowly byte by byte.
 *
 * Invariants:
 * - {@link ResponseParser} is pure (bytes in, a response out) and knows the
 *   three ways an HTTP/1.x body ends: Content-Length, chunked, or close.
 * - Every failure becomes one {@link RequestFailure} with a {@link FailureKind};
 *   nothing else is thrown by {@link exchange}.
 *
 * @module
 */

/** Where the worker listens: the private master's first bind. */
export type Target =
  | { transport: "tcp"; hostname: string; port: number }
  | { transport: "unix"; path: string };

/** How a request failed. `short-read` includes "closed before any answer". */
export type FailureKind = "refused" | "reset" | "short-read" | "timeout" | "status" | "other";

/** Every {@link FailureKind}, in the order reports list them. */
export const FAILURE_KINDS: readonly FailureKind[] = [
  "refused",
  "reset",
  "short-read",
  "timeout",
  "status",
  "other",
];

/** A failed request: what kind of failure, and a one-line detail. */
export class RequestFailure extends Error {
  readonly kind: FailureKind;

  constructor(kind: FailureKind, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RequestFailure";
    this.kind = kind;
  }
}

/** A complete response. */
export interface HttpResponse {
  status: number;
  /** "HTTP/1.1" or "HTTP/1.0". */
  version: string;
  /** Header names in lower case. */
  headers: Map<string, string>;
  /** The first bytes of the body, for messages. */
  bodyStart: string;
  /** True when the connection may carry another request. */
  reusable: boolean;
}

/** The text of a GET request; `close` asks the server to close after answering. */
export function requestText(target: Target, path: string, close: boolean): string {
  const host = target.transport === "tcp"
    ? (target.hostname.includes(":") ? `[${target.hostname}]` : target.hostname) +
      `:${target.port}`
    : "localhost";
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: arbiter-verify\r\n` +
    (close ? "Connection: close\r\n" : "") + "\r\n";
}

const HEADER_LIMIT = 64 * 1024;
const decoder = new TextDecoder();

/**
 * Parses one HTTP/1.x response from the bytes of a connection. Feed it with
 * {@link push}; call {@link end} when the connection closes.
 */
export class ResponseParser {
  #buf = new Uint8Array(0);
  #head?: { status: number; version: string; headers: Map<string, string> };
  /** Body framing once the head is read. */
  #framing?: { kind: "length"; left: number } | { kind: "chunked" } | { kind: "close" };
  #bodyStart = "";
  #done?: HttpResponse;
  /** Bytes received in total. */
  received = 0;

  /** Adds bytes; returns the response once it is complete. */
  push(chunk: Uint8Array): HttpResponse | undefined {
    if (this.#done) return this.#done;
    this.received += chunk.length;
    const joined = new Uint8Array(this.#buf.length + chunk.length);
    joined.set(this.#buf);
    joined.set(chunk, this.#buf.length);
    this.#buf = joined;
    if (!this.#head && !this.#readHead()) return undefined;
    return this.#readBody();
  }

  /**
   * The connection closed. Returns the response if closing completes it
   * (a body delimited by the close); throws a `short-read` failure otherwise.
   */
  end(): HttpResponse {
    if (this.#done) return this.#done;
    if (this.#head && this.#framing?.kind === "close") {
      return this.#finish(false);
    }
    const what = this.received === 0
      ? "the connection was closed before any answer"
      : `the connection was closed in the middle of the answer (${this.received} bytes read)`;
    throw new RequestFailure("short-read", what);
  }

  #readHead(): boolean {
    const end = indexOf(this.#buf, [13, 10, 13, 10]);
    if (end < 0) {
      if (this.#buf.length > HEADER_LIMIT) {
        throw new RequestFailure("other", "response headers longer than 64 KiB");
      }
      return false;
    }
    const lines = decoder.decode(this.#buf.subarray(0, end)).split("\r\n");
    this.#buf = this.#buf.subarray(end + 4);
    const m = lines[0].match(/^(HTTP\/1\.[01]) (\d{3})(?: |$)/);
    if (!m) {
      throw new RequestFailure("other", `not an HTTP response: ${JSON.stringify(lines[0])}`);
    }
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0) {
        headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
    }
    const status = Number(m[2]);
    this.#head = { status, version: m[1], headers };
    const te = headers.get("transfer-encoding")?.toLowerCase() ?? "";
    const length = headers.get("content-length");
    if (status === 204 || status === 304 || (status >= 100 && status < 200)) {
      this.#framing = { kind: "length", left: 0 };
    } else if (te.includes("chunked")) this.#framing = { kind: "chunked" };
    else if (length !== undefined && /^\d+$/.test(length)) {
      this.#framing = { kind: "length", left: Number(length) };
    } else this.#framing = { kind: "close" };
    return true;
  }

  #readBody(): HttpResponse | undefined {
    const framing = this.#framing!;
    if (framing.kind === "length") {
      const take = Math.min(framing.left, this.#buf.length);
      this.#keep(this.#buf.subarray(0, take));
      framing.left -= take;
      this.#buf = this.#buf.subarray(take);
      return framing.left === 0 ? this.#finish(true) : undefined;
    }
    if (framing.kind === "close") {
      this.#keep(this.#buf);
      this.#buf = new Uint8Array(0);
      return undefined;
    }
    // Chunked: size line, data, CRLF; a zero size then trailers up to an empty line.
    while (true) {
      const lineEnd = indexOf(this.#buf, [13, 10]);
      if (lineEnd < 0) return undefined;
      const size = parseInt(decoder.decode(this.#buf.subarray(0, lineEnd)).split(";")[0], 16);
      if (Number.isNaN(size)) throw new RequestFailure("other", "bad chunk size in the response");
      if (size === 0) {
        const trailerEnd = indexOf(this.#buf.subarray(lineEnd), [13, 10, 13, 10]);
        return trailerEnd < 0 ? undefined : this.#finish(true);
      }
      const need = lineEnd + 2 + size + 2;
      if (this.#buf.length < need) return undefined;
      this.#keep(this.#buf.subarray(lineEnd + 2, lineEnd + 2 + size));
      this.#buf = this.#buf.subarray(need);
    }
  }

  #keep(bytes: Uint8Array): void {
    if (this.#bodyStart.length < 200) {
      this.#bodyStart += decoder.decode(bytes.subarray(0, 200 - this.#bodyStart.length));
    }
  }

  #finish(framed: boolean): HttpResponse {
    const { status, version, headers } = this.#head!;
    const connection = headers.get("connection")?.toLowerCase() ?? "";
    const reusable = framed &&
      (version === "HTTP/1.1" ? !connection.includes("close") : connection.includes("keep-alive"));
    this.#done = { status, version, headers, bodyStart: this.#bodyStart, reusable };
    return this.#done;
  }
}

function indexOf(haystack: Uint8Array, needle: number[]): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Maps an error from Deno's socket calls to a {@link FailureKind}. */
export function classify(error: unknown): RequestFailure {
  if (error instanceof RequestFailure) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof Deno.errors.ConnectionRefused) return new RequestFailure("refused", message);
  if (
    error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionAborted
  ) return new RequestFailure("reset", message);
  if (error instanceof Deno.errors.NotFound) return new RequestFailure("refused", message);
  return new RequestFailure("other", message, { cause: error });
}

/**
 * Opens a connection to `target` within `timeoutMs` (a full accept queue can
 * leave a connect pending for seconds); throws a {@link RequestFailure}. A
 * connection that completes after the deadline is closed at once.
 */
export async function connect(target: Target, timeoutMs = 5000): Promise<Deno.Conn> {
  const pending = target.transport === "tcp"
    ? Deno.connect({ hostname: target.hostname, port: target.port })
    : Deno.connect({ transport: "unix", path: target.path });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      pending.then((conn) => conn.close(), () => {});
      reject(new RequestFailure("timeout", `no connection within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([pending, deadline]);
  } catch (error) {
    throw classify(error);
  } finally {
    clearTimeout(timer);
  }
}

/** Writes all of `text` to `conn`; throws a {@link RequestFailure}. */
export async function send(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  try {
    for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
  } catch (error) {
    throw classify(error);
  }
}

/** Reads one response from `conn`; throws a {@link RequestFailure}. */
export async function receive(conn: Deno.Conn): Promise<HttpResponse> {
  const parser = new ResponseParser();
  const buf = new Uint8Array(16 * 1024);
  while (true) {
    let n: number | null;
    try {
      n = await conn.read(buf);
    } catch (error) {
      throw classify(error);
    }
    if (n === null) return parser.end();
    const done = parser.push(buf.subarray(0, n));
    if (done) return done;
  }
}

/**
 * Runs `work` with a deadline: when `timeoutMs` passes, `conn` is closed (which
 * ends any pending read or write) and a `timeout` failure is thrown instead.
 */
export async function withDeadline<T>(
  conn: Deno.Conn,
  timeoutMs: number,
  work: () => Promise<T>,
): Promise<T> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      conn.close();
    } catch { /* already closed */ }
  }, timeoutMs);
  try {
    return await work();
  } catch (error) {
    if (timedOut) throw new RequestFailure("timeout", `no complete answer within ${timeoutMs} ms`);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** Checks the status: anything but 2xx is a `status` failure. */
export function expect2xx(res: HttpResponse): HttpResponse {
  if (res.status < 200 || res.status > 299) {
    const body = res.bodyStart.trim().split("\n")[0].slice(0, 80);
    throw new RequestFailure("status", `HTTP ${res.status}${body ? `: ${body}` : ""}`);
  }
  return res;
}

/** One GET on a new connection, closed afterwards; throws a {@link RequestFailure}. */
export async function getOnce(
  target: Target,
  path: string,
  timeoutMs: number,
): Promise<HttpResponse> {
  const conn = await connect(target, timeoutMs);
  try {
    return await withDeadline(conn, timeoutMs, async () => {
      await send(conn, requestText(target, path, true));
      return expect2xx(await receive(conn));
    });
  } finally {
    try {
      conn.close();
    } catch { /* closed by the deadline */ }
  }
}
