/**
 * The operator's view of a running master: the control socket (`arbiter
 * ctl`), the metrics endpoint (`/livez`, `/readyz`, `/metrics`) and the
 * counters behind it. Off entirely unless `control_socket` / `metrics_bind`
 * are set, so the master is no heavier without them.
 *
 * Control requests never act directly: each becomes an event on the master's
 * queue, handled in turn like a signal, and its answer is the reply the core
 * decided. Status and metrics (counters included) read the core's snapshot,
 * which is a copy.
 *
 * Part of the executor: it decides nothing; every decision is the core's
 * (src/core/), and this only carries one out or reports what happened.
 *
 * @module
 */

import { parseHostPort } from "../config/bind.ts";
import type { Config } from "../config/types.ts";
import type { ControlAction, ControlResult, LogsReport, RecentQuery } from "../control/api.ts";
import {
  type MetricsServer,
  type MetricsSnapshot,
  startMetricsServer,
} from "../control/metrics.ts";
import {
  type SaturationView,
  withSaturationMetrics,
  withSaturationStatus,
} from "../control/saturation_report.ts";
import { metricsSnapshot, statusReport } from "../control/report.ts";
import { type ControlServer, startControlServer } from "../control/server.ts";
import type { CoreSnapshot } from "../core/core.ts";
import type { Event, Reply } from "../core/events.ts";
import { sampleSelf } from "../observe/self.ts";
import { buildInfo } from "../version.ts";

/** How long a control request waits for the loop's answer. */
const REPLY_TIMEOUT_MS = 10_000;
/** How long `/livez` waits for the loop to reach its probe. */
const PROBE_TIMEOUT_MS = 2000;

/** What the operations need from the master. */
export interface OperationsHost<C> {
  /** The core's current snapshot, or undefined before it exists. */
  snapshot(): CoreSnapshot | undefined;
  /** Puts an event on the master's queue. */
  push(event: Event<C>): void;
  /** Whether the loop has ended (nothing on the queue will be answered). */
  loopEnded(): boolean;
  version: string;
  /** Wall-clock time the master started (kept across an in-place upgrade). */
  startedAt: number;
  /** Notify messages dropped from foreign senders so far (`arbiter_notify_dropped_total`). */
  notifyDropped?(): number;
  /** Output lines dropped so far (`arbiter_log_lines_dropped_total`). */
  logLinesDropped?(): number;
  /** Listeners restored after a worker shut them down (`arbiter_listener_restores_total`). */
  listenersRestored?(): number;
  /** Recent worker output, for `ctl logs` (src/output/recent.ts). */
  logs?(query: RecentQuery): LogsReport;
  /** Accept queues and worker usage, sampled now (on demand only; docs/saturation.md). */
  saturation?(snapshot: CoreSnapshot, now: number): SaturationView;
}

/** The control and metrics servers of one master. */
export class Operations<C> {
  #control?: ControlServer;
  #metrics?: MetricsServer;

  private constructor(readonly host: OperationsHost<C>, readonly config: Config) {}

