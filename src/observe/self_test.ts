import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { parseBootTime, parseMaxOpenFiles, parseSelfStat, sampleSelf } from "./self.ts";

Deno.test("parseSelfStat: CPU ticks, start, sizes; a name with spaces and parentheses", () => {
  const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
  fields[0] = "S";
  const text = `1234 (a (b) c) ${fields.join(" ")}`;
  // utime is field 14, stime 15, starttime 22, vsize 23, rss 24.
  assertEquals(parseSelfStat(text), {
    ticks: 14 + 15,
    startTicks: 22,
    virtualBytes: 23,
    residentPages: 24,
  });
  assertEquals(parseSelfStat("garbage"), undefined);
  assertEquals(parseSelfStat("1 (x) S 1 2"), undefined);
});

Deno.test("parseMaxOpenFiles and parseBootTime", () => {
  const limits =
    "Limit                     Soft Limit           Hard Limit           Units     \n" +
    "Max open files            1024                 524288               files     \n";
  assertEquals(parseMaxOpenFiles(limits), 1024);
  assertEquals(parseMaxOpenFiles(limits.replace("1024 ", "unlimited ")), undefined);
  assertEquals(parseBootTime("cpu  1 2 3\nbtime 1790000000\nprocesses 5\n"), 1790000000);
  assertEquals(parseBootTime("cpu 1\n"), undefined);
});

Deno.test("sampleSelf: this process, as /proc sees it", () => {
  const me = sampleSelf();
  assert(me, "readable on Linux");
  assert(me.residentBytes > 1024 * 1024, String(me.residentBytes));
  assert(me.virtualBytes >= me.residentBytes);
  assert(me.openFds >= 3, String(me.openFds));
  // `deno test --parallel` runs other modules on other threads of this same
  // process, and they open and close fds at any moment: compare only a sample
  // taken while two listings around it agree.
  const listing = () => [...Deno.readDirSync("/proc/self/fd")].length;
  let stable: { sampled: number; listed: number } | undefined;
  for (let attempt = 0; attempt < 1000 && !stable; attempt++) {
    const before = listing();
    const sampled = sampleSelf()!.openFds;
    if (listing() === before) stable = { sampled, listed: before };
  }
  assert(stable, "the fd table never held still for one sample");
  assertEquals(stable.sampled, stable.listed - 1, "the listing's own fd is not counted");
  const now = Date.now() / 1000;
  assert(me.startTimeSeconds > now - 3600 && me.startTimeSeconds <= now + 1);
  assert(me.cpuSeconds > 0);
});
