import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
// A real Prometheus text-format parser (https://www.npmjs.com/package/parse-prometheus-text-format),
// used by this test only, so it is imported inline rather than listed in deno.json.
// deno-lint-ignore no-import-prefix
import parsePrometheus from "npm:parse-prometheus-text-format@1.1.1";
import { ArbiterError, ExitCode } from "../errors.ts";
import { rejectsWith } from "./_testing.ts";
import {
  EXIT_REASONS,
  formatPrometheus,
  type MetricsSnapshot,
  type MetricsSource,
  PROMETHEUS_CONTENT_TYPE,
  startMetricsServer,
} from "./metrics.ts";

const SNAPSHOT: MetricsSnapshot = {
  workers: { booting: 1, ready: 4, stopping: 2 },
  workersDesired: 5,
  restarts: 7,
  bootFailures: 3,
  timeouts: 1,
  reloads: 2,
  exits: { stopped: 10, sigkill: 1, error: 2, boot_failure: 3, timeout: 1 },
  uptimeSeconds: 3600.1234,
  generation: 3,
};

type Parsed = {
  name: string;
  help: string;
  type: string;
  metrics: { value: string; labels?: Record<string, string> }[];
}[];

/** The text format 0.0.4 line grammar, stricter than the parser about what we emit. */
const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL_VALUE = '"(?:[^"\\\\\\n]|\\\\["\\\\n])*"';
const SAMPLE_LINE = new RegExp(
  `^(${NAME})(\\{[a-zA-Z_][a-zA-Z0-9_]*=${LABEL_VALUE}(,[a-zA-Z_][a-zA-Z0-9_]*=${LABEL_VALUE})*\\})? ` +
    `(-?[0-9]+(\\.[0-9]+)?(e[+-]?[0-9]+)?|NaN|[+-]Inf)$`,
);

function checkGrammar(text: string): void {
  assert(text.endsWith("\n"), "ends with a line break");
  const lines = text.slice(0, -1).split("\n");
  const typed = new Set<string>();
  for (const [i, line] of lines.entries()) {
    const help = line.match(new RegExp(`^# HELP (${NAME}) \\S.*$`));
    const type = line.match(new RegExp(`^# TYPE (${NAME}) (counter|gauge)$`));
    if (help) {
      assertEquals(lines[i + 1].startsWith(`# TYPE ${help[1]} `), true, "HELP then TYPE");
    } else if (type) {
      assert(!typed.has(type[1]), `one TYPE line per family: ${type[1]}`);
      typed.add(type[1]);
    } else {
      const sample = line.match(SAMPLE_LINE);
      assert(sample, `not a valid sample line: ${JSON.stringify(line)}`);
      assert(typed.has(sample[1]), `sample after its TYPE line: ${line}`);
    }
  }
}

function family(parsed: Parsed, name: string) {
  const f = parsed.find((f) => f.name === name);
  assert(f, `family ${name} missing`);
  return f;
}

function value(parsed: Parsed, name: string, labels?: Record<string, string>): number {
  const m = family(parsed, name).metrics.find((m) =>
    JSON.stringify(m.labels ?? {}) === JSON.stringify(labels ?? {})
  );
  assert(m, `${name}${JSON.stringify(labels ?? {})} missing`);
  return Number(m.value);
}

Deno.test("formatPrometheus: every family parses, with HELP, TYPE and the snapshot's values", () => {
  const text = formatPrometheus(SNAPSHOT);
  checkGrammar(text);
  const parsed = parsePrometheus(text) as Parsed;
  const types = Object.fromEntries(parsed.map((f) => [f.name, f.type]));
  assertEquals(types, {
    arbiter_workers: "GAUGE",
    arbiter_workers_desired: "GAUGE",
    arbiter_worker_restarts_total: "COUNTER",
    arbiter_worker_boot_failures_total: "COUNTER",
    arbiter_worker_timeouts_total: "COUNTER",
    arbiter_reloads_total: "COUNTER",
    arbiter_worker_exits_total: "COUNTER",
    arbiter_master_uptime_seconds: "GAUGE",
    arbiter_generation: "GAUGE",
  });
  for (const f of parsed) assert(f.help.length > 10, `HELP of ${f.name}`);
  assertEquals(value(parsed, "arbiter_workers", { state: "booting" }), 1);
  assertEquals(value(parsed, "arbiter_workers", { state: "ready" }), 4);
  assertEquals(value(parsed, "arbiter_workers", { state: "stopping" }), 2);
  assertEquals(value(parsed, "arbiter_workers_desired"), 5);
  assertEquals(value(parsed, "arbiter_worker_restarts_total"), 7);
  assertEquals(value(parsed, "arbiter_worker_boot_failures_total"), 3);
  assertEquals(value(parsed, "arbiter_worker_timeouts_total"), 1);
  assertEquals(value(parsed, "arbiter_reloads_total"), 2);
  assertEquals(value(parsed, "arbiter_master_uptime_seconds"), 3600.123);
  assertEquals(value(parsed, "arbiter_generation"), 3);
  // Every reason is present from the start, 0 when nothing happened.
  const exits = family(parsed, "arbiter_worker_exits_total").metrics;
  assertEquals(exits.map((m) => m.labels?.reason), [...EXIT_REASONS]);
  assertEquals(value(parsed, "arbiter_worker_exits_total", { reason: "stopped" }), 10);
  assertEquals(value(parsed, "arbiter_worker_exits_total", { reason: "sigkill" }), 1);
  assertEquals(value(parsed, "arbiter_worker_exits_total", { reason: "exited" }), 0);
});

