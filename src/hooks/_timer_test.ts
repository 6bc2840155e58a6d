import { ok as assert, strictEqual, throws } from "node:assert/strict";
import { longTimeout } from "./_timer.ts";

Deno.test("longTimeout() chains short steps and fires once, not before its delay", async () => {
  const started = performance.now();
  const fired = await new Promise<number>((resolve) => {
    longTimeout(() => resolve(performance.now() - started), 60, 7);
  });
  assert(fired >= 59, `fired after ${fired} ms`);
});

Deno.test("longTimeout() can be cancelled between steps", async () => {
  let calls = 0;
  const cancel = longTimeout(() => calls++, 40, 5);
  await new Promise((resolve) => setTimeout(resolve, 12));
  cancel();
  await new Promise((resolve) => setTimeout(resolve, 60));
  strictEqual(calls, 0);
  cancel(); // twice is harmless
});

Deno.test("longTimeout() takes a delay above what one setTimeout holds", () => {
  let calls = 0;
  // 30 days: one setTimeout of this length would fire after 1 ms.
  const cancel = longTimeout(() => calls++, 30 * 86_400_000);
  cancel();
  strictEqual(calls, 0);
  throws(() => longTimeout(() => {}, Infinity), RangeError);
  throws(() => longTimeout(() => {}, -1), RangeError);
});
