/**
 * SIGUSR1 read from a signalfd, for a process that starts with it blocked.
 *
 * Why: `deno run` (≥ 2.9.2) opens a V8 inspector on 127.0.0.1:9229 when its
 * runtime sees SIGUSR1. A process whose every thread blocks USR1 never lets
 * the runtime see it, yet can still take it here: the master (after its
 * re-exec, src/master/usr1.ts) and a worker started with
 * `worker_usr1 = "blocked"` (src/worker/mod.ts, `onUsr1`). Runtime-neutral:
 * FFI to libc through the one binding in libc.ts, no logging, no import
 * outside src/sys/ (so the worker helper that imports it loads no master code).
 *
 * Invariants:
 * - One signalfd and one reader per process, shared by every listener; the
 *   reader sleeps in read(2) on a blocking-pool thread (no idle wake-ups).
 * - Removing the last listener wakes a sleeping reader (a USR1 to ourselves,
 *   which only the signalfd can take), so a pending read never keeps the
 *   process alive after its work is done.
 * - A reader that keeps failing gives up and says so once through
 *   `onGiveUp`, instead of spinning.
 *
 * @module
 */

import { libc as lib } from "./libc.ts";

const SIGUSR1 = 10;
const SFD_CLOEXEC = 0o2000000;
/** sizeof(struct signalfd_siginfo): one per signal read. */
const SIGINFO_SIZE = 128;
/** Consecutive failed reads after which the signalfd is given up (not a busy loop). */
const MAX_READ_FAILURES = 5;

const usr1Bit = 1n << BigInt(SIGUSR1 - 1);

/** A sigset_t holding only SIGUSR1. */
export function usr1Set(): Uint8Array<ArrayBuffer> {
  const set = new BigUint64Array(16); // glibc's sigset_t is 128 bytes; the kernel reads 8
  set[0] = usr1Bit;
  return new Uint8Array(set.buffer);
}

/** Blocks (true) or unblocks (false) SIGUSR1 for the calling thread. */
export function blockUsr1(block: boolean): void {
  const [SIG_BLOCK, SIG_UNBLOCK] = [0, 1];
  lib().sigprocmask(block ? SIG_BLOCK : SIG_UNBLOCK, usr1Set(), null);
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

/**
 * Whether the calling thread blocks USR1. On the main thread before any
 * listener is installed this is the mask the image started with, which
 * every thread of the runtime inherited (nothing in Deno changes masks).
 */
export function usr1BlockedHere(): boolean {
  const SIG_BLOCK = 0;
  const old = new BigUint64Array(16);
  lib().sigprocmask(SIG_BLOCK, new Uint8Array(128), new Uint8Array(old.buffer)); // reads only
  return (old[0] & usr1Bit) !== 0n;
}

const handlers = new Set<() => void>();
let reading = false;
let signalFd: number | undefined;
let giveUp: (message: string) => void = () => {};

async function readLoop(fd: number): Promise<void> {
  const buf = new Uint8Array(SIGINFO_SIZE * 8);
  let failures = 0;
  while (handlers.size > 0) {
    const got = Number(await lib().read_sleeping(fd, buf, BigInt(buf.length)));
    if (got < SIGINFO_SIZE) {
      // EINTR from another signal landing on this thread; anything lasting is given up.
      if (++failures < MAX_READ_FAILURES) continue;
      giveUp("reading SIGUSR1 from its signalfd keeps failing; USR1 is ignored from now on");
      break;
    }
    failures = 0;
    for (let n = 0; n < Math.floor(got / SIGINFO_SIZE); n++) {
      for (const handler of [...handlers]) handler();
    }
  }
  reading = false;
  // The fd stays open (close-on-exec) for a later listener.
}

/**
 * Calls `handler` on each SIGUSR1, read from a signalfd. Only for a process
 * whose threads all block USR1 ({@link usr1BlockedHere} on the main thread
 * at start): otherwise the runtime takes the signal first. `onGiveUp` hears
 * (once) that reading failed for good.
 * @throws {Error} when the signalfd cannot be created
 */
export function addUsr1Listener(handler: () => void, onGiveUp?: (message: string) => void): void {
  signalFd ??= lib().signalfd(-1, usr1Set(), SFD_CLOEXEC);
  if (signalFd < 0) {
    signalFd = undefined;
    throw new Error("signalfd(SIGUSR1) failed");
  }
  if (onGiveUp) giveUp = onGiveUp;
  handlers.add(handler);
  if (!reading) {
    reading = true;
    readLoop(signalFd).catch(() => reading = false);
  }
}

/** Removes a handler of {@link addUsr1Listener}; false when it was not one. */
export function removeUsr1Listener(handler: () => void): boolean {
  if (!handlers.delete(handler)) return false;
  // Wake the sleeping read so it sees no handler left and ends.
  if (handlers.size === 0 && reading) lib().kill(Deno.pid, SIGUSR1);
  return true;
}
