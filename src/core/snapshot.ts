/**
 * The core's read-only view of itself, {@link CoreSnapshot}: what status,
 * metrics, `/readyz`, systemd's status line and an in-place upgrade read.
 * One declaration: the control reports take this type as it is.
 *
 * @module
 */

import {
  CANNOT_BOOT_AFTER,
  type CoreCounters,
  type CoreState,
  type FailingSlot,
  type WorkerRecord,
} from "./state.ts";
import type { RolloutRecord } from "./rollout.ts";

/** Read-only view for status reports and metrics. */
export interface CoreSnapshot {
  generation: number;
  desiredWorkers: number;
  phase: "running" | "stopping";
  /**
   * While stopping: `delay` (shutdown_delay, still serving), `drain` (new
   * handshakes stopped, queues emptying), `workers` (the workers are stopping).
   */
  stopStep?: "delay" | "drain" | "workers";
  reloading: boolean;
  workers: ReadonlyArray<Readonly<WorkerRecord> & { restarts: number; lastExit?: string }>;
  counters: Readonly<CoreCounters>;
  /** Slots that look as if they can never boot (at least {@link CANNOT_BOOT_AFTER} same failures). */
  failing: ReadonlyArray<FailingSlot>;
  /**
   * Whether the master should be in a load balancer's rotation (`/readyz`):
   * running, and at least one worker ready. One is enough to serve (the
   * shared socket queues connections for whichever worker accepts), so a pod
   * stays in its Service while a worker crashes or a reload rolls, and leaves
   * it as soon as a stop begins.
   */
  ready: boolean;
  /** The latest rollout, if any (see {@link RolloutRecord}; docs/resilience.md). */
  rollout?: Readonly<RolloutRecord>;
  /** Whether any worker has been ready yet: from then on boot failures never halt the master. */
  served: boolean;
  /** How often the master found it had not run for a while (paused, starved) and re-armed deadlines. */
  stalls: number;
}

/** A copy of `state` for status and metrics. */
export function snapshotOf<C>(state: CoreState<C>): CoreSnapshot {
  return {
    generation: state.current.number,
    desiredWorkers: state.desired,
    phase: state.phase.kind,
    stopStep: state.phase.kind === "running" ? undefined : state.stopSteps?.step ?? "workers",
    reloading: state.reloading || state.previous !== undefined,
    workers: [...state.workers.values()].map((w) => ({
      ...w,
      restarts: state.slots.get(w.slot)?.restarts ?? 0,
      lastExit: state.slots.get(w.slot)?.lastExit,
    })),
    counters: { ...state.counters, exits: { ...state.counters.exits } },
    failing: [...state.slots.entries()]
      .filter(([slot, r]) =>
        slot < state.desired && (r.bootFailure?.inARow ?? 0) >= CANNOT_BOOT_AFTER
      )
      .map(([slot, r]) => ({
        slot,
        what: r.bootFailure!.what,
        tries: r.bootFailure!.inARow,
        lastStderr: r.bootFailure!.lastStderr ?? [],
      })),
    ready: state.running && state.workers.values().some((w) => w.state === "ready"),
    rollout: state.rollout && { ...state.rollout },
    served: state.served,
    stalls: state.stalls,
  };
}
