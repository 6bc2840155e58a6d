/**
 * Both ends of an in-place upgrade (USR2) as the executor sees them: what
 * the old image hands to the new one (the {@link UpgradeState} with
 * listeners by fd and workers by pid, and the environment it is executed
 * with), and what the new image does with an already validated state at
 * start ({@link receiveHandover}). Parsing and checking the state is
 * upgrade.ts's job; this file only builds and applies it.
 *
 * Part of the executor: it decides nothing; every decision is the core's
 * (src/core/), and this only carries one out or reports what happened.
 *
 * @module
 */

import { removeHubDir } from "../notify/dir.ts";
import type { Logger } from "@logtape/logtape";
import type { Listener } from "../sockets/listeners.ts";
import type { CoreOptions, CoreSnapshot } from "../core/core.ts";
import type { ChildRegistry } from "../spawn/children.ts";
import type { SelfInvocation } from "../spawn/self.ts";
import type { Event } from "../core/events.ts";
import { type AdoptedState, checkUpgrade, type UpgradeState } from "./upgrade.ts";

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
    desiredWorkers: source.snapshot.desiredWorkers,
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

/**
 * Start-up of an image that came from an in-place upgrade: removes the old
 * image's notify directory, logs what was dropped. Returns the inherited
 * workers for the core, if any. Which handed-over sockets stay open is the
 * core's decision (its first step's `release-listeners`, src/core/start_up.ts).
 */
export function receiveHandover(
  upgrade: AdoptedState | undefined,
  log: Logger,
): CoreOptions["inherited"] {
  // Only the old hub's own sockets, then rmdir: never a recursive delete of a
  // path that came from outside (upgrade.ts already checked it is our hub's).
  if (upgrade?.state.notifyDir) removeHubDir(upgrade.state.notifyDir);
  const workers = upgrade?.state.workers ?? [];
  for (const warning of upgrade?.warnings ?? []) {
    log.warn("upgrade: {warning}", { event: "upgrade.warning", warning });
  }
  return workers.length > 0 ? { generation: upgrade!.state.generation, workers } : undefined;
}

/** Runs the pre-upgrade check in the background; answers with an `upgrade-checked` event. */
export function checkBeforeUpgrade(
  master: { self: SelfInvocation; args: string[]; fullEnv: Record<string, string> },
  registry: ChildRegistry,
  push: (event: Event<never>) => void,
): void {
  checkUpgrade(master.self, master.args, master.fullEnv, registry)
    .then((error) => push({ type: "upgrade-checked", error }))
    .catch((error) => push({ type: "upgrade-checked", error: String(error) }));
}
