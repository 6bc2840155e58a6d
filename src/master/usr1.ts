/**
 * USR1 without the inspector.
 *
 * Why: `deno run` (Deno ≥ 2.9.2, https://github.com/denoland/deno/issues/35738)
 * starts a V8 inspector server on 127.0.0.1:9229 when the process receives
 * SIGUSR1, like Node. The master gets USR1 on every log rotation
 * (docs/contract.md, "Signals"), so each one would open a debugger port through
 * which any local user can run code as the master's user. `deno compile`
 * binaries do not have that listener (it lives only in `deno run`'s
 * cli/worker.rs), and nothing disables it from JavaScript.
 *
 * How: the runtime can only see USR1 through a thread that does not block it.
 * Threads inherit their mask when created and a blocked mask survives execve,
 * but the runtime's threads exist before any of our code runs. So the program
 * blocks USR1 and re-executes itself in place ({@link fenceUsr1}, called by
 * main.ts in every mode but the exec shim: same pid, argv, environment and
 * fds; a pending USR1 survives the exec). In the new image every thread
 * blocks USR1, the runtime never sees it, and the master
 * reads it from a signalfd instead ({@link addSignalListener}, built on
 * src/sys/usr1_signalfd.ts, which workers share).
 *
 * Invariants:
 * - Once every thread blocks USR1, nothing unblocks it: libc's
 *   blockAllSignals(false) leaves it alone, an in-place upgrade execs with it
 *   blocked, and the new image reads it here too.
 * - Workers and hooks never inherit the mask: the exec shim resets it
 *   (resetSignalsForExec) before it execs the real program.
 * - The exec shim never comes here: it must start fast and has no USR1 duty.
 *
 * Part of the executor: it decides nothing; every decision is the core's
 * (src/core/), and this only carries one out or reports what happened.
 *
 * @module
 */

import { selfInvocation } from "../spawn/self.ts";
import { strerror } from "../sys/libc.ts";
import { execve } from "../sys/process.ts";
import {
  addUsr1Listener,
  blockUsr1,
  removeUsr1Listener,
  usr1BlockedHere,
} from "../sys/usr1_signalfd.ts";

export { blocksUsr1, everyThreadBlocksUsr1 } from "../sys/usr1_signalfd.ts";

/** The program's own argv, exactly as it was started (`deno run … main.ts …`). */
function ownArgv(): string[] {
  const raw = Deno.readTextFileSync("/proc/self/cmdline");
  return raw.split("\0").slice(0, raw.endsWith("\0") ? -1 : undefined);
}

/**
 * Makes sure USR1 can never reach the Deno runtime of this process. Returns
 * at once when this image started with USR1 blocked (the re-executed or
 * upgraded image: its threads all inherited the mask) or is a compiled
 * binary (no inspector listener there); otherwise blocks USR1 and
 * re-executes the program in place, and does not return. Returns a warning
 * when the re-exec failed (USR1 then behaves as before). Call it before
 * anything consumes the environment: the new image needs all of it.
 */
export function fenceUsr1(compiled: boolean = selfInvocation().compiled): string | undefined {
  if (compiled || usr1BlockedHere()) return undefined;
  let argv: string[];
  try {
    argv = ownArgv();
  } catch (error) {
    return `cannot read /proc/self/cmdline (${error}); ${STILL_OPEN}`;
  }
  const executable = Deno.execPath();
  blockUsr1(true);
  const errno = execve(executable, argv, Deno.env.toObject());
  blockUsr1(false);
  return `cannot re-execute ${executable} with SIGUSR1 blocked (${strerror(errno)}); ${STILL_OPEN}`;
}

const STILL_OPEN = "a SIGUSR1 may open Deno's inspector on 127.0.0.1:9229; " +
  "a compiled arbiter does not have this problem";

async function logGiveUp(message: string): Promise<void> {
  // Logging loads lazily: main.ts imports this module before the rest, to stay cheap.
  const { getLog } = await import("../logging/log.ts");
  getLog().error("{message}", { event: "master.usr1_lost", message });
}

/**
 * `Deno.addSignalListener`, except that SIGUSR1 is read from a signalfd when
 * the image started with it blocked (see the module header): call it from
 * the main thread before anything there unblocks signals.
 */
export function addSignalListener(signal: Deno.Signal, handler: () => void): void {
  if (signal !== "SIGUSR1" || !usr1BlockedHere()) return Deno.addSignalListener(signal, handler);
  addUsr1Listener(handler, (message) => void logGiveUp(message).catch(() => {}));
}

/** `Deno.removeSignalListener` for handlers added by {@link addSignalListener}. */
export function removeSignalListener(signal: Deno.Signal, handler: () => void): void {
  if (signal === "SIGUSR1" && removeUsr1Listener(handler)) return;
  Deno.removeSignalListener(signal, handler);
}
