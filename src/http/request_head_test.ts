import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { findHeadEnd, HttpError, MAX_HEADER_FIELDS, parseRequestHead } from "./request_head.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

function refused(text: string, status: number, fragment: string): void {
  assertThrows(
    () => parseRequestHead(bytes(text)),
    (error) => {
      if (!(error instanceof HttpError)) throw new Error(`expected an HttpError, got ${error}`);
      assertEquals([error.status, error.message.includes(fragment)], [status, true], error.message);
      return true;
    },
  );
}

Deno.test("findHeadEnd: CRLF and bare LF blank lines, across pieces", () => {
  const buf = bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\nBODY");
  assertEquals(findHeadEnd(buf, 0, buf.length), buf.length - 4);
  assertEquals(findHeadEnd(buf, 0, 20), -1);
  // The blank line split over two reads is still found from where the second starts.
  assertEquals(findHeadEnd(buf, 26, buf.length), buf.length - 4);
  const lf = bytes("GET / HTTP/1.0\n\n");
  assertEquals(findHeadEnd(lf, 0, lf.length), lf.length);
});

Deno.test("parseRequestHead: origin form, headers and Content-Length", () => {
  const head = parseRequestHead(
    bytes("POST /v1/scale?x=1 HTTP/1.1\r\nHost: arbiter\r\nContent-Length:  12 \r\n\r\n"),
  );
  assertEquals(head, {
    method: "POST",
    target: "/v1/scale?x=1",
    version: "HTTP/1.1",
    headers: [["Host", "arbiter"], ["Content-Length", "12"]],
    contentLength: 12,
  });
});

Deno.test("parseRequestHead: absolute form (a client going through a proxy) becomes origin form", () => {
  const target = (t: string) => parseRequestHead(bytes(`GET ${t} HTTP/1.1\n\n`)).target;
  assertEquals(target("http://arbiter/v1/status"), "/v1/status");
  assertEquals(target("http://[::1]:9100"), "/");
  assertEquals(target("HTTP://h?q=1"), "/?q=1");
});

Deno.test("parseRequestHead: what could make two parsers disagree is refused", () => {
  refused("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501, "Content-Length");
  refused("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, "conflicting");
  refused("GET / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n", 400, "malformed Content-Length");
  refused("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "malformed Content-Length");
  refused("GET / HTTP/1.1\r\nContent-Length: 99999999999999999\r\n\r\n", 400, "Content-Length");
  refused("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400, "folding");
  refused("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400, "malformed header field");
  refused("GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400, "malformed header field");
  refused("GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n", 400, "control character");
});

Deno.test("parseRequestHead: bad request lines and versions", () => {
  refused("HELLO\r\n\r\n", 400, "malformed request line");
  refused("GET  / HTTP/1.1\r\n\r\n", 400, "malformed request line");
  refused("G(T / HTTP/1.1\r\n\r\n", 400, "malformed method");
  refused("GET * HTTP/1.1\r\n\r\n", 400, "malformed request target");
  refused("GET ftp://x/ HTTP/1.1\r\n\r\n", 400, "malformed request target");
  refused("GET / HTTP/9.9\r\n\r\n", 505, "HTTP/9.9");
  refused("GET / HTTP/2.0\r\n\r\n", 505, "use HTTP/1.1");
  const many = Array.from({ length: MAX_HEADER_FIELDS + 1 }, (_, i) => `X-${i}: 1\r\n`).join("");
  refused(`GET / HTTP/1.1\r\n${many}\r\n`, 400, "too many header fields");
  // A long hostile line is quoted shortened.
  refused(`${"A".repeat(500)}\r\n\r\n`, 400, '..."');
});

Deno.test("parseRequestHead: leading empty lines are skipped; HTTP/1.0 without headers", () => {
  const head = parseRequestHead(bytes("\r\nGET /livez HTTP/1.0\r\n\r\n"));
  assertEquals([head.method, head.target, head.version, head.contentLength], [
    "GET",
    "/livez",
    "HTTP/1.0",
    0,
  ]);
});
