/**
 * A tiny HTTP/1.1 client over raw TCP, for load that must see every failure
 * the way a load tool (wrk) does: a refused connect, a reset, a connection
 * closed before the whole response, a timeout, a non-2xx status. `fetch`
 * hides some of these (it retries a request on a reused connection that the
 * server had closed), so it cannot prove that a drain loses nothing.
 *
 * Invariants:
 * - One request at a time per connection (no pipelining).
 * - A response is complete only when its whole body is read (Content-Length,
 *   chunked, or up to EOF when it has neither).
 * - A connection is used again only when the response allows it
 *   (HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `keep-alive`).
 *
 * @module
 */

/** One complete response. */
export interface Http1Response {
  status: number;
  /** Header names lowercased; the last value of a repeated header. */
  headers: Map<string, string>;
  body: string;
  /** The server closes the connection after this response. */
  closes: boolean;
}

const CRLF2 = new Uint8Array([13, 10, 13, 10]);
const MAX_HEADER_BYTES = 64 * 1024;
const decoder = new TextDecoder();

function indexOf(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** A client connection: `request()` one at a time, then `close()`. */
export class Http1Connection {
  #conn: Deno.TcpConn;
  #buf = new Uint8Array(0);
  #eof = false;
  #closed = false;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Connect to `hostname:port` (a refused connection throws). */
  static async open(hostname: string, port: number): Promise<Http1Connection> {
    return new Http1Connection(await Deno.connect({ hostname, port }));
  }

  /**
   * Send `GET path` and read the whole response. `close` asks for
   * `Connection: close`. Throws on a reset, or when the connection ends
   * before the response is complete ("short read").
   */
  async request(path: string, host: string, close: boolean): Promise<Http1Response> {
    const head = `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n` +
      (close ? "Connection: close\r\n" : "") + "\r\n";
    await this.#writeAll(new TextEncoder().encode(head));
    let end: number;
    while ((end = indexOf(this.#buf, CRLF2)) < 0) {
      if (this.#buf.length > MAX_HEADER_BYTES) throw new Error("response headers too long");
      await this.#fill("before the response headers were complete");
    }
    const lines = decoder.decode(this.#buf.subarray(0, end)).split("\r\n");
    this.#buf = this.#buf.subarray(end + 4);
    const statusLine = lines[0].match(/^HTTP\/1\.([01]) (\d{3})/);
    if (!statusLine) throw new Error(`bad status line: ${JSON.stringify(lines[0])}`);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0) {
        headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
    }
    const connection = (headers.get("connection") ?? "").toLowerCase();
    let closes = statusLine[1] === "0"
      ? !connection.includes("keep-alive")
      : connection.includes("close");
    let body: Uint8Array;
    if ((headers.get("transfer-encoding") ?? "").toLowerCase().includes("chunked")) {
      body = await this.#readChunked();
    } else if (headers.has("content-length")) {
      body = await this.#readExactly(Number(headers.get("content-length")));
    } else {
      while (!this.#eof) await this.#fill(null);
      body = this.#buf;
      this.#buf = new Uint8Array(0);
      closes = true;
    }
    return { status: Number(statusLine[2]), headers, body: decoder.decode(body), closes };
  }

  /**
   * Wait for the server to close this idle connection: "eof" on a clean close,
   * "data" if it sent something unasked, or the error (e.g. a reset). Never rejects.
   */
  async closedByServer(): Promise<string> {
    try {
      if (this.#buf.length > 0 || (await this.#conn.read(new Uint8Array(1))) !== null) {
        return "data";
      }
      return "eof";
    } catch (err) {
      return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
  }

  /** Close the connection (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.length) done += await this.#conn.write(bytes.subarray(done));
  }

  /** Read more bytes; at EOF throw "short read" (saying `during`) unless `during` is null. */
  async #fill(during: string | null): Promise<void> {
    const chunk = new Uint8Array(16 * 1024);
    const n = await this.#conn.read(chunk);
    if (n === null) {
      this.#eof = true;
      if (during !== null) throw new Error(`short read: connection closed ${during}`);
      return;
    }
    const joined = new Uint8Array(this.#buf.length + n);
    joined.set(this.#buf);
    joined.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = joined;
  }

  async #readExactly(length: number): Promise<Uint8Array> {
    while (this.#buf.length < length) await this.#fill("before the body was complete");
    const body = this.#buf.subarray(0, length);
    this.#buf = this.#buf.subarray(length);
    return body;
  }

  async #readLine(): Promise<string> {
    let end: number;
    while ((end = indexOf(this.#buf, CRLF2.subarray(2))) < 0) {
      await this.#fill("in a chunked body");
    }
    const line = decoder.decode(this.#buf.subarray(0, end));
    this.#buf = this.#buf.subarray(end + 2);
    return line;
  }

  async #readChunked(): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    while (true) {
      const size = parseInt(await this.#readLine(), 16);
      if (!Number.isFinite(size)) throw new Error("bad chunk size");
      if (size === 0) {
        while ((await this.#readLine()) !== ""); // trailers
        break;
      }
      parts.push(await this.#readExactly(size));
      await this.#readExactly(2); // CRLF after the chunk
    }
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}
