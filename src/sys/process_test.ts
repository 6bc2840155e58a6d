// The libc calls of process.ts that have no caller in a test of their own.
import { ok as assert } from "node:assert/strict";
import { releaseFreedMemory } from "./process.ts";

/** The process's `[heap]` (brk) segment: what glibc's main arena holds, in KiB. */
function mallocHeapKb(): number {
  let inHeap = false;
  let kb = 0;
  for (const line of Deno.readTextFileSync("/proc/self/smaps").split("\n")) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inHeap = line.endsWith("[heap]");
    else if (inHeap && line.startsWith("Rss:")) kb += Number(line.split(/\s+/)[1]);
  }
  return kb;
}

Deno.test("releaseFreedMemory hands malloc's free pages back on glibc", () => {
  assert(releaseFreedMemory(), "glibc has malloc_trim");
  // A second call has nothing left to give back: the [heap] does not grow from it.
  const before = mallocHeapKb();
  assert(releaseFreedMemory());
  assert(mallocHeapKb() <= before + 64, "trimming never grows the heap");
});
