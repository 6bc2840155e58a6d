/**
 * The metrics endpoint (`metrics_bind = "HOST:PORT"`, docs/contract.md, "Operations"): plain HTTP
 * for Kubernetes probes and Prometheus.
 *
 * | path | answer |
 * |---|---|
 * | `/livez` | 200 `ok` while the master loop is alive, else 503 |
 * | `/readyz` | 200 `ready` while enough workers are ready, else 503 (also during a stop) |
 * | `/metrics` | Prometheus text format 0.0.4 from {@link formatPrometheus} |
 *
 * Invariants:
 * - The server only reads: every answer comes from the {@link MetricsSource}
 *   at the time of the request; nothing here changes the master.
 * - A failing source gives a 500, never a crash; unknown paths 404, methods
 *   other than GET and HEAD 405. Connections, sizes and times are bounded by
 *   {@link serveBounded} with its defaults (no request body).
 *
 * @module
 */

import { serveBounded } from "../http/bounded_server.ts";
import { listenErrorReason } from "../sockets/errors.ts";
import { ArbiterError, ExitCode } from "../errors.ts";

export { EXIT_REASONS, type ExitReason } from "../core/exit_reasons.ts";
import { EXIT_REASONS, type ExitReason } from "../core/exit_reasons.ts";

/** What `/metrics` reports: the master's state and counters at one moment. */
export interface MetricsSnapshot {
  /** Live workers by state. */
  workers: { booting: number; ready: number; stopping: number };
  /** The number of workers the master aims to run. */
  workersDesired: number;
  /** Workers replaced after dying unasked or failing to boot (all slots). */
  restarts: number;
  /** Workers that ended before becoming ready, plus spawns that failed. */
  bootFailures: number;
  /** Workers stopped by the watchdog. */
  timeouts: number;
  /** Reloads that started a new generation. */
  reloads: number;
  /** Exited workers by reason; reasons not given count 0. */
  exits: Partial<Record<ExitReason, number>>;
  uptimeSeconds: number;
  /** The current generation. */
  generation: number;
  /**
   * Notify messages dropped because they did not come from the worker the
   * socket belongs to (docs/contract.md, "Security"); absent when the master has no notify hub.
   */
  notifyDropped?: number;
  /** The master's own resilience counters (docs/resilience.md); each absent when not known. */
  resilience?: ResilienceCounters;
  /** Saturation: each listener's accept queue, when it could be read. */
  listenQueues?: readonly { listener: string; length: number; capacity: number }[];
  /** Saturation: each live worker's resident memory and CPU time. */
  workerResources?: readonly WorkerResources[];
  /** Saturation: the autoscaling bounds, when autoscale is on. */
  autoscale?: { min: number; max: number };
}

/** What `/metrics` says about stalls, lost output and slots that cannot boot. */
export interface ResilienceCounters {
  /** Output lines the master dropped because its output was not read (or failed). */
  logLinesDropped?: number;
  /** Times the master found it had not run (paused, throttled) and re-armed deadlines. */
  stalls: number;
  /** Slots whose worker failed to boot the same way on each of the last tries. */
  cannotBoot: number;
  /** Listeners found not listening (a worker shut one down) and restored. */
  listenersRestored?: number;
}

/** One worker's resources, labelled by slot and pid (two workers share a slot during a rollout). */
export interface WorkerResources {
  id: number;
  pid: number;
  /** The process group's PSS, or RSS where PSS cannot be read (`memorySource`). */
  memoryBytes: number;
  memorySource: "pss" | "rss";
  /** The process group's RSS sum. */
  rssBytes: number;
  /** Processes in the group. */
  processes: number;
  /** The group's CPU seconds, reaped children included. */
  cpuSeconds: number;
}

/** Where the metrics server gets its answers. Called on every request. */
export interface MetricsSource {
  /** The master loop is alive (`/livez`): it answers a probe through its queue. */
  alive(): boolean | Promise<boolean>;
  /** Enough workers are ready to serve, and the master is not stopping (`/readyz`). */
  ready(): boolean;
  snapshot(): MetricsSnapshot;
}

/** The `Content-Type` of the Prometheus text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** A running metrics server. */
export interface MetricsServer {
  /** The port it listens on (the real one when 0 was asked). */
  readonly port: number;
  /** Stop serving; in-flight requests finish. */
  close(): Promise<void>;
}

/**
 * Serve `/livez`, `/readyz` and `/metrics` on `hostname:port`.
 *
 * @param hostname Address to listen on, without brackets (`0.0.0.0`, `::`).
 * @param port TCP port; 0 picks a free one (see `port` of the result).
 * @param source What the answers are made of.
 * @throws {ArbiterError} (exit 1) when the address cannot be bound.
 *
 * @example Usage
 * ```ts
 * import { type MetricsSnapshot, startMetricsServer } from "./metrics.ts";
 * declare const master: { isReady(): boolean; metrics(): MetricsSnapshot };
 * const metrics = await startMetricsServer("0.0.0.0", 9100, {
 *   alive: () => true,
 *   ready: () => master.isReady(),
 *   snapshot: () => master.metrics(),
 * });
 * await metrics.close();
 * ```
 */
