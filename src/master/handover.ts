/**
 * Assembles what an in-place upgrade (USR2) hands to the new image: the
 * {@link UpgradeState} (listeners by fd, workers by pid) and the environment
 * it is executed with. Parsing and checking that state on the other side is
 * upgrade.ts's job; this file only builds it from what the master holds.
 *
 * @module
 */

import type { Listener } from "../sockets/listeners.ts";
import type { CoreSnapshot } from "./core.ts";
import type { UpgradeState } from "./upgrade.ts";

/** What the old image knows at the moment of the exec. */
export interface HandoverSource {
  snapshot: CoreSnapshot;
  /** The generation number the new image continues from. */
  generation: number;
  listeners: Listener[];
  /** Wall-clock start of the first image. */
  startedAt: number;
  notifyDir?: string;
}

/** The state for the new image: every worker that has a process, every open listener. */
export function upgradeState(source: HandoverSource): UpgradeState {
  return {
    version: 1,
    masterPid: Deno.pid,
    startedAt: source.startedAt,
    generation: source.generation,
    listeners: source.listeners.map((l) => ({ fd: l.fd, text: l.spec.text })),
    workers: source.snapshot.workers
      .filter((w) => w.pid !== undefined)
      .map((w) => ({ pid: w.pid!, slot: w.slot, generation: w.generation })),
    notifyDir: source.notifyDir,
  };
}

/**
 * The new image's environment: the master's own, plus the socket activation
 * variables taken out at start (by fd order), naming this pid again.
 */
export function upgradeEnv(
  fullEnv: Record<string, string>,
  inheritedNames: Map<number, string> | undefined,
): Record<string, string> {
  const env = { ...fullEnv };
  if (inheritedNames && inheritedNames.size > 0) {
    env.LISTEN_FDS = String(inheritedNames.size);
    env.LISTEN_FDNAMES = [...inheritedNames.values()].join(":");
    env.LISTEN_PID = String(Deno.pid);
  }
  return env;
}