Deno.test("formatPrometheus: notify messages dropped from foreign senders, when counted", () => {
  const without = parsePrometheus(formatPrometheus(SNAPSHOT)) as Parsed;
  assert(!without.some((f) => f.name === "arbiter_notify_dropped_total"), "absent when unknown");
  const text = formatPrometheus({ ...SNAPSHOT, notifyDropped: 7 });
  checkGrammar(text);
  const parsed = parsePrometheus(text) as Parsed;
  assertEquals(family(parsed, "arbiter_notify_dropped_total").type, "COUNTER");
  assertEquals(value(parsed, "arbiter_notify_dropped_total"), 7);
});

Deno.test("formatPrometheus: label values are escaped; odd numbers stay valid", () => {
  const text = formatPrometheus({
    ...SNAPSHOT,
    exits: { ['we"ird\\reason\n']: 2 } as MetricsSnapshot["exits"],
    uptimeSeconds: NaN,
    generation: Infinity,
  });
  checkGrammar(text);
  assert(text.includes('arbiter_worker_exits_total{reason="we\\"ird\\\\reason\\n"} 2\n'));
  assert(text.includes("arbiter_master_uptime_seconds NaN\n"));
  assert(text.includes("arbiter_generation +Inf\n"));
  const parsed = parsePrometheus(text) as Parsed;
  assertEquals(
    family(parsed, "arbiter_worker_exits_total").metrics.length,
    EXIT_REASONS.length + 1,
  );
});

Deno.test("formatPrometheus: a zero snapshot", () => {
  const text = formatPrometheus({
    workers: { booting: 0, ready: 0, stopping: 0 },
    workersDesired: 1,
    restarts: 0,
    bootFailures: 0,
    timeouts: 0,
    reloads: 0,
    exits: {},
    uptimeSeconds: 0,
    generation: 1,
  });
  checkGrammar(text);
  assertEquals(text.split("\n").filter((l) => l.startsWith("# TYPE")).length, 9);
  assert(text.includes('arbiter_worker_exits_total{reason="stopped"} 0\n'));
});

class Source implements MetricsSource {
  isAlive = true;
  isReady = false;
  fail = false;
  alive() {
    return this.isAlive;
  }
  ready() {
    return this.isReady;
  }
  snapshot() {
    if (this.fail) throw new Error("no snapshot");
    return SNAPSHOT;
  }
}

async function get(port: number, path: string, init: RequestInit = {}) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, init);
  return { status: res.status, type: res.headers.get("content-type"), body: await res.text() };
}

Deno.test("metrics server: /livez, /readyz and /metrics", async () => {
  const source = new Source();
  const server = await startMetricsServer("127.0.0.1", 0, source);
  try {
    assert(server.port > 0);
    assertEquals(await get(server.port, "/livez"), {
      status: 200,
      type: "text/plain; charset=utf-8",
      body: "ok\n",
    });
    assertEquals((await get(server.port, "/readyz")).status, 503);
    source.isReady = true;
    assertEquals(await get(server.port, "/readyz"), {
      status: 200,
      type: "text/plain; charset=utf-8",
      body: "ready\n",
    });
    source.isReady = false; // e.g. a stop began
    assertEquals((await get(server.port, "/readyz")).body, "not ready\n");
    source.isAlive = false;
    assertEquals((await get(server.port, "/livez")).status, 503);

    const metrics = await get(server.port, "/metrics");
    assertEquals(metrics.status, 200);
    assertEquals(metrics.type, PROMETHEUS_CONTENT_TYPE);
    assertEquals(metrics.body, formatPrometheus(SNAPSHOT));
    assertEquals(value(parsePrometheus(metrics.body) as Parsed, "arbiter_generation"), 3);

    const head = await fetch(`http://127.0.0.1:${server.port}/metrics`, { method: "HEAD" });
    await head.body?.cancel();
    assertEquals(head.status, 200);
  } finally {
    await server.close();
  }
});

Deno.test("metrics server: unknown paths, wrong methods and a failing source", async () => {
  const source = new Source();
  const server = await startMetricsServer("127.0.0.1", 0, source);
  try {
    assertEquals((await get(server.port, "/")).status, 404);
    assertEquals((await get(server.port, "/metrics/x")).status, 404);
    const post = await fetch(`http://127.0.0.1:${server.port}/metrics`, { method: "POST" });
    assertEquals(post.status, 405);
    assertEquals(post.headers.get("allow"), "GET, HEAD");
    await post.body?.cancel();
    source.fail = true;
    const failed = await get(server.port, "/metrics");
    assertEquals(failed.status, 500);
    assertMatch(failed.body, /no snapshot/);
    source.fail = false;
    assertEquals((await get(server.port, "/metrics")).status, 200);
  } finally {
    await server.close();
    await server.close();
  }
  await rejectsWith(() => fetch(`http://127.0.0.1:${server.port}/livez`), TypeError, "");
});

Deno.test("metrics server: a port in use is an ArbiterError (exit 1) naming the address", async () => {
  const first = await startMetricsServer("127.0.0.1", 0, new Source());
  try {
    const error = await rejectsWith(
      () => startMetricsServer("127.0.0.1", first.port, new Source()),
      ArbiterError,
      `metrics_bind: cannot listen on 127.0.0.1:${first.port}: address already in use`,
    );
    assertEquals(error.exitCode, ExitCode.Runtime);
  } finally {
    await first.close();
  }
});
