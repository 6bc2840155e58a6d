import { deepStrictEqual as assertEquals } from "node:assert/strict";
import type { Config } from "../config/types.ts";
import { memorySampleIntervalMs, memorySettingsOf, MemoryWatch } from "./memory.ts";

const MiB = 1024 * 1024;

Deno.test("a spike shorter than the window does not make a worker due; a sustained excess does", () => {
  const watch = new MemoryWatch({ limitBytes: 100 * MiB, windowMs: 10_000 });
  // t=0..60 s: baseline, then a 5 s spike, then a sustained excess from 40 s.
  const rss = (t: number) => (t >= 20_000 && t < 25_000) || t >= 40_000 ? 150 * MiB : 80 * MiB;
  const dueAt: number[] = [];
  for (let t = 0; t <= 60_000; t += 5000) {
    const due = watch.observe(t, [{ serial: 1, memoryBytes: rss(t) }]);
    if (due.length > 0) dueAt.push(t);
  }
  assertEquals(dueAt, [50_000, 55_000, 60_000]);
});

Deno.test("due workers are listed most over the limit first; young ones are flagged", () => {
  const watch = new MemoryWatch({ limitBytes: 100 * MiB, windowMs: 10_000 });
  // Worker 1 is sampled from t=0 and leaks late; worker 2 is over from its first sample.
  for (let t = 0; t < 100_000; t += 5000) watch.observe(t, [{ serial: 1, memoryBytes: 10 * MiB }]);
  watch.observe(100_000, [{ serial: 1, memoryBytes: 120 * MiB }, {
    serial: 2,
    memoryBytes: 200 * MiB,
  }]);
  const due = watch.observe(110_000, [
    { serial: 1, memoryBytes: 130 * MiB },
    { serial: 2, memoryBytes: 210 * MiB },
  ]);
  assertEquals(due.map((d) => [d.serial, d.young, d.overSince]), [
    [2, true, 100_000],
    [1, false, 100_000],
  ]);
});

Deno.test("one sample under the limit clears the count; a missing worker is forgotten", () => {
  const watch = new MemoryWatch({ limitBytes: 100 * MiB, windowMs: 10_000 });
  watch.observe(0, [{ serial: 1, memoryBytes: 150 * MiB }]);
  watch.observe(5000, [{ serial: 1, memoryBytes: 90 * MiB }]);
  assertEquals(watch.observe(10_000, [{ serial: 1, memoryBytes: 150 * MiB }]), []);
  assertEquals(watch.observe(15_000, [{ serial: 1, memoryBytes: 150 * MiB }]), []);
  // Not sampled (it was stopping): forgotten; back again, it starts from scratch.
  watch.observe(20_000, []);
  assertEquals(watch.observe(25_000, [{ serial: 1, memoryBytes: 150 * MiB }]), []);
  assertEquals(watch.observe(35_000, [{ serial: 1, memoryBytes: 150 * MiB }]).length, 1);
  watch.forget(1);
  assertEquals(watch.observe(40_000, [{ serial: 1, memoryBytes: 150 * MiB }]), []);
});

Deno.test("window 0: the first sample over the limit is enough; limit 0: off", () => {
  const now = new MemoryWatch({ limitBytes: 100 * MiB, windowMs: 0 });
  assertEquals(now.observe(0, [{ serial: 3, memoryBytes: 101 * MiB }]).length, 1);
  const off = new MemoryWatch({ limitBytes: 0, windowMs: 0 });
  assertEquals(off.enabled, false);
  assertEquals(off.observe(0, [{ serial: 3, memoryBytes: 101 * MiB }]), []);
});

Deno.test("sampling interval: twice per window, between 1 s and 5 s", () => {
  assertEquals(memorySampleIntervalMs(0), 1000);
  assertEquals(memorySampleIntervalMs(4000), 2000);
  assertEquals(memorySampleIntervalMs(10_000), 5000);
  assertEquals(memorySampleIntervalMs(3_600_000), 5000);
});

Deno.test("memorySettingsOf: MiB to bytes, seconds to ms", () => {
  const config = { max_worker_memory: 1.5, max_worker_memory_window: 10 } as Config;
  assertEquals(memorySettingsOf(config), { limitBytes: 1.5 * MiB, windowMs: 10_000 });
});
