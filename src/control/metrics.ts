/**
 * The metrics endpoint (`metrics_bind = "HOST:PORT"`, docs/contract.md, "Operations"): plain HTTP
 * for Kubernetes probes and Prometheus.
 *
 * | path | answer |
 * |---|---|
 * | `/livez` | 200 `ok` while the master loop is alive, else 503 |
 * | `/readyz` | 200 `ready` while enough workers are ready, else 503 (also during a stop) |
 * | `/metrics` | Prometheus text format 0.0.4 from {@link formatPrometheus} (prometheus.ts) |
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

import { formatPrometheus } from "./prometheus.ts";
import type { MetricsSnapshot } from "./metrics_snapshot.ts";

export { EXIT_REASONS, type ExitReason } from "../core/exit_reasons.ts";
export { formatPrometheus } from "./prometheus.ts";
export type {
  BuildInfo,
  MetricsSnapshot,
  ProcessMetrics,
  ResilienceCounters,
  WorkerInfo,
  WorkerResources,
} from "./metrics_snapshot.ts";

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
