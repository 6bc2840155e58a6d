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
 * blocks USR1 and re-executes itself in place ({@link fenceSignals}, called by
 * main.ts in every mode but the exec shim: same pid, argv, environment and
 * fds; a pending USR1 survives the exec). In the new image every thread
 * blocks USR1, the runtime never sees it, and the master
 * reads it from a signalfd instead ({@link addSignalListener}, built on
 * src/sys/usr1_signalfd.ts, which workers share).
 *
 * The same re-exec holds the start-up signals ({@link START_SIGNALS}: INT,
 * TERM, HUP, QUIT, …) pending: a signal's default action would otherwise end
 * the master silently in the ~0.1 s before its listeners exist. The blocked
 * mask and the pending set survive execve, every thread of the new image
 * inherits the mask, and the master unblocks them on its main thread once it
 * listens (src/master/signals.ts), so a signal sent at any moment after the
 * re-exec is handled as the signal table says. What stays open is the first
 * image, from its exec until this re-exec (docs/resilience.md, "Signals
 * during start-up").
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
import { withMasterV8Flags } from "./v8_flags.ts";
import { strerror } from "../sys/libc.ts";
import { blocksAll, blockSignals, execve } from "../sys/process.ts";
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
 * The signals whose default action would end (or stop) the master before it
 * listens: HUP, INT, QUIT, USR2, TERM, TTIN, TTOU. The re-executed image
 * starts with them blocked, so one that arrives while it starts stays pending
 * until the master's signal listeners exist (src/master/signals.ts), which
 * unblock them; it is then handled as the signal table says (docs/contract.md,
 * "Signals"). CHLD stays open (Deno reaps its children by it) and WINCH is
 * ignored by default.
 */
export const START_SIGNALS: readonly number[] = [1, 2, 3, 12, 15, 21, 22];

/**
 * Makes sure that USR1 can never reach the Deno runtime of this process and
 * that no signal of {@link START_SIGNALS} can end it before it listens.
 * Returns at once when this image started with them blocked (the
 * re-executed or upgraded image: its threads all inherited the mask);
 * otherwise blocks them and re-executes the program in place, and does not
 * return. A compiled binary re-executes too, leaving USR1 alone (it has no
 * inspector listener). Returns a warning when the re-exec failed (the
 * signals then behave as before). Call it before anything consumes the
 * environment: the new image needs all of it.
 */
export function fenceSignals(compiled: boolean = selfInvocation().compiled): string | undefined {
  if (blocksAll(START_SIGNALS) && (compiled || usr1BlockedHere())) return undefined;
  const stillOpen = compiled ? START_OPEN : `${STILL_OPEN}; ${START_OPEN}`;
  let argv: string[];
  try {
    argv = ownArgv();
  } catch (error) {
    return `cannot read /proc/self/cmdline (${error}); ${stillOpen}`;
  }
  const executable = Deno.execPath();
  if (!compiled) argv = withMasterV8Flags(argv);
  if (!compiled) blockUsr1(true);
  blockSignals(START_SIGNALS, true);
  const errno = execve(executable, argv, Deno.env.toObject());
  blockSignals(START_SIGNALS, false);
  if (!compiled) blockUsr1(false);
  const what = compiled ? "the start-up signals" : "SIGUSR1 and the start-up signals";
  return `cannot re-execute ${executable} with ${what} blocked (${strerror(errno)}); ${stillOpen}`;
}

const STILL_OPEN = "a SIGUSR1 may open Deno's inspector on 127.0.0.1:9229 " +
  "(a compiled arbiter does not have this problem)";
const START_OPEN = "a signal during start-up may end the master before it logs";

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
