/**
 * One connection of the bounded server ({@link ./bounded_server.ts}): read
 * one request under the deadlines of {@link ServerLimits}, hand it to the
 * handler, write the answer with `Connection: close`, close.
 *
 * Invariants:
 * - Every await on the client runs under a timer that closes the connection
 *   when it fires, which ends the pending read or write: no connection
 *   outlives `requestTimeoutMs + handlerTimeoutMs + writeTimeoutMs`.
 * - `serve()` never rejects, and a handler that loses the race against its
 *   timeout cannot reject unhandled later.
 * - Refusals before the handler (400, 413, 431, 501, 505) and a handler that
 *   throws (500) or is too slow (503) are answered through `errorResponse`,
 *   so each server keeps its own error format.
 *
 * @module
 */

import type { BoundedServerOptions, ServerLimits } from "./bounded_server.ts";
import { findHeadEnd, HttpError, parseRequestHead, type RequestHead } from "./request_head.ts";

/** One client connection: read one request, answer it, close. */
export class Connection {
  done: Promise<void> = Promise.resolve();
  /** The request is complete and in the handler or being written. */
  handling = false;
  #closed = false;
  #timer?: ReturnType<typeof setTimeout>;
  readonly #accepted = performance.now();

  constructor(
    readonly conn: Deno.Conn,
    readonly limits: ServerLimits,
    readonly options: BoundedServerOptions,
  ) {}

  close(): void {
    clearTimeout(this.#timer);
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.conn);
  }

  async serve(): Promise<void> {
    let head: RequestHead;
    let body: Uint8Array<ArrayBuffer>;
    try {
      ({ head, body } = await this.#readRequest());
    } catch (error) {
      if (error instanceof HttpError) await this.#answer(await this.#error(error), false);
      return; // A timeout or a client that went away: nothing to answer.
    }
    this.handling = true;
    let answer: Answer;
    try {
      answer = await this.#handle(head, body);
    } catch (error) {
      answer = await this.#error(
        error instanceof HttpError
          ? error
          : new HttpError(500, `internal error: ${errorText(error)}`),
      );
    }
    await this.#answer(answer, head.method === "HEAD");
  }

  async #readRequest(): Promise<{ head: RequestHead; body: Uint8Array<ArrayBuffer> }> {
    const { limits } = this;
    const buf = new Uint8Array(limits.maxHeadBytes);
    let filled = 0;
    let headEnd = -1;
    while (headEnd < 0) {
      if (filled === buf.length) {
        throw new HttpError(431, `the request head is larger than ${limits.maxHeadBytes} bytes`);
      }
      const n = await this.#read(buf.subarray(filled), limits.headerTimeoutMs);
      if (n === null) throw new Error("closed by the client before a request");
      headEnd = findHeadEnd(buf, filled, filled + n);
      filled += n;
    }
    const head = parseRequestHead(buf.subarray(0, headEnd));
    if (head.contentLength > limits.maxBodyBytes) {
      throw new HttpError(413, `the request body is larger than ${limits.maxBodyBytes} bytes`);
    }
    const body = new Uint8Array(head.contentLength);
    let got = Math.min(filled - headEnd, body.length);
    body.set(buf.subarray(headEnd, headEnd + got));
    while (got < body.length) {
      const n = await this.#read(body.subarray(got), limits.requestTimeoutMs);
      if (n === null) throw new HttpError(400, "the request body ended before Content-Length");
      got += n;
    }
    return { head, body };
  }

  /** One read under the idle deadline and the phase's deadline (from accept). */
  #read(into: Uint8Array, phaseMs: number): Promise<number | null> {
    const left = phaseMs - (performance.now() - this.#accepted);
    this.#arm(Math.min(this.limits.idleTimeoutMs, Math.max(0, left)));
    return this.conn.read(into).finally(() => clearTimeout(this.#timer));
  }

  /** Closes the connection after `ms`, which ends any pending read or write. */
  #arm(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.close(), ms);
  }

  async #handle(head: RequestHead, body: Uint8Array<ArrayBuffer>): Promise<Answer> {
    let request: Request;
    try {
      const hasBody = head.method !== "GET" && head.method !== "HEAD";
      request = new Request(`http://localhost${head.target}`, {
        method: head.method,
        headers: head.headers,
        body: hasBody ? body : null,
      });
    } catch (error) {
      throw new HttpError(400, `unusable request: ${errorText(error)}`);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new HttpError(503, "the answer took too long; try again")),
        this.limits.handlerTimeoutMs,
      );
    });
    const answer = (async () => answerOf(await this.options.handler(request)))();
    // A handler that loses the race must not reject unhandled later.
    answer.catch(() => {});
    try {
      return await Promise.race([answer, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  #error(error: HttpError): Promise<Answer> {
    const make = this.options.errorResponse ?? plainError;
    let response: Response;
    try {
      response = make(error.status, error.message);
    } catch {
      response = plainError(error.status, error.message);
    }
    return answerOf(response);
  }

  /** Writes the answer under the write deadline; never throws. */
  async #answer(answer: Answer, headOnly: boolean): Promise<void> {
    if (this.#closed) return;
    try {
      let text = `HTTP/1.1 ${answer.status} ${REASONS[answer.status] ?? ""}\r\n`;
      for (const [name, value] of answer.headers) {
        if (!HOP_BY_HOP.has(name)) text += `${name}: ${value}\r\n`;
      }
      text += `content-length: ${answer.body.length}\r\nconnection: close\r\n\r\n`;
      const headBytes = new TextEncoder().encode(text);
      const out = new Uint8Array(headBytes.length + (headOnly ? 0 : answer.body.length));
      out.set(headBytes);
      if (!headOnly) out.set(answer.body, headBytes.length);
      this.#arm(this.limits.writeTimeoutMs);
      for (let sent = 0; sent < out.length;) sent += await this.conn.write(out.subarray(sent));
      await this.conn.closeWrite();
    } catch {
      // The client went away or was too slow: the connection closes either way.
    } finally {
      this.close();
    }
  }
}

/** A response with its body read, ready to be written. */
interface Answer {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

async function answerOf(response: Response): Promise<Answer> {
  const body = new Uint8Array(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body };
}

const HOP_BY_HOP = new Set(["connection", "content-length", "transfer-encoding", "keep-alive"]);

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

function plainError(status: number, message: string): Response {
  return new Response(`${message}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

/** Closes `conn`, ignoring that it may be closed already. */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

/** The message of an error, or the thing itself as text. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
