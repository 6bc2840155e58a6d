// The one deadline timer on a fake clock.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { MAX_TIMER_MS } from "../core/limits.ts";
import { FakeOs } from "./_testing.ts";
import { DeadlineTimer } from "./timer.ts";

Deno.test("the timer fires once at the deadline; re-arming the same deadline keeps it", () => {
  const os = new FakeOs();
  let fired = 0;
  const timer = new DeadlineTimer(() => fired++, os);
  timer.arm(100);
  timer.arm(100);
  assertEquals(os.armed, 1);
  os.advance(99);
  assertEquals(fired, 0);
  os.advance(1);
  assertEquals(fired, 1);
  os.advance(1_000);
  assertEquals(fired, 1, "once");
});

Deno.test("a new deadline replaces the old one; undefined disarms", () => {
  const os = new FakeOs();
  let fired = 0;
  const timer = new DeadlineTimer(() => fired++, os);
  timer.arm(500);
  timer.arm(50);
  assertEquals(os.armed, 1);
  os.advance(50);
  assertEquals(fired, 1);
  timer.arm(80);
  timer.arm(undefined);
  os.advance(1_000);
  assertEquals([fired, os.armed], [1, 0]);
});

Deno.test("a deadline past what setTimeout holds is clamped: it fires early and is armed again", () => {
  const os = new FakeOs();
  let fired = 0;
  const timer = new DeadlineTimer(() => fired++, os);
  const far = 30 * 24 * 3600 * 1000;
  timer.arm(far);
  os.advance(MAX_TIMER_MS);
  assertEquals(fired, 1, "fired early; the core finds nothing due and re-arms");
  timer.arm(far);
  os.advance(far - MAX_TIMER_MS);
  assertEquals(fired, 2);
});
