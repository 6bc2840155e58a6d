import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  copyBytes,
  escapeControls,
  OutputTail,
  TAIL_LINE_CHARS,
  TAIL_LINES,
  tapInto,
} from "./tail.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("OutputTail keeps the last lines, split across chunks, blank lines left out", () => {
  const tail = new OutputTail();
  tail.push(bytes("Traceback (most rec"));
  tail.push(bytes('ent call last):\r\n\n  File "app.py"\nOSError: [Errno 9] Bad'));
  tail.push(bytes(" file descriptor"));
  assertEquals(tail.lines(), [
    "Traceback (most recent call last):",
    '  File "app.py"',
    "OSError: [Errno 9] Bad file descriptor",
  ]);
});

Deno.test("OutputTail is bounded: line count, line length, and a line without end", () => {
  const tail = new OutputTail();
  for (let i = 0; i < 100; i++) tail.push(bytes(`line ${i}\n`));
  const lines = tail.lines();
  assertEquals(lines.length, TAIL_LINES);
  assertEquals(lines.at(-1), "line 99");
  tail.push(bytes("x".repeat(1_000_000)));
  const last = tail.lines().at(-1)!;
  assertEquals(last.length, TAIL_LINE_CHARS + 1);
  assert(last.endsWith("…"));
});

Deno.test("escapeControls: escape sequences and carriage returns cannot reach a terminal", () => {
  assertEquals(escapeControls("\x1b[31mred\tok\r"), "\\x1b[31mred\tok\\x0d");
  assertEquals(escapeControls("plain ünïcode"), "plain ünïcode");
});

Deno.test("tapInto + copyBytes pass every byte on unchanged while the tail fills", async () => {
  const input = new Uint8Array(200_000).map((_, i) => (i % 50 === 49 ? 0x0a : 0x41 + (i % 26)));
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < input.length; i += 7000) c.enqueue(input.slice(i, i + 7000));
      c.close();
    },
  });
  const tail = new OutputTail();
  const out: number[] = [];
  // A writer that takes at most 1000 bytes per call, like a full pipe.
  await copyBytes(tapInto(stream, tail), {
    write: (p) => {
      const n = Math.min(1000, p.length);
      out.push(...p.subarray(0, n));
      return Promise.resolve(n);
    },
  });
  assertEquals(new Uint8Array(out), input);
  assertEquals(tail.lines().length, TAIL_LINES);
});
