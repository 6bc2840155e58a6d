/**
 * The optional metric families of `/metrics` (docs/operations.md,
 * "Metrics"): the master's resilience counters, saturation (listen queues,
 * each worker's memory and CPU, autoscaling bounds), `arbiter_worker_info`,
 * `arbiter_build_info` and the master's standard `process_*` series. Each is
 * rendered only when its data is in the snapshot. Pure.
 *
 * Per-worker series are labelled by slot (`worker`) and `generation`, never
 * by pid: a worker restarted in its slot continues the slot's series instead
 * of starting a new one, and a reload starts one new series per slot.
 * `arbiter_worker_info{worker, generation, pid}` maps them to pids. When two
 * processes share a slot within a generation (for the seconds a recycled
 * worker's replacement boots beside it), their values are summed: the
 * slot's footprint at that moment, so no two samples carry the same labels.
 *
 * @module
 */

import { type Family, single } from "./prometheus.ts";
import type {
  BuildInfo,
  MetricsSnapshot,
  ProcessMetrics,
  ResilienceCounters,
  WorkerInfo,
  WorkerResources,
} from "./metrics_snapshot.ts";

/** The resilience families: stalls and slots that cannot boot always, the rest when counted. */
export function resilienceFamilies(r: ResilienceCounters): Family[] {
  const families: Family[] = [
    {
      name: "arbiter_master_stalls_total",
      type: "counter",
      help: "Times the master had not run for a while (paused, throttled, blocked) and re-armed " +
        "the worker deadlines that fell due meanwhile.",
      samples: [{ value: r.stalls }],
    },
    single(
      "arbiter_workers_cannot_boot",
      "gauge",
      "Slots whose worker failed to boot the same way on each of the last tries.",
      r.cannotBoot,
    ),
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

/** Samples per slot and generation (plus `extra` labels), values of a shared slot summed. */
function perWorker(
  workers: readonly WorkerResources[],
  value: (w: WorkerResources) => number,
  extra: (w: WorkerResources) => Record<string, string> = () => ({}),
): Family["samples"] {
  const byLabels = new Map<string, { labels: Record<string, string>; value: number }>();
  for (const w of workers) {
    const labels = { worker: String(w.id), generation: String(w.generation), ...extra(w) };
    const key = JSON.stringify(labels);
    const seen = byLabels.get(key);
    if (seen) seen.value += value(w);
    else byLabels.set(key, { labels, value: value(w) });
  }
  return [...byLabels.values()];
}

/**
 * The saturation families, each only when its data is in the snapshot: a
 * master that cannot read a queue (no unix_diag) leaves the series out
 * rather than reporting a false 0.
 */
export function saturationFamilies(s: MetricsSnapshot): Family[] {
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
  const workers = s.workerResources;
  if (workers !== undefined) {
    families.push({
      name: "arbiter_worker_memory_bytes",
      type: "gauge",
      help: "Memory of a worker's process group: PSS from /proc/PID/smaps_rollup (a shared " +
        'copy-on-write page split between its sharers), RSS where that is unreadable (source="rss"). ' +
        "What max_worker_memory compares.",
      samples: perWorker(workers, (w) => w.memoryBytes, (w) => ({ source: w.memorySource })),
    }, {
      name: "arbiter_worker_resident_memory_bytes",
      type: "gauge",
      help: "Resident memory (RSS, not PSS) summed over a worker's process group, from /proc " +
        "(a page shared by several processes counts once per process).",
      samples: perWorker(workers, (w) => w.rssBytes),
    }, {
      name: "arbiter_worker_processes",
      type: "gauge",
      help: "Processes in a worker's process group, the worker itself included.",
      samples: perWorker(workers, (w) => w.processes),
    }, {
      name: "arbiter_worker_cpu_seconds_total",
      type: "counter",
      help: "User and system CPU time of a worker's process group (exited children a member " +
        "reaped included), from /proc.",
      samples: perWorker(workers, (w) => w.cpuSeconds),
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

/** `arbiter_worker_info`: 1 for each live worker, mapping slot and generation to its pid. */
export function workerInfoFamilies(workers: readonly WorkerInfo[]): Family[] {
  return [{
    name: "arbiter_worker_info",
    type: "gauge",
    help: "1 for each live worker process: its slot (worker), generation and pid. Join on " +
      "worker and generation to find the pid behind a per-worker series.",
    samples: [...workers]
      .sort((a, b) => a.id - b.id || a.generation - b.generation || a.pid - b.pid)
      .map((w) => ({
        labels: { worker: String(w.id), generation: String(w.generation), pid: String(w.pid) },
        value: 1,
      })),
  }];
}

/** `arbiter_build_info`: 1, labelled with the versions (and the commit when stamped). */
export function buildFamilies(b: BuildInfo): Family[] {
  return [{
    name: "arbiter_build_info",
    type: "gauge",
    help: "1, labelled with arbiter's version, the Deno, V8 and TypeScript versions it runs on, " +
      "and the git commit when the executable was stamped with one.",
    samples: [{
      labels: {
        version: b.version,
        deno: b.deno,
        v8: b.v8,
        typescript: b.typescript,
        ...(b.commit === undefined ? {} : { commit: b.commit }),
      },
      value: 1,
    }],
  }];
}

/** The standard `process_*` families of the master process (names as client libraries use). */
export function processFamilies(p: ProcessMetrics): Family[] {
  const families: Family[] = [
    single(
      "process_cpu_seconds_total",
      "counter",
      "User and system CPU time of the master process (workers not included), seconds.",
      p.cpuSeconds,
    ),
    single(
      "process_resident_memory_bytes",
      "gauge",
      "Resident memory (RSS, not PSS) of the master process, bytes (workers not included).",
      p.residentBytes,
    ),
    single(
      "process_virtual_memory_bytes",
      "gauge",
      "Virtual memory size of the master process, bytes.",
      p.virtualBytes,
    ),
    single("process_open_fds", "gauge", "Open file descriptors of the master process.", p.openFds),
  ];
  if (p.maxFds !== undefined) {
    families.push({
      name: "process_max_fds",
      type: "gauge",
      help: "Most file descriptors the master process may open (its RLIMIT_NOFILE soft limit).",
      samples: [{ value: p.maxFds }],
    });
  }
  families.push({
    name: "process_start_time_seconds",
    type: "gauge",
    help: "Start time of the master process, seconds since the Unix epoch.",
    samples: [{ value: p.startTimeSeconds }],
  });
  return families;
}
