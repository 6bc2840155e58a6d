/**
 * What the master is started with (built by the CLI in src/cli/main.ts).
 *
 * Part of the executor: it decides nothing; every decision is the core's
 * (src/core/), and this only carries one out or reports what happened.
 *
 * @module
 */

import type { Config } from "../config/types.ts";
import type { Logging } from "../logging/log.ts";
import type { SelfInvocation } from "../spawn/self.ts";
import type { AdoptedState } from "./upgrade.ts";
import type { Os } from "./os.ts";

/** What the master is started with. */
export interface MasterOptions {
  config: Config;
  /**
   * Reads and validates the config again (SIGHUP), with the same command-line
   * overrides; `track` records a child process it starts (src/config/validate_child.ts).
   */
  reloadConfig: (track?: (child: Deno.ChildProcess) => void) => Promise<Config>;
  logging: Logging;
  /** The master's environment without the variables that must not reach workers. */
  masterEnv: Record<string, string>;
  self: SelfInvocation;
  /** LISTEN_FDNAMES of sockets inherited from systemd, by fd. */
  inheritedNames?: Map<number, string>;
  version: string;
  /** The master's own arguments, for re-executing it (USR2). */
  args: string[];
  /** The master's full environment (with its own systemd variables), for USR2. */
  fullEnv: Record<string, string>;
  /**
   * Where the master's private files go (the notify sockets): chosen and
   * checked before start, see src/cli/directories.ts.
   */
  runtimeDir: string;
  /** What the previous image handed over, when this one comes from an in-place upgrade. */
  upgrade?: AdoptedState;
  /** Processes, signals and the clock; the real OS unless a unit test brings a fake. */
  os?: Os;
}