export function startMetricsServer(
  hostname: string,
  port: number,
  source: MetricsSource,
): Promise<MetricsServer> {
  let listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>;
  try {
    listener = Deno.listen({ hostname, port });
  } catch (error) {
    const host = hostname.includes(":") ? `[${hostname}]` : hostname;
    const reason = listenErrorReason(error);
    return Promise.reject(
      new ArbiterError(
        ExitCode.Runtime,
        `metrics_bind: cannot listen on ${host}:${port}: ${reason}`,
        {
          cause: error,
        },
      ),
    );
  }
  const server = serveBounded({
    name: "metrics",
    listener,
    handler: (req) => handleMetricsRequest(req, source),
    errorResponse: (status, body) => text(status, `${body}\n`),
  });
  let closed: Promise<void> | undefined;
  return Promise.resolve({
    port: listener.addr.port,
    close: () => closed ??= server.close(),
  });
}

/** Answer one metrics request. Never throws. Exported for tests. */
export async function handleMetricsRequest(
  req: Request,
  source: MetricsSource,
): Promise<Response> {
  const { pathname } = new URL(req.url);
  const known = pathname === "/livez" || pathname === "/readyz" || pathname === "/metrics";
  if (!known) return text(404, "not found: try /livez, /readyz or /metrics\n");
  if (req.method !== "GET" && req.method !== "HEAD") {
    return text(405, `${pathname} expects GET\n`, { Allow: "GET, HEAD" });
  }
  try {
    switch (pathname) {
      case "/livez":
        return (await source.alive()) ? text(200, "ok\n") : text(503, "not alive\n");
      case "/readyz":
        return source.ready() ? text(200, "ready\n") : text(503, "not ready\n");
      default:
        return new Response(formatPrometheus(source.snapshot()), {
          headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
        });
    }
  } catch (error) {
    return text(500, `internal error: ${message(error)}\n`);
  }
}

function text(status: number, body: string, headers: HeadersInit = {}): Response {
  return new Response(body, {
    status,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "cache-control": "no-store",
      ...headers,
    },
  });
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ---------------------------------------------------------------------------
// Prometheus text format 0.0.4

type Family = {
  name: string;
  type: "gauge" | "counter";
  help: string;
  samples: { labels?: Record<string, string>; value: number }[];
};

/**
 * Render a snapshot in the Prometheus text exposition format 0.0.4: for
 * each metric family a `# HELP` and a `# TYPE` line, then its samples; every
 * label value of a labelled family is present (0 when nothing happened), so
 * `rate()` and alerts work from the first scrape.
 *
 * @example Usage
 * ```ts
 * import { formatPrometheus, type MetricsSnapshot } from "./metrics.ts";
 * declare const snapshot: MetricsSnapshot; // with 4 ready workers
 * formatPrometheus(snapshot).includes('arbiter_workers{state="ready"} 4'); // true
 * ```
 */
export function formatPrometheus(s: MetricsSnapshot): string {
  const families: Family[] = [
    {
      name: "arbiter_workers",
      type: "gauge",
      help: "Live worker processes by state.",
      samples: (["booting", "ready", "stopping"] as const).map((state) => ({
        labels: { state },
        value: s.workers[state],
      })),
    },
    {
      name: "arbiter_workers_desired",
      type: "gauge",
      help: "Number of workers the master aims to run.",
      samples: [{ value: s.workersDesired }],
    },
    {
      name: "arbiter_worker_restarts_total",
      type: "counter",
      help: "Workers replaced after dying unasked or failing to boot.",
      samples: [{ value: s.restarts }],
    },
    {
      name: "arbiter_worker_boot_failures_total",
      type: "counter",
      help: "Workers that ended before becoming ready, and spawns that failed.",
      samples: [{ value: s.bootFailures }],
    },
    {
      name: "arbiter_worker_timeouts_total",
      type: "counter",
      help: "Workers stopped by the watchdog (no WATCHDOG=1 within timeout).",
      samples: [{ value: s.timeouts }],
    },
    {
      name: "arbiter_reloads_total",
      type: "counter",
      help: "Reloads that started a new generation of workers.",
      samples: [{ value: s.reloads }],
    },
    {
      name: "arbiter_worker_exits_total",
      type: "counter",
      help: "Exited workers by reason.",
      samples: [
        ...EXIT_REASONS,
        ...Object.keys(s.exits).filter((r) => !(EXIT_REASONS as readonly string[]).includes(r)),
      ].map((reason) => ({
        labels: { reason },
        value: s.exits[reason as ExitReason] ?? 0,
      })),
    },
    {
      name: "arbiter_master_uptime_seconds",
      type: "gauge",
      help: "Seconds since the master started.",
      samples: [{ value: s.uptimeSeconds }],
    },
    {
      name: "arbiter_generation",
      type: "gauge",
      help: "The current generation of workers (1 at start, one more per reload).",
      samples: [{ value: s.generation }],
    },
  ];
  if (s.notifyDropped !== undefined) {
    families.push({
      name: "arbiter_notify_dropped_total",
      type: "counter",
      help: "Notify messages dropped: not sent by the worker the socket belongs to.",
      samples: [{ value: s.notifyDropped }],
    });
  }
  if (s.resilience) families.push(...resilienceFamilies(s.resilience));
  families.push(...saturationFamilies(s));
  let out = "";
  for (const f of families) {
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    for (const sample of f.samples) {
      const labels = sample.labels === undefined
        ? ""
        : `{${
          Object.entries(sample.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")
        }}`;
      out += `${f.name}${labels} ${formatValue(sample.value)}\n`;
    }
  }
  return out;
}

