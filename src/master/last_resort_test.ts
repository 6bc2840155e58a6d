import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { captureLog } from "../hooks/_testing.ts";
import { containUncaughtErrors, MAX_LINES_PER_WINDOW } from "./last_resort.ts";

/** Resolves after the event loop has run timers and rejection tracking. */
const turn = () => new Promise((resolve) => setTimeout(resolve, 20));

Deno.test("last resort: an unhandled rejection and a throwing timer are logged with their stack; the process goes on", async () => {
  await using captured = await captureLog();
  const release = containUncaughtErrors(captured.log);
  try {
    Promise.reject(new Error("nobody waits for me"));
    setTimeout(() => {
      throw new TypeError("thrown in a timer");
    }, 0);
    await turn();
    await turn();
  } finally {
    release();
  }
  const lines = captured.lines();
  assertEquals(lines.length, 2, lines.join("\n"));
  const rejection = lines.find((l) => l.startsWith("unhandled promise rejection")) ?? "";
  assertMatch(rejection, /contained, the master goes on; this is a bug\): Error: nobody waits/);
  assertMatch(rejection, /at .*last_resort_test\.ts/); // the stack
  const thrown = lines.find((l) => l.startsWith("uncaught exception")) ?? "";
  assertMatch(thrown, /TypeError: thrown in a timer/);
});

Deno.test("last resort: a repeating error is logged at most the budget per window", async () => {
  await using captured = await captureLog();
  const release = containUncaughtErrors(captured.log);
  try {
    for (let i = 0; i < MAX_LINES_PER_WINDOW + 5; i++) Promise.reject(`again ${i}`);
    await turn();
  } finally {
    release();
  }
  assertEquals(captured.lines().length, MAX_LINES_PER_WINDOW);
  assertMatch(captured.lines()[0], /: again 0$/);
});
