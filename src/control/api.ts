/**
 * The control API (docs/contract.md, "Operations"): what the master's `control_socket` serves and
 * what `arbiter ctl` sends. Shared by the server ({@link ./server.ts}) and
 * the client ({@link ./ctl.ts}) so the two cannot drift apart.
 *
 * The API is JSON over HTTP/1.1 on a unix socket, versioned by path prefix:
 *
 * | request | body | answer (200) |
 * |---|---|---|
 * | `GET /v1/status` | — | {@link StatusReport} |
 * | `GET /v1/logs?id=N&after=S&limit=L` | — | {@link LogsReport} |
 * | `POST /v1/reload` | none, or `{}` | `{"ok": true, "message": "...", "rollout": {...}}` |
 * | `POST /v1/scale` | `{"workers": N}`, 1 ≤ N ≤ {@link MAX_WORKERS}, or `{"by": ±N}` | `{"ok": true, "message": "..."}` |
 * | `POST /v1/stop` | none, `{}` or `{"quick": bool}` | same |
 * | `POST /v1/upgrade` | none, or `{}` | like reload |
 * | `POST /v1/restart` | `{"id": N}` | same as scale |
 * | `POST /v1/signal` | `{"signal": "SIGHUP"}`, optionally `"id": N` | same |
 *
 * A reload's or upgrade's `rollout` ({@link RolloutRef}) names the attempt
 * (and, for an upgrade, the generation the new image starts) whose outcome
 * `master.rollout` of the status then shows: what `ctl reload --wait` polls.
 *
 * Every failure is a 4xx or 5xx answer with `{"error": "..."}`: 400 for a
 * malformed body or a value out of range, 404 for an unknown path, 405 for a
 * wrong method (with `Allow`), 409 when the master refuses the action (for
 * example while it is stopping), 413 for a body over {@link MAX_BODY_BYTES},
 * 500 when the handler itself failed. The bounded server underneath adds 431
 * (head over 8 KiB), 501 (`Transfer-Encoding`), 503 (no answer within 10 s)
 * and 505 (not HTTP/1.x); see `src/http/bounded_server.ts`.
 *
 * @module
 */

/** The path prefix of this version of the API. */
export const API_PREFIX = "/v1";

/** The largest `workers` a scale request may ask for: the same maximum as the config's. */
export { MAX_WORKERS } from "../core/limits.ts";
import type { Reply, RolloutRef } from "../core/events.ts";
import type { RolloutRecord } from "../core/rollout.ts";
import type { RecentLine, RecentQuery } from "../output/recent.ts";

export type { RecentLine, RecentQuery, RolloutRef };

/** The largest request body the server reads. */
export const MAX_BODY_BYTES = 64 * 1024;

