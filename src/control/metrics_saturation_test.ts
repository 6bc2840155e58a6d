import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
// The same real Prometheus text-format parser metrics_test.ts uses.
// deno-lint-ignore no-import-prefix
import parsePrometheus from "npm:parse-prometheus-text-format@1.1.1";
import { parseBind } from "../config/bind.ts";
import { sampleTrees } from "../observe/tree.ts";
import { sampleQueues } from "../observe/queue.ts";
import { openListener } from "../sockets/listeners.ts";
import { formatPrometheus, type MetricsSnapshot } from "./metrics.ts";

const BASE: MetricsSnapshot = {
  workers: { booting: 0, ready: 1, stopping: 0 },
  workersDesired: 1,
  restarts: 0,
  bootFailures: 0,
  timeouts: 0,
  reloads: 0,
  exits: {},
  uptimeSeconds: 1,
  generation: 1,
};

type Parsed = {
  name: string;
  type: string;
  metrics: { value: string; labels?: Record<string, string> }[];
}[];

function family(text: string, name: string) {
  return (parsePrometheus(text) as Parsed).find((f) => f.name === name);
}

Deno.test("saturation families are left out when the master has no data for them", () => {
  const text = formatPrometheus(BASE);
  for (const name of ["arbiter_listen_queue_length", "arbiter_worker_resident_memory_bytes"]) {
    assert(!text.includes(name), name);
  }
});

Deno.test("a real listener's queue and a real process's memory, as Prometheus parses them", async () => {
  const listener = await openListener(parseBind("127.0.0.1:0", "/"), { backlog: 100 });
  const port = Number(listener.address.split(":").pop());
  const conns = [
    await Deno.connect({ hostname: "127.0.0.1", port }),
    await Deno.connect({ hostname: "127.0.0.1", port }),
  ];
  try {
    let queues = sampleQueues([listener]);
    for (let i = 0; i < 500 && queues[0].length < 2; i++) {
      await new Promise((r) => setTimeout(r, 5)); // the kernel finishes the handshake
      queues = sampleQueues([listener]);
    }
    const me = sampleTrees([Deno.pid]).get(Deno.pid)!;
    const text = formatPrometheus({
      ...BASE,
      listenQueues: queues,
      workerResources: [{ id: 0, generation: 1, pid: Deno.pid, ...me }],
      autoscale: { min: 1, max: 8 },
    });
    const length = family(text, "arbiter_listen_queue_length")!;
    assertEquals(length.type, "GAUGE");
    assertEquals(length.metrics, [{ value: "2", labels: { listener: listener.address } }]);
    assertEquals(family(text, "arbiter_listen_queue_capacity")!.metrics[0].value, "100");
    const rss = family(text, "arbiter_worker_resident_memory_bytes")!;
    assertEquals(rss.metrics[0].labels, { worker: "0", generation: "1" });
    assert(Number(rss.metrics[0].value) > 1024 * 1024);
    const memory = family(text, "arbiter_worker_memory_bytes")!;
    assertEquals(memory.metrics[0].labels, { worker: "0", generation: "1", source: "pss" });
    assert(Number(memory.metrics[0].value) > 1024 * 1024);
    assert(Number(family(text, "arbiter_worker_processes")!.metrics[0].value) >= 1);
    assertEquals(family(text, "arbiter_worker_cpu_seconds_total")!.type, "COUNTER");
    assertEquals(family(text, "arbiter_autoscale_workers_max")!.metrics[0].value, "8");
  } finally {
    for (const c of conns) c.close();
    listener.close();
  }
});
