import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  RECENT_CHARS_PER_SLOT,
  RECENT_LINE_CHARS,
  RECENT_LINES_PER_SLOT,
  RECENT_MAX_SLOTS,
  RecentOutput,
} from "./recent.ts";

Deno.test("RecentOutput: per slot, in order, bounded in lines; a follower reads what is new", () => {
  const recent = new RecentOutput();
  for (let i = 0; i < RECENT_LINES_PER_SLOT + 5; i++) recent.push(0, 10, "stdout", `a${i}`);
  recent.push(1, 11, "stderr", "b");
  const zero = recent.read({ id: 0, limit: 1000 });
  assertEquals(zero.lines.length, RECENT_LINES_PER_SLOT);
  assertEquals(zero.lines[0].line, "a5", "the oldest went first");
  assertEquals(recent.read({ limit: 2 }).lines.map((l) => [l.id, l.line]), [[0, "a204"], [1, "b"]]);
  const { next } = recent.read({ limit: 1 });
  assertEquals(recent.read({ after: next, limit: 10 }).lines, []);
  recent.push(1, 11, "stdout", "c");
  assertEquals(recent.read({ after: next, limit: 10 }).lines.map((l) => l.line), ["c"]);
  assertEquals(recent.read({ id: 7, limit: 10 }).lines, []);
});

Deno.test("RecentOutput: lines cut, characters and slots bounded, controls escaped", () => {
  const recent = new RecentOutput();
  recent.push(0, 10, "stdout", "x".repeat(RECENT_LINE_CHARS + 10));
  assertEquals(recent.read({ id: 0, limit: 1 }).lines[0].line.length, RECENT_LINE_CHARS + 1);
  for (let i = 0; i < 100; i++) recent.push(0, 10, "stdout", "y".repeat(RECENT_LINE_CHARS));
  const chars = recent.read({ id: 0, limit: 1000 }).lines.reduce((n, l) => n + l.line.length, 0);
  assert(chars <= RECENT_CHARS_PER_SLOT, `${chars} characters kept`);
  for (let id = 1; id <= RECENT_MAX_SLOTS; id++) recent.push(id, 100 + id, "stdout", "z");
  assertEquals(recent.read({ id: 0, limit: 10 }).lines, [], "the least recently written slot went");
  recent.push(5, 105, "stdout", "\x1b[2Jbell\x07");
  assertEquals(recent.read({ id: 5, limit: 1 }).lines[0].line, "\\x1b[2Jbell\\x07");
});
