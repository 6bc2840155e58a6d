import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { SAMPLE_STATUS } from "./_testing.ts";
import type { MetricsSnapshot } from "./metrics.ts";
import { withSaturationMetrics, withSaturationStatus } from "./saturation_report.ts";

/** A worker's usage: its process group of 3 holds `memory` bytes of PSS (twice that in RSS). */
function usage(
  serial: number,
  pid: number,
  memory: number,
  cpuSeconds: number,
  cpuPercent: number,
) {
  const source = "pss" as "pss" | "rss";
  return {
    serial,
    pid,
    memoryBytes: memory,
    memorySource: source,
    rssBytes: 2 * memory,
    processes: 3,
    cpuSeconds,
    cpuPercent,
  };
}

const view = {
  queues: [{ listener: "127.0.0.1:8000", length: 2, capacity: 2048 }],
  usage: new Map([
    [4250, usage(1, 4250, 1000, 1.234, 12.5)],
    [4251, { ...usage(2, 4251, 3000, 9, 0), memorySource: "rss" as const, processes: 1 }],
  ]),
  stopReasons: new Map([[4251, "max_worker_memory"]]),
  autoscale: { min: 1, max: 4 },
  maxWorkerMemoryBytes: 2000,
};

Deno.test("withSaturationStatus fills the optional fields; a worker without a pid gets nulls", () => {
  const r = withSaturationStatus(SAMPLE_STATUS, view);
  assertEquals(r.master.listeners, [
    { address: "127.0.0.1:8000", queue_length: 2, queue_capacity: 2048 },
  ]);
  assertEquals(r.master.autoscale, { min: 1, max: 4 });
  assertEquals(r.master.max_worker_memory_bytes, 2000);
  assertEquals(
    r.workers.map((w) => [
      w.memory_bytes,
      w.memory_source,
      w.rss_bytes,
      w.processes,
      w.cpu_s,
      w.cpu_percent,
      w.stop_reason,
    ]),
    [
      [1000, "pss", 2000, 3, 1.23, 12.5, null],
      [3000, "rss", 6000, 1, 9, 0, "max_worker_memory"],
      [null, null, null, null, null, null, null],
    ],
  );
  const off = withSaturationStatus(SAMPLE_STATUS, { queues: [], usage: new Map() });
  assertEquals([off.master.autoscale, off.master.max_worker_memory_bytes], [null, null]);
});

Deno.test("withSaturationMetrics gives usage its slot and generation, only for live workers", () => {
  const base = { generation: 1 } as MetricsSnapshot;
  const ids = (...e: [number, number][]) =>
    new Map(e.map(([pid, slot]) => [pid, { slot, generation: 2 }]));
  const m = withSaturationMetrics(base, view, ids([4251, 1], [4250, 0]));
  assertEquals(m.workerResources, [
    {
      id: 0,
      generation: 2,
      pid: 4250,
      memoryBytes: 1000,
      memorySource: "pss",
      rssBytes: 2000,
      processes: 3,
      cpuSeconds: 1.234,
    },
    {
      id: 1,
      generation: 2,
      pid: 4251,
      memoryBytes: 3000,
      memorySource: "rss",
      rssBytes: 6000,
      processes: 1,
      cpuSeconds: 9,
    },
  ]);
  assertEquals(m.listenQueues, view.queues);
  assertEquals(m.autoscale, { min: 1, max: 4 });
  assertEquals(withSaturationMetrics(base, view, ids([4250, 0])).workerResources!.length, 1);
});
