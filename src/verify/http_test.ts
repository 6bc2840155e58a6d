import { deepStrictEqual as assertEquals, ok, throws } from "node:assert/strict";
import { RequestFailure, requestText, ResponseParser } from "./http.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("ResponseParser reads a Content-Length body, even split byte by byte", () => {
  const text = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  const p = new ResponseParser();
  let res;
  for (const ch of text) res = p.push(bytes(ch)) ?? res;
  ok(res);
  assertEquals([res.status, res.bodyStart, res.reusable], [200, "hello", true]);
});

Deno.test("ResponseParser reads chunked bodies and trailers", () => {
  const p = new ResponseParser();
  assertEquals(
    p.push(bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")),
    undefined,
  );
  const res = p.push(bytes("2;x=y\r\nde\r\n0\r\nX-T: 1\r\n\r\n"));
  assertEquals(res?.bodyStart, "abcde");
});

Deno.test("ResponseParser: Connection: close, HTTP/1.0 and close-delimited bodies are not reusable", () => {
  const closing = new ResponseParser().push(
    bytes("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"),
  );
  assertEquals(closing?.reusable, false);
  const old = new ResponseParser().push(bytes("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
  assertEquals(old?.reusable, false);
  const p = new ResponseParser();
  assertEquals(p.push(bytes("HTTP/1.0 200 OK\r\n\r\nbody")), undefined);
  const res = p.end();
  assertEquals([res.bodyStart, res.reusable], ["body", false]);
});

Deno.test("ResponseParser: a close before or inside the answer is a short read", () => {
  const empty = new ResponseParser();
  throws(
    () => empty.end(),
    (e) =>
      e instanceof RequestFailure && e.kind === "short-read" && /before any answer/.test(e.message),
  );
  const half = new ResponseParser();
  half.push(bytes("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"));
  throws(() => half.end(), (e) => e instanceof RequestFailure && /in the middle/.test(e.message));
  throws(
    () => new ResponseParser().push(bytes("SSH-2.0-x\r\n\r\n")),
    (e) => e instanceof RequestFailure && e.kind === "other",
  );
});

Deno.test("requestText names the host and asks to close only when told", () => {
  const tcp = { transport: "tcp" as const, hostname: "127.0.0.1", port: 8080 };
  assertEquals(
    requestText(tcp, "/a", false),
    "GET /a HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: arbiter-verify\r\n\r\n",
  );
  ok(requestText({ transport: "unix", path: "/s" }, "/", true).includes("Connection: close\r\n"));
});
