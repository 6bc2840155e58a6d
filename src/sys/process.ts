/**
 * libc calls on the process itself, through the one binding in libc.ts:
 * the parent-death signal, the child subreaper, the process name, process groups,
 * identity changes, close-on-exec for every fd, the signal state an
 * `execve` keeps, reaping a process Deno does not own, the monotonic clock
 * systemd wants, giving freed heap memory back, and `execve` itself.
 *
 * @module
 */

import { check, cString, errno, libc as lib, setCloexec } from "./libc.ts";

const PR_SET_PDEATHSIG = 1;
const PR_SET_NAME = 15;
/** The kernel keeps at most 15 bytes of a thread's name (16 with the NUL). */
const MAX_NAME_BYTES = 15;
const PR_SET_CHILD_SUBREAPER = 36;
const CLOSE_RANGE_CLOEXEC = 4;
const SIG_SETMASK = 2;
const WNOHANG = 1;

/**
 * Gives the C heap's free pages back to the kernel (glibc's `malloc_trim`).
 * The runtime frees the buffers of spawned children's pipes into malloc's
 * arenas, which keep them: without this, the master's RSS keeps what its
 * busiest minute needed. Returns false where the C library has no such call.
 */
export function releaseFreedMemory(): boolean {
  try {
    const trim = lib().malloc_trim;
    if (!trim) return false;
    trim(0n);
    return true;
  } catch {
    return false; // no FFI, or no libc.so.6: memory is only kept, nothing breaks
  }
}

/** Asks the kernel to send `signal` to this process when its parent thread dies. */
export function setParentDeathSignal(signal: number): void {
  check("prctl", lib().prctl(PR_SET_PDEATHSIG, BigInt(signal), 0n, 0n, 0n));
}

/**
 * Makes this process the child subreaper of its descendants (`arbiter
 * verify`): a process orphaned below it is reparented to it instead of to
 * PID 1, so whatever a worker leaves running can still be found and killed.
 */
export function setChildSubreaper(): void {
  check("prctl", lib().prctl(PR_SET_CHILD_SUBREAPER, 1n, 0n, 0n, 0n));
}

/**
 * Names the calling thread: called on the main thread, this is the process's
 * name in /proc/PID/comm, which `ps -e`, `top` and `pgrep` show
 * (`prctl(PR_SET_NAME)`). The command line (`ps aux`, /proc/PID/cmdline)
 * stays as it is: that memory belongs to the runtime, which offers no way to
 * rewrite it. Names longer than 15 bytes are cut there.
 */
export function setProcessName(name: string): void {
  const bytes = new TextEncoder().encode(name).slice(0, MAX_NAME_BYTES);
  const buf = new Uint8Array(MAX_NAME_BYTES + 1);
  buf.set(bytes);
  const address = Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf));
  check("prctl", lib().prctl(PR_SET_NAME, BigInt(address), 0n, 0n, 0n));
}

export function getppid(): number {
  return lib().getppid();
}

/**
 * Whether process group `pgid` has any process left (zombies included):
 * kill(-pgid, 0), which signals nothing. EPERM counts as "exists".
 */
export function processGroupExists(pgid: number): boolean {
  const ESRCH = 3;
  return lib().kill(-pgid, 0) === 0 || errno() !== ESRCH;
}

/** setpgid(0, 0): puts this process in a process group of its own. */
export function newProcessGroup(): void {
  check("setpgid", lib().setpgid(0, 0));
}

/** Drops to `uid`/`gid` with no supplementary groups (order matters: groups, gid, uid). */
export function dropPrivileges(uid: number, gid: number): void {
  check("setgroups", lib().setgroups(0n, null));
  check("setgid", lib().setgid(gid));
  check("setuid", lib().setuid(uid));
}

/**
 * Marks every fd from `first` up as close-on-exec. Uses close_range(2) where
 * the kernel has it, else walks /proc/self/fd.
 */
export function cloexecFrom(first: number): void {
  if (lib().close_range(first, 0xffffffff, CLOSE_RANGE_CLOEXEC) === 0) return;
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    const fd = Number(entry.name);
    if (fd >= first) {
      try {
        setCloexec(fd, true);
      } catch { /* the fd of the directory listing itself, already closed */ }
    }
  }
}

