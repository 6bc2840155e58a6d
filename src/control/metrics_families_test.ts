import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { formatPrometheus, type MetricsSnapshot, type WorkerResources } from "./metrics.ts";

const BASE: MetricsSnapshot = {
  workers: { booting: 0, ready: 2, stopping: 0 },
  workersDesired: 2,
  restarts: 0,
  bootFailures: 0,
  timeouts: 0,
  reloads: 0,
  exits: {},
  uptimeSeconds: 1,
  generation: 2,
};

function lines(text: string, name: string): string[] {
  return text.split("\n").filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

const usage = (id: number, generation: number, pid: number, bytes: number): WorkerResources => ({
  id,
  generation,
  pid,
  memoryBytes: bytes,
  memorySource: "pss",
  rssBytes: 2 * bytes,
  processes: 1,
  cpuSeconds: 0.5,
});

Deno.test("per-worker series: labelled by slot and generation, a shared slot summed, no pid", () => {
  const text = formatPrometheus({
    ...BASE,
    workerResources: [
      usage(0, 1, 100, 10), // the old generation's worker, still draining
      usage(0, 2, 101, 20),
      usage(0, 2, 102, 5), // its replacement, booting beside it (a recycle)
      usage(1, 2, 103, 7),
    ],
  });
  assertEquals(lines(text, "arbiter_worker_memory_bytes"), [
    'arbiter_worker_memory_bytes{worker="0",generation="1",source="pss"} 10',
    'arbiter_worker_memory_bytes{worker="0",generation="2",source="pss"} 25',
    'arbiter_worker_memory_bytes{worker="1",generation="2",source="pss"} 7',
  ]);
  assertEquals(
    lines(text, "arbiter_worker_processes")[1],
    'arbiter_worker_processes{worker="0",generation="2"} 2',
  );
  assertEquals(
    lines(text, "arbiter_worker_cpu_seconds_total")[1],
    'arbiter_worker_cpu_seconds_total{worker="0",generation="2"} 1',
  );
  assert(!/^arbiter_worker_(memory|resident|processes|cpu)[^\n]*pid=/m.test(text), text);
});

Deno.test("arbiter_worker_info maps slot and generation to the pid; build info names the versions", () => {
  const text = formatPrometheus({
    ...BASE,
    workerInfo: [{ id: 1, pid: 11, generation: 2 }, { id: 0, pid: 10, generation: 2 }],
    build: { version: "0.1.0", deno: "2.9.6", v8: "14.0", typescript: "5.9.2" },
  });
  assertEquals(lines(text, "arbiter_worker_info"), [
    'arbiter_worker_info{worker="0",generation="2",pid="10"} 1',
    'arbiter_worker_info{worker="1",generation="2",pid="11"} 1',
  ]);
  assertEquals(lines(text, "arbiter_build_info"), [
    'arbiter_build_info{version="0.1.0",deno="2.9.6",v8="14.0",typescript="5.9.2"} 1',
  ]);
  const stamped = formatPrometheus({
    ...BASE,
    build: { version: "0.1.0", deno: "2", v8: "1", typescript: "5", commit: "abc123" },
  });
  assert(lines(stamped, "arbiter_build_info")[0].includes(',commit="abc123"}'), stamped);
});

Deno.test("process_* series: present when read, process_max_fds left out when unlimited", () => {
  const process = {
    residentBytes: 50_000_000,
    virtualBytes: 900_000_000,
    cpuSeconds: 1.25,
    openFds: 20,
    maxFds: 1024,
    startTimeSeconds: 1_790_000_000.5,
  };
  const text = formatPrometheus({ ...BASE, process });
  assertEquals(lines(text, "process_cpu_seconds_total"), ["process_cpu_seconds_total 1.25"]);
  assertEquals(lines(text, "process_resident_memory_bytes"), [
    "process_resident_memory_bytes 50000000",
  ]);
  assertEquals(lines(text, "process_open_fds"), ["process_open_fds 20"]);
  assertEquals(lines(text, "process_max_fds"), ["process_max_fds 1024"]);
  assertEquals(lines(text, "process_start_time_seconds"), [
    "process_start_time_seconds 1790000000.5",
  ]);
  assert(text.includes("# TYPE process_cpu_seconds_total counter\n"));
  const unlimited = formatPrometheus({ ...BASE, process: { ...process, maxFds: undefined } });
  assert(!unlimited.includes("process_max_fds"), unlimited);
  assert(!formatPrometheus(BASE).includes("process_"), "absent when not read");
});
