// The master's V8 flags on a `deno run` command line: added once, after `run`, never over the user's.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { MASTER_V8_FLAGS, withMasterV8Flags } from "./v8_flags.ts";

Deno.test("withMasterV8Flags adds the flags after run, and only to deno run", () => {
  const flag = `--v8-flags=${MASTER_V8_FLAGS}`;
  assertEquals(withMasterV8Flags(["deno", "run", "-A", "main.ts", "-w", "2"]), [
    "deno",
    "run",
    flag,
    "-A",
    "main.ts",
    "-w",
    "2",
  ]);
  // Once: the re-executed image's argv already has them.
  const once = withMasterV8Flags(["deno", "run", "-A", "main.ts"]);
  assertEquals(withMasterV8Flags(once), once);
  // The user's own V8 flags stand.
  const own = ["deno", "run", "--v8-flags=--max-old-space-size=64", "-A", "main.ts"];
  assertEquals(withMasterV8Flags(own), own);
  // Not `deno run` (a compiled binary bakes the flags in and is never passed here): untouched.
  assertEquals(withMasterV8Flags(["deno", "main.ts"]), ["deno", "main.ts"]);
});