/**
 * Undoes what the Deno runtime does to signal state that would otherwise
 * survive execve: ignored SIGPIPE/SIGXFSZ and any blocked signals. With
 * `blockUsr1`, the new image starts with SIGUSR1 (only) blocked instead, so
 * a Deno or similar runtime in it never sees USR1 (worker_usr1 = "blocked").
 */
export function resetSignalsForExec(blockUsr1 = false): void {
  const SIG_DFL = 0n;
  for (const sig of [13, /* SIGPIPE */ 25 /* SIGXFSZ */]) lib().signal(sig, SIG_DFL);
  const mask = new Uint8Array(128);
  if (blockUsr1) mask[1] = 1 << (10 - 1 - 8); // SIGUSR1 (10) is bit 9
  lib().sigprocmask(SIG_SETMASK, mask, null);
}

/**
 * Blocks (true) or unblocks (false) every signal for the calling thread. An
 * in-place upgrade blocks them before execve, so a signal that arrives before
 * the new image has its handlers stays pending instead of killing the master
 * by its default action; the new image unblocks them once it listens.
 * Unblocking leaves SIGUSR1 as it is: src/master/usr1.ts keeps it blocked.
 */
export function blockAllSignals(block: boolean): void {
  const [SIG_BLOCK, SIG_UNBLOCK] = [0, 1];
  const set = new Uint8Array(128).fill(0xff);
  if (!block) set[1] &= ~(1 << (10 - 1 - 8)); // SIGUSR1 (10) is bit 9
  lib().sigprocmask(block ? SIG_BLOCK : SIG_UNBLOCK, set, null);
}

/** A sigset_t (glibc's 128 bytes; the kernel reads the first 8) holding `signals`. */
function sigset(signals: readonly number[]): Uint8Array<ArrayBuffer> {
  const set = new Uint8Array(128);
  for (const sig of signals) set[(sig - 1) >> 3] |= 1 << ((sig - 1) & 7);
  return set;
}

/** Blocks (true) or unblocks (false) `signals` (numbers) for the calling thread. */
export function blockSignals(signals: readonly number[], block: boolean): void {
  const [SIG_BLOCK, SIG_UNBLOCK] = [0, 1];
  lib().sigprocmask(block ? SIG_BLOCK : SIG_UNBLOCK, sigset(signals), null);
}

/** Whether the calling thread blocks every one of `signals`. */
export function blocksAll(signals: readonly number[]): boolean {
  const SIG_BLOCK = 0;
  const old = new Uint8Array(128);
  lib().sigprocmask(SIG_BLOCK, new Uint8Array(128), old); // adds nothing: reads the mask
  const want = sigset(signals);
  return want.every((byte, i) => (old[i] & byte) === byte);
}

/**
 * Reaps `pid` if it has exited, without blocking. Returns true when it did.
 * Only for processes that `Deno.Command` does not own (orphans under PID 1,
 * workers inherited across an in-place upgrade).
 */
export function reapIfExited(pid: number): { code: number; signal: number } | undefined {
  const status = new Int32Array(1);
  const r = lib().waitpid(pid, status, WNOHANG);
  if (r <= 0) return undefined;
  const s = status[0];
  const signal = s & 0x7f;
  return signal === 0 ? { code: (s >> 8) & 0xff, signal: 0 } : { code: 128 + signal, signal };
}

/** CLOCK_MONOTONIC in microseconds, as systemd's MONOTONIC_USEC wants it. */
export function monotonicUsec(): bigint {
  const ts = new BigInt64Array(2);
  check("clock_gettime", lib().clock_gettime(1, /* CLOCK_MONOTONIC */ ts));
  return ts[0] * 1_000_000n + ts[1] / 1000n;
}

/**
 * Replaces this process image. Returns only on failure, with the errno.
 * `env` is the complete environment of the new image.
 */
export function execve(path: string, argv: string[], env: Record<string, string>): number {
  const keep: Uint8Array[] = [];
  const pointerArray = (items: string[]) => {
    const arr = new BigUint64Array(items.length + 1);
    items.forEach((item, i) => {
      const buf = cString(item);
      keep.push(buf);
      arr[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
    });
    return arr;
  };
  const argvArr = pointerArray(argv);
  const envArr = pointerArray(Object.entries(env).map(([k, v]) => `${k}=${v}`));
  lib().execve(cString(path), argvArr, envArr);
  const code = errno();
  keep.length = 0;
  return code;
}
