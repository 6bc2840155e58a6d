import { deepStrictEqual, match, strictEqual } from "node:assert/strict";
import { checkNotify, MAX_NOTIFY_BYTES, parseNotify } from "./protocol.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const parse = (s: string) => parseNotify(bytes(s));

Deno.test("parseNotify() reads one assignment", () => {
  deepStrictEqual(parse("READY=1"), { READY: "1" });
  deepStrictEqual(parse("WATCHDOG=1\n"), { WATCHDOG: "1" });
});

Deno.test("parseNotify() reads several assignments per datagram", () => {
  deepStrictEqual(parse("READY=1\nSTATUS=serving 4 requests\nMAINPID=42"), {
    READY: "1",
    STATUS: "serving 4 requests",
    MAINPID: "42",
  });
});

Deno.test("parseNotify() ignores empty lines; an empty payload has no fields", () => {
  deepStrictEqual(parse("\n\nREADY=1\n\n\nSTATUS=x\n"), { READY: "1", STATUS: "x" });
  deepStrictEqual(parse(""), {});
  deepStrictEqual(parse("\n\n"), {});
});

Deno.test("parseNotify() keeps the last value of a repeated key", () => {
  deepStrictEqual(parse("STATUS=a\nSTATUS=b\nSTATUS=c"), { STATUS: "c" });
});

Deno.test("parseNotify() splits on the first = only; values may be empty or any text", () => {
  deepStrictEqual(parse("STATUS=a=b=c"), { STATUS: "a=b=c" });
  deepStrictEqual(parse("STATUS="), { STATUS: "" });
  deepStrictEqual(parse("STATUS=héllo wörld ✓ \t"), { STATUS: "héllo wörld ✓ \t" });
  deepStrictEqual(parse("_X=1\nA_B9=2"), { _X: "1", A_B9: "2" });
});

Deno.test("parseNotify() refuses the whole payload for a line without =", () => {
  strictEqual(parse("READY=1\nhello"), undefined);
  strictEqual(parse("READY"), undefined);
});

Deno.test("parseNotify() refuses keys outside [A-Z_][A-Z0-9_]*", () => {
  for (const bad of ["ready=1", "1READY=1", "=1", "RE-ADY=1", " READY=1", "READY =1", "ÄÖ=1"]) {
    strictEqual(parse(`STATUS=ok\n${bad}`), undefined, bad);
  }
  strictEqual(parse("READY\r=1"), undefined);
});

Deno.test("parseNotify() refuses payloads over 4096 bytes and accepts exactly 4096", () => {
  const value = (n: number) => "x".repeat(n - "STATUS=".length);
  deepStrictEqual(parse(`STATUS=${value(MAX_NOTIFY_BYTES)}`), { STATUS: value(MAX_NOTIFY_BYTES) });
  strictEqual(parse(`STATUS=${value(MAX_NOTIFY_BYTES + 1)}`), undefined);
});

Deno.test("parseNotify() refuses invalid UTF-8", () => {
  strictEqual(parseNotify(new Uint8Array([0x53, 0x3d, 0xff, 0xfe])), undefined);
  strictEqual(parseNotify(new Uint8Array([0x53, 0x3d, 0xc3])), undefined); // truncated sequence
});

Deno.test("checkNotify() says why a payload is garbage", () => {
  const why = (p: Uint8Array) => {
    const r = checkNotify(p);
    return r.ok ? "" : r.why;
  };
  match(why(bytes("x".repeat(5000))), /over 4096 bytes/);
  match(why(new Uint8Array([0xff])), /UTF-8/);
  match(why(bytes("hello")), /without "=".*hello/);
  match(why(bytes("ready=1")), /bad key "ready"/);
  deepStrictEqual(checkNotify(bytes("READY=1")), { ok: true, fields: { READY: "1" } });
});