/**
 * The saturation families, each only when its data is in the snapshot: a
 * master that cannot read a queue (no unix_diag) leaves the series out
 * rather than reporting a false 0.
 */
function saturationFamilies(s: MetricsSnapshot): Family[] {
  const families: Family[] = [];
  if (s.listenQueues !== undefined) {
    const per = (value: (q: { length: number; capacity: number }) => number) =>
      s.listenQueues!.map((q) => ({ labels: { listener: q.listener }, value: value(q) }));
    families.push({
      name: "arbiter_listen_queue_length",
      type: "gauge",
      help: "Connections waiting in the kernel's accept queue of a listener (every worker busy).",
      samples: per((q) => q.length),
    }, {
      name: "arbiter_listen_queue_capacity",
      type: "gauge",
      help: "Most connections the accept queue of a listener holds (its effective backlog).",
      samples: per((q) => q.capacity),
    });
  }
  if (s.workerResources !== undefined) {
    const per = (value: (w: WorkerResources) => number) =>
      s.workerResources!.map((w) => ({
        labels: { worker: String(w.id), pid: String(w.pid) },
        value: value(w),
      }));
    families.push({
      name: "arbiter_worker_memory_bytes",
      type: "gauge",
      help: "Memory of a worker's process group: PSS from /proc/PID/smaps_rollup (a shared " +
        'copy-on-write page split between its sharers), RSS where that is unreadable (source="rss"). ' +
        "What max_worker_memory compares.",
      samples: s.workerResources!.map((w) => ({
        labels: { worker: String(w.id), pid: String(w.pid), source: w.memorySource },
        value: w.memoryBytes,
      })),
    }, {
      name: "arbiter_worker_resident_memory_bytes",
      type: "gauge",
      help: "Resident memory (RSS) summed over a worker's process group, from /proc " +
        "(a page shared by several processes counts once per process).",
      samples: per((w) => w.rssBytes),
    }, {
      name: "arbiter_worker_processes",
      type: "gauge",
      help: "Processes in a worker's process group, the worker itself included.",
      samples: per((w) => w.processes),
    }, {
      name: "arbiter_worker_cpu_seconds_total",
      type: "counter",
      help: "User and system CPU time of a worker's process group (exited children a member " +
        "reaped included), from /proc.",
      samples: per((w) => w.cpuSeconds),
    });
  }
  if (s.autoscale !== undefined) {
    families.push({
      name: "arbiter_autoscale_workers_min",
      type: "gauge",
      help: "Fewest workers autoscaling keeps (workers_min).",
      samples: [{ value: s.autoscale.min }],
    }, {
      name: "arbiter_autoscale_workers_max",
      type: "gauge",
      help: "Most workers autoscaling starts (workers_max).",
      samples: [{ value: s.autoscale.max }],
    });
  }
  return families;
}

function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

function escapeLabel(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  if (Number.isInteger(value)) return String(value);
  return String(Math.round(value * 1000) / 1000);
}

function resilienceFamilies(r: ResilienceCounters): Family[] {
  const families: Family[] = [
    {
      name: "arbiter_master_stalls_total",
      type: "counter",
      help: "Times the master had not run for a while (paused, throttled, blocked) and re-armed " +
        "the worker deadlines that fell due meanwhile.",
      samples: [{ value: r.stalls }],
    },
    {
      name: "arbiter_workers_cannot_boot",
      type: "gauge",
      help: "Slots whose worker failed to boot the same way on each of the last tries.",
      samples: [{ value: r.cannotBoot }],
    },
  ];
  if (r.logLinesDropped !== undefined) {
    families.push({
      name: "arbiter_log_lines_dropped_total",
      type: "counter",
      help: "Log and prefixed worker lines dropped because the output was not read, or failed.",
      samples: [{ value: r.logLinesDropped }],
    });
  }
  if (r.listenersRestored !== undefined) {
    families.push({
      name: "arbiter_listener_restores_total",
      type: "counter",
      help: "Listeners found not listening (shut down by a worker) and made to listen again.",
      samples: [{ value: r.listenersRestored }],
    });
  }
  return families;
}
