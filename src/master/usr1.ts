/**
 * USR1 without the inspector.
 *
 * Why: `deno run` (Deno ≥ 2.9.2, denoland/deno#35738) starts a V8 inspector
 * server on 127.0.0.1:9229 when the process receives SIGUSR1, like Node. The
 * master gets USR1 on every log rotation (SPEC §4), so each one would open a
 * debugger port through which any local user can run code as the master's
 * user. `deno compile` binaries do not have that listener (it lives only in
 * `deno run`'s cli/worker.rs), and nothing disables it from JavaScript.
 *
 * How: the runtime can only see USR1 through a thread that does not block it.
 * Threads inherit their mask when created and a blocked mask survives execve,
 * but the runtime's threads exist before any of our code runs. So the program
 * blocks USR1 and re-executes itself in place ({@link fenceUsr1}, called by
 * main.ts in every mode but the exec shim: same pid, argv, environment and
 * fds; a pending USR1 survives the exec). In the new image every thread
 * blocks USR1, the runtime never sees it, and the master
 * reads it from a signalfd instead ({@link addSignalListener}), on one
 * blocking-pool thread that sleeps in read(2) (no idle wake-ups).
 *
 * Invariants:
 * - Once every thread blocks USR1, nothing unblocks it: libc's
 *   blockAllSignals(false) leaves it alone, an in-place upgrade execs with it
 *   blocked, and the new image reads it here too.
 * - Workers and hooks never inherit the mask: the exec shim resets it
 *   (resetSignalsForExec) before it execs the real program.
 * - The exec shim never comes here: it must start fast and has no USR1 duty.
 *
 * @module
 */

import { selfInvocation } from "../spawn/self.ts";
import { execve, strerror } from "../sys/libc.ts";

const SIGUSR1 = 10;
const SIG_BLOCK = 0;
const SIG_UNBLOCK = 1;
const SFD_CLOEXEC = 0o2000000;
/** sizeof(struct signalfd_siginfo): one per signal read. */
const SIGINFO_SIZE = 128;
/** Consecutive failed reads after which the signalfd is given up (not a busy loop). */
const MAX_READ_FAILURES = 5;

const SYMBOLS = {
  sigprocmask: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  signalfd: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  // On a blocking-pool thread: the call sleeps in the kernel until a signal comes.
  read: { parameters: ["i32", "buffer", "usize"], result: "isize", nonblocking: true },
} as const;

let libc: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] | undefined;
function lib() {
  return libc ??= Deno.dlopen("libc.so.6", SYMBOLS).symbols;
}

const usr1Bit = 1n << BigInt(SIGUSR1 - 1);
/** A sigset_t holding only SIGUSR1. */
function usr1Set(): Uint8Array<ArrayBuffer> {
  const set = new BigUint64Array(16); // glibc's sigset_t is 128 bytes; the kernel reads 8
  set[0] = usr1Bit;
  return new Uint8Array(set.buffer);
}

/** Whether a /proc …/status text shows SIGUSR1 in SigBlk. */
export function blocksUsr1(status: string): boolean {
  const hex = /^SigBlk:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return hex !== undefined && (BigInt(`0x${hex}`) & usr1Bit) !== 0n;
}

/**
 * Whether every thread of process `pid` blocks SIGUSR1, so that no signal
 * handler of the runtime can ever run for it. False when it cannot be read.
 */
export function everyThreadBlocksUsr1(pid: number | "self" = "self"): boolean {
  try {
    const tasks = [...Deno.readDirSync(`/proc/${pid}/task`)];
    return tasks.length > 0 && tasks.every(({ name }) => {
      try {
        return blocksUsr1(Deno.readTextFileSync(`/proc/${pid}/task/${name}/status`));
      } catch {
        return true; // a thread that ended meanwhile takes no signal
      }
    });
  } catch {
    return false;
  }
}

/** The program's own argv, exactly as it was started (`deno run … main.ts …`). */
function ownArgv(): string[] {
  const raw = Deno.readTextFileSync("/proc/self/cmdline");
  return raw.split("\0").slice(0, raw.endsWith("\0") ? -1 : undefined);
}

/**
 * Whether the calling thread blocks USR1. On the main thread before any
 * listener is installed this is the mask the image started with, which
 * every thread of the runtime inherited (nothing in Deno changes masks).
 */
function usr1BlockedHere(): boolean {
  const old = new BigUint64Array(16);
  lib().sigprocmask(SIG_BLOCK, new Uint8Array(128), new Uint8Array(old.buffer)); // reads only
  return (old[0] & usr1Bit) !== 0n;
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
  lib().sigprocmask(SIG_BLOCK, usr1Set(), null);
  const errno = execve(executable, argv, Deno.env.toObject());
  lib().sigprocmask(SIG_UNBLOCK, usr1Set(), null);
  return `cannot re-execute ${executable} with SIGUSR1 blocked (${strerror(errno)}); ${STILL_OPEN}`;
}

const STILL_OPEN = "a SIGUSR1 may open Deno's inspector on 127.0.0.1:9229; " +
  "a compiled arbiter does not have this problem";

/** The one signalfd reader of the process, shared by every USR1 handler. */
const usr1Handlers = new Set<() => void>();
let reading = false;

async function readUsr1(fd: number): Promise<void> {
  const buf = new Uint8Array(SIGINFO_SIZE * 8);
  let failures = 0;
  while (usr1Handlers.size > 0) {
    const got = Number(await lib().read(fd, buf, BigInt(buf.length)));
    if (got < SIGINFO_SIZE) {
      // EINTR from another signal landing on this thread; anything lasting is given up.
      if (++failures < MAX_READ_FAILURES) continue;
      // Logging loads lazily: main.ts imports this module before the rest, to stay cheap.
      const { getLog } = await import("../logging/log.ts");
      getLog().error(
        "reading SIGUSR1 from its signalfd keeps failing; USR1 is ignored from now on",
      );
      break;
    }
    failures = 0;
    for (let n = 0; n < Math.floor(got / SIGINFO_SIZE); n++) {
      for (const handler of [...usr1Handlers]) handler();
    }
  }
  reading = false;
  // The fd stays open (close-on-exec): a read may still sleep on it.
}

let signalFd: number | undefined;

/**
 * `Deno.addSignalListener`, except that SIGUSR1 is read from a signalfd when
 * the image started with it blocked (see the module header): call it from
 * the main thread before anything there unblocks signals.
 */
export function addSignalListener(signal: Deno.Signal, handler: () => void): void {
  if (signal !== "SIGUSR1" || !usr1BlockedHere()) return Deno.addSignalListener(signal, handler);
  signalFd ??= lib().signalfd(-1, usr1Set(), SFD_CLOEXEC);
  if (signalFd < 0) {
    signalFd = undefined;
    throw new Error("signalfd(SIGUSR1) failed");
  }
  usr1Handlers.add(handler);
  if (!reading) {
    reading = true;
    readUsr1(signalFd).catch(() => reading = false);
  }
}

/** `Deno.removeSignalListener` for handlers added by {@link addSignalListener}. */
export function removeSignalListener(signal: Deno.Signal, handler: () => void): void {
  if (signal === "SIGUSR1" && usr1Handlers.delete(handler)) return;
  Deno.removeSignalListener(signal, handler);
}