/** What `GET /v1/status` answers. Ages and uptime are in seconds. */
export interface StatusReport {
  master: {
    pid: number;
    version: string;
    uptime_s: number;
    /** Absolute path of the config file, or null when the master runs without one. */
    config_file: string | null;
    /** The current generation (1 at start, +1 per reload). */
    generation: number;
    workers_desired: number;
    phase: "running" | "stopping";
    /** A reload is being prepared or rolled out. */
    reloading: boolean;
    /**
     * Saturation: each listener's accept queue at the time of the
     * request. Absent from masters without it; a listener whose queue cannot
     * be read is left out.
     */
    listeners?: { address: string; queue_length: number; queue_capacity: number }[];
    /** Saturation: the autoscaling bounds, or null when autoscale is off. */
    autoscale?: { min: number; max: number } | null;
    /** Saturation: `max_worker_memory` in bytes, or null when off. */
    max_worker_memory_bytes?: number | null;
    /**
     * Worker ids whose worker failed to boot the same way on each of the last
     * `tries` tries (at least 3): most likely a command that cannot work.
     * Absent from masters that predate it. `last_stderr`: the last lines
     * (at most 10) its stderr showed on a failed try, control characters
     * escaped; empty when none was kept.
     */
    cannot_boot?: { id: number; ended_with: string; tries: number; last_stderr?: string[] }[];
    /**
     * The latest reload or upgrade of this master image and how it ended
     * (`in-progress`, `done`, `abandoned`, `refused`, with `reason`); null
     * when there was none. Absent from masters that predate it.
     */
    rollout?: RolloutRecord | null;
  };
  workers: {
    /** The worker's slot (`ARBITER_WORKER_ID`). */
    id: number;
    /** Null until the process has been created. */
    pid: number | null;
    generation: number;
    /** `booting`, `ready` or `stopping`. */
    state: string;
    age_s: number;
    /** How often this slot's worker was replaced after dying or failing to boot. */
    restarts: number;
    /** How the slot's previous worker ended (`"code 1"`, `"SIGKILL"`), or null. */
    last_exit: string | null;
    /** The worker's last `STATUS=` notification, or null. */
    status: string | null;
    /**
     * The memory of the worker's process group in bytes: PSS (shared
     * copy-on-write pages split between the processes sharing them) where
     * `/proc/PID/smaps_rollup` can be read, RSS otherwise (see
     * `memory_source`); what `max_worker_memory` compares. Null when unknown.
     */
    memory_bytes?: number | null;
    /** "pss", or "rss" when some member's PSS could not be read; null when unknown. */
    memory_source?: "pss" | "rss" | null;
    /** Resident memory summed over the worker's process group (shared pages once per process). */
    rss_bytes?: number | null;
    /** Processes in the worker's process group, itself included; null when unknown. */
    processes?: number | null;
    /** User + system CPU seconds of the worker's process group, reaped children included. */
    cpu_s?: number | null;
    /**
     * Saturation: recent CPU use in percent of one core (the
     * average since the previous status request, or over its life the first
     * time, like `pm2 list`); null when unknown.
     */
    cpu_percent?: number | null;
    /** Why a stopping worker is stopping (`"scaled down"`, `"max_worker_memory"` …), or null. */
    stop_reason?: string | null;
  }[];
}

/** An action asked of the master through the control socket. */
export type ControlAction =
  | { type: "reload" }
  | { type: "scale"; workers: number; relative?: boolean }
  | { type: "stop"; quick: boolean }
  | { type: "upgrade" }
  | { type: "restart"; id: number }
  | { type: "signal"; signal: string; id?: number };

/**
 * What `GET /v1/logs` answers: recent lines of the workers' output, oldest
 * first (src/output/recent.ts for the bounds), and `next`, the `after` to
 * ask with for what follows. `captured` is false when the serving
 * generation has `worker_output = "inherit"`: the master does not see the
 * output, so nothing new will appear.
 */
export interface LogsReport {
  captured: boolean;
  lines: RecentLine[];
  next: number;
  /** Set when the asked-for id names no worker and none of its lines are kept: why (answered as 404). */
  refused?: string;
}

/** The outcome of a {@link ControlAction}: the core's {@link Reply}, as the client hears it. */
export type ControlResult = Reply;

/** What the master plugs into the control server. */
export interface ControlHandler {
  /** The current state; called for every `GET /v1/status`. */
  status(): StatusReport;
  /**
   * Carry out (or start) an action. Should resolve promptly: the client
   * waits for the answer, so a stop should answer once it has begun, not once
   * the workers are gone.
   */
  act(action: ControlAction): Promise<ControlResult>;
  /** Recent worker output (`GET /v1/logs`). */
  logs?(query: RecentQuery): LogsReport;
}

/** The body of every error answer. */
export interface ErrorBody {
  error: string;
}

/** The body of every successful action answer. */
export interface ActionBody {
  ok: true;
  message: string;
  /** A reload's or upgrade's rollout, to follow in the status. */
  rollout?: RolloutRef;
}
