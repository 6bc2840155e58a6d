import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { CpuMeter, formatBytes } from "./proc.ts";

const MiB = 1024 * 1024;

Deno.test("CpuMeter: lifetime average first, then the rate since the previous sample", () => {
  const meter = new CpuMeter();
  // 1 s of CPU over 4 s of life: 25 %.
  assertEquals(meter.percent(10, 1, 0, 4000), 25);
  // Too soon: the previous value.
  assertEquals(meter.percent(10, 1.1, 100, 4100), 25);
  // 0.5 s CPU over 1 s: 50 %.
  assertEquals(meter.percent(10, 1.5, 1000, 5000), 50);
  // Two cores' worth is 200 %.
  assertEquals(meter.percent(10, 3.5, 2000, 6000), 200);
  // A reused pid (CPU time went down) starts again from its lifetime average.
  assertEquals(meter.percent(10, 0.1, 3000, 1000), 10);
  meter.retain([]);
  assertEquals(meter.percent(10, 0.1, 3100, 0), 0);
});

Deno.test("formatBytes", () => {
  assertEquals(formatBytes(512), "512 B");
  assertEquals(formatBytes(800 * 1024), "800 KiB");
  assertEquals(formatBytes(52.4 * MiB), "52.4 MiB");
  assertEquals(formatBytes(1.5 * 1024 * MiB), "1.5 GiB");
});