  /**
   * Starts what `config` asks for.
   * @throws {ArbiterError} exit 1 when a socket or port cannot be used
   */
  static async start<C>(config: Config, host: OperationsHost<C>): Promise<Operations<C>> {
    const ops = new Operations(host, config);
    try {
      if (config.control_socket) {
        ops.#control = await startControlServer(config.control_socket, {
          status: () => ops.#status(),
          act: (action) => ops.#act(action),
          logs: host.logs && ((query) => host.logs!(query)),
        });
      }
      if (config.metrics_bind) {
        const { hostname, port } = parseHostPort(config.metrics_bind, "metrics_bind");
        ops.#metrics = await startMetricsServer(hostname, port, {
          alive: () =>
            ops.#ask((reply) => ({ type: "probe", reply }), PROBE_TIMEOUT_MS)
              .then((r) => r.ok),
          ready: () => {
            const snapshot = host.snapshot();
            return snapshot?.ready === true;
          },
          snapshot: () => ops.#metricsSnapshot(),
        });
      }
    } catch (error) {
      await ops.close();
      throw error;
    }
    return ops;
  }

  /** Stops both servers (removing the control socket file). */
  async close(): Promise<void> {
    await this.#control?.close().catch(() => {});
    await this.#metrics?.close().catch(() => {});
    this.#control = undefined;
    this.#metrics = undefined;
  }

  #snapshot(): CoreSnapshot {
    const snapshot = this.host.snapshot();
    if (!snapshot) throw new Error("the master is still starting");
    return snapshot;
  }

  #uptime(): number {
    return (Date.now() - this.host.startedAt) / 1000;
  }

  #status() {
    const now = performance.now();
    const snapshot = this.#snapshot();
    const report = statusReport(snapshot, {
      pid: Deno.pid,
      version: this.host.version,
      configFile: this.config.config_file,
      startedAt: now - this.#uptime() * 1000,
      now,
    });
    const view = this.host.saturation?.(snapshot, now);
    return view ? withSaturationStatus(report, view) : report;
  }

  #metricsSnapshot(): MetricsSnapshot {
    const snapshot = this.#snapshot();
    const metrics = {
      ...metricsSnapshot(snapshot, this.#uptime()),
      notifyDropped: this.host.notifyDropped?.(),
      resilience: {
        stalls: snapshot.stalls,
        cannotBoot: snapshot.failing.length,
        logLinesDropped: this.host.logLinesDropped?.(),
        listenersRestored: this.host.listenersRestored?.(),
      },
    };
    const live = snapshot.workers.flatMap((w) =>
      w.pid ? [{ id: w.slot, pid: w.pid, generation: w.generation }] : []
    );
    const withMaster: MetricsSnapshot = {
      ...metrics,
      workerInfo: live,
      build: { ...buildInfo(), version: this.host.version },
      process: sampleSelf(),
    };
    const view = this.host.saturation?.(snapshot, performance.now());
    if (!view) return withMaster;
    const ids = new Map(live.map((w) => [w.pid, { slot: w.id, generation: w.generation }]));
    return withSaturationMetrics(withMaster, view, ids);
  }

  /** Puts a request on the queue; resolves with the core's reply (or a timeout's). */
  #ask(event: (reply: (r: Reply) => void) => Event<C>, timeoutMs: number): Promise<Reply> {
    if (this.host.loopEnded()) {
      return Promise.resolve({ ok: false, error: "the master has exited" });
    }
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => resolve({ ok: false, error: "the master did not answer in time" }),
        timeoutMs,
      );
      this.host.push(event((reply) => {
        clearTimeout(timer);
        resolve(reply);
      }));
    });
  }

  #act(action: ControlAction): Promise<ControlResult> {
    const source = "control request";
    switch (action.type) {
      case "scale": {
        const { workers, relative } = action;
        return this.#ask(
          (reply) => ({ type: "scale", workers, relative, reply }),
          REPLY_TIMEOUT_MS,
        );
      }
      case "restart":
        return this.#ask(
          (reply) => ({ type: "restart", slot: action.id, reply }),
          REPLY_TIMEOUT_MS,
        );
      case "signal": {
        const { signal, id: slot } = action;
        return this.#ask(
          (reply) => ({ type: "signal-workers", signal, slot, reply }),
          REPLY_TIMEOUT_MS,
        );
      }
      case "stop": {
        const what = action.quick ? "quick-stop" : "stop";
        return this.#ask(
          (reply) => ({ type: "request", action: what, source, reply }),
          REPLY_TIMEOUT_MS,
        );
      }
      case "reload":
      case "upgrade":
        return this.#ask(
          (reply) => ({ type: "request", action: action.type, source, reply }),
          REPLY_TIMEOUT_MS,
        );
    }
  }
}
