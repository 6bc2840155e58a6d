import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { LineSplitter, type LineSplitterOptions } from "./lines.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function split(chunks: string[], opts: Partial<LineSplitterOptions> = {}) {
  const got: string[] = [];
  let stops = 0;
  const splitter = new LineSplitter({
    maxBytes: 8,
    onLine: (bytes, continued) => void got.push(dec.decode(bytes) + (continued ? "…" : "")),
    onStop: () => stops++,
    ...opts,
  });
  for (const chunk of chunks) splitter.push(enc.encode(chunk));
  splitter.end();
  return { got, stops, stopped: splitter.stopped };
}

Deno.test("LineSplitter joins lines across chunks and delivers a last line without \\n", () => {
  assertEquals(split(["a\nb", "c\n", "", "\nd"]).got, ["a", "bc", "", "d"]);
});

Deno.test("LineSplitter drops one \\r before a line end only when asked", () => {
  assertEquals(split(["a\r\nb\r"], { trimCr: true }).got, ["a", "b"]);
  assertEquals(split(["a\r\n"]).got, ["a\r"]);
});

Deno.test("LineSplitter cuts an over-long line into pieces at a UTF-8 boundary", () => {
  // "é" is two bytes: the first piece stops before it rather than inside it.
  assertEquals(split(["1234567é89\n"]).got, ["1234567…", "é89"]);
  assertEquals(split(["12345678\n"]).got, ["12345678"]);
});

Deno.test("LineSplitter with long = stop refuses an over-long line and stops", () => {
  const r = split(["ok\n123456789\nlater\n"], { long: "stop" });
  assertEquals(r, { got: ["ok"], stops: 1, stopped: true });
});

Deno.test("LineSplitter stops when a callback returns false", () => {
  const got: string[] = [];
  const splitter = new LineSplitter({
    maxBytes: 8,
    onLine: (bytes) => (got.push(dec.decode(bytes)), false),
  });
  splitter.push(enc.encode("a\nb\n"));
  assertEquals([got, splitter.stopped], [["a"], true]);
});

Deno.test("LineSplitter checks its limit", () => {
  throws(() => new LineSplitter({ maxBytes: 2, onLine: () => {} }), /maxBytes/);
});
