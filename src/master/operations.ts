/**
 * The operator's view of a running master: the control socket (`arbiter
 * ctl`), the metrics endpoint (`/livez`, `/readyz`, `/metrics`) and the
 * counters behind it. Off entirely unless `control_socket` / `metrics_bind`
 * are set, so the master is no heavier without them.
 *
 * Control requests never act directly: each becomes an event on the master's
 * queue, handled in turn like a signal. Status and metrics read the core's
 * snapshot, which is a copy.
 *
 * @module
 */

import { parseHostPort } from "../config/bind.ts";
import type { Config } from "../config/types.ts";
import type { ControlAction, ControlResult } from "../control/api.ts";
import { type MetricsServer, startMetricsServer } from "../control/metrics.ts";
import { isReady, MasterCounters, metricsSnapshot, statusReport } from "../control/report.ts";
import { type ControlServer, startControlServer } from "../control/server.ts";
import type { CoreSnapshot } from "./core.ts";
import type { Event } from "./events.ts";

/** What the operations need from the master. */
export interface OperationsHost<C> {
  /** The core's current snapshot, or undefined before it exists. */
  snapshot(): CoreSnapshot | undefined;
  /** Puts an event on the master's queue. */
  push(event: Event<C>): void;
  /** Whether the loop is still turning (it answers a probe through its queue). */
  alive(): Promise<boolean>;
  version: string;
  /** Wall-clock time the master started (kept across an in-place upgrade). */
  startedAt: number;
}

/** The control and metrics servers of one master. */
export class Operations<C> {
  readonly counters = new MasterCounters();
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
          act: (action) => Promise.resolve(ops.#act(action)),
        });
      }
      if (config.metrics_bind) {
        const { hostname, port } = parseHostPort(config.metrics_bind, "metrics_bind");
        ops.#metrics = await startMetricsServer(hostname, port, {
          alive: () => host.alive(),
          ready: () => {
            const snapshot = host.snapshot();
            return snapshot !== undefined && isReady(snapshot);
          },
          snapshot: () => metricsSnapshot(ops.#snapshot(), ops.counters, ops.#uptime()),
        });
      }
    } catch (error) {
      await ops.close();
      throw error;
    }
    return ops;
  }

  /** Counts what an event means for the metrics; call before the core handles it. */
  observe(event: Event<C>): void {
    const snapshot = this.host.snapshot();
    if (!snapshot) return;
    const stopping = snapshot.phase === "stopping";
    if (event.type === "exited") {
      const worker = snapshot.workers.find((w) => w.serial === event.serial);
      if (worker) this.counters.workerExited(worker, event.code, event.signal, stopping);
    } else if (event.type === "spawn-failed") {
      this.counters.spawnFailed(stopping);
    } else if (event.type === "config-loaded" && !stopping) {
      this.counters.reloaded();
    }
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
    return statusReport(this.#snapshot(), {
      pid: Deno.pid,
      version: this.host.version,
      configFile: this.config.config_file,
      startedAt: now - this.#uptime() * 1000,
      now,
    });
  }

  #act(action: ControlAction): ControlResult {
    const snapshot = this.#snapshot();
    if (snapshot.phase === "stopping" && action.type !== "stop") {
      return { ok: false, error: "the master is stopping" };
    }
    const source = "control request";
    switch (action.type) {
      case "reload":
        this.host.push({ type: "request", action: "reload", source });
        return { ok: true, message: "reloading: new workers start, old ones go as they are ready" };
      case "scale":
        this.host.push({ type: "scale", workers: action.workers });
        return { ok: true, message: `workers ${snapshot.desiredWorkers} -> ${action.workers}` };
      case "stop":
        this.host.push({ type: "request", action: action.quick ? "quick-stop" : "stop", source });
        return { ok: true, message: action.quick ? "stopping quickly" : "stopping gracefully" };
      case "upgrade":
        this.host.push({ type: "request", action: "upgrade", source });
        return { ok: true, message: "upgrading in place (see the master's log for the outcome)" };
    }
  }
}
