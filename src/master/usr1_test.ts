import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { blocksUsr1, everyThreadBlocksUsr1 } from "./usr1.ts";

const status = (sigblk: string) => `Name:\tdeno\nSigPnd:\t0000000000000000\nSigBlk:\t${sigblk}\n`;

Deno.test("blocksUsr1 reads bit 9 (signal 10) of SigBlk", () => {
  assertEquals(blocksUsr1(status("0000000000000200")), true);
  assertEquals(blocksUsr1(status("fffffffe7ffbfeff")), true);
  assertEquals(blocksUsr1(status("0000000000000000")), false);
  assertEquals(blocksUsr1(status("fffffffffffffdff")), false);
  assertEquals(blocksUsr1("Name:\tdeno\n"), false, "no SigBlk line: not blocked");
});

Deno.test("everyThreadBlocksUsr1: the test runner does not block USR1; a missing pid is false", () => {
  assertEquals(everyThreadBlocksUsr1(), false);
  assertEquals(everyThreadBlocksUsr1(2 ** 22 + 1), false);
});
