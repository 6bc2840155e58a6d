/**
 * The few libc calls Deno does not offer, through `Deno.dlopen` (needs
 * `--allow-ffi`): fd flags, dup2, socket introspection, process groups,
 * the parent-death signal, identity changes, umask and execve.
 *
 * The library is opened lazily on first use, so importing this module costs
 * nothing for code paths that never call into libc. Linux only; constants
 * are the generic Linux values, the same on x86_64 and arm64, except where
 * marked.
 *
 * @module
 */

const SYMBOLS = {
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  execve: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  getppid: { parameters: [], result: "i32" },
  kill: { parameters: ["i32", "i32"], result: "i32" },
  setpgid: { parameters: ["i32", "i32"], result: "i32" },
  umask: { parameters: ["u32"], result: "u32" },
  setgroups: { parameters: ["usize", "buffer"], result: "i32" },
  setgid: { parameters: ["u32"], result: "i32" },
  setuid: { parameters: ["u32"], result: "i32" },
  close_range: { parameters: ["u32", "u32", "i32"], result: "i32" },
  signal: { parameters: ["i32", "usize"], result: "usize" },
  sigprocmask: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  waitpid: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // issue 15 (saturation): kernel counters read by src/observe/.
  sysconf: { parameters: ["i32"], result: "i64" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
let libc: Libc | undefined;

function lib(): Libc {
  if (!libc) {
    if (Deno.build.os !== "linux") {
      throw new Error(`arbiter runs on Linux only (this is ${Deno.build.os})`);
    }
    libc = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  }
  return libc;
}

export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const FD_CLOEXEC = 1;
export const F_DUPFD_CLOEXEC = 1030;
export const O_NONBLOCK = 0o4000;
const SOL_SOCKET = 1;
const SO_TYPE = 3;
const SO_ACCEPTCONN = 30;
const PR_SET_PDEATHSIG = 1;
const PR_SET_CHILD_SUBREAPER = 36;
const CLOSE_RANGE_CLOEXEC = 4;
const SIG_SETMASK = 2;
const WNOHANG = 1;

/** An OS error from a libc call, with its errno name and message. */
export class SysError extends Error {
  constructor(readonly call: string, readonly errno: number) {
    super(`${call}: ${strerror(errno)} (errno ${errno})`);
    this.name = "SysError";
  }
}

function errno(): number {
  const ptr = lib().__errno_location();
  return ptr ? new Deno.UnsafePointerView(ptr).getInt32() : 0;
}

/** The message of an errno value. */
export function strerror(code: number): string {
  const ptr = lib().strerror(code);
  return ptr ? Deno.UnsafePointerView.getCString(ptr) : `errno ${code}`;
}

function check(call: string, result: number): number {
  if (result < 0) throw new SysError(call, errno());
  return result;
}

/** fcntl with an int argument; throws {@link SysError} on failure. */
export function fcntl(fd: number, cmd: number, arg = 0): number {
  return check("fcntl", lib().fcntl(fd, cmd, arg));
}

/** Sets or clears FD_CLOEXEC on `fd`. */
export function setCloexec(fd: number, on: boolean): void {
  const flags = fcntl(fd, F_GETFD);
  fcntl(fd, F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC);
}

/** Whether FD_CLOEXEC is set on `fd`. */
export function hasCloexec(fd: number): boolean {
  return (fcntl(fd, F_GETFD) & FD_CLOEXEC) !== 0;
}

/** Sets or clears O_NONBLOCK on the open file description behind `fd`. */
export function setNonBlocking(fd: number, on: boolean): void {
  const flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK);
}

/** Whether O_NONBLOCK is set on `fd`. */
export function isNonBlocking(fd: number): boolean {
  return (fcntl(fd, F_GETFL) & O_NONBLOCK) !== 0;
}

export function dup2(from: number, to: number): void {
  check("dup2", lib().dup2(from, to));
}

export function close(fd: number): void {
  check("close", lib().close(fd));
}

// open(2) flags. O_NOFOLLOW is one of the few that differ between x86_64 and arm64.
const O_NOFOLLOW = Deno.build.arch === "aarch64" ? 0o100000 : 0o400000;
const O_CLOEXEC = 0o2000000;
/** errno of open(2) with O_NOFOLLOW on a symbolic link. */
export const ELOOP = 40;
/** errno for a path that does not exist. */
export const ENOENT = 2;
const EINTR = 4;

/**
 * Opens `path` read-only, close-on-exec, without following a symbolic link
 * at its last component (fails with {@link ELOOP}) and without blocking (a
 * FIFO opens at once instead of waiting for a writer). Check the file's type
 * through the fd before reading. Throws {@link SysError}.
 */
export function openNoFollow(path: string): number {
  return check("open", lib().open(cString(path), O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
}

/** Reads from `fd` until end of file or `max` bytes, whichever comes first. */
export function readAtMost(fd: number, max: number): Uint8Array {
  const buf = new Uint8Array(max);
  let length = 0;
  while (length < max) {
    const got = Number(lib().read(fd, buf.subarray(length), BigInt(max - length)));
    if (got < 0) {
      const code = errno();
      if (code === EINTR) continue;
      throw new SysError("read", code);
    }
    if (got === 0) break;
    length += got;
  }
  return buf.slice(0, length);
}

/** Re-issues listen(2) on a listening socket, which updates its backlog. */
export function listen(fd: number, backlog: number): void {
  check("listen", lib().listen(fd, backlog));
}

/**
 * A listening unix stream socket at `path`, made without the Deno runtime
 * (so it is in no event loop's epoll set). Close-on-exec until prepared for
 * hand-over. Throws {@link SysError} (errno EADDRINUSE, EACCES, ENOENT …).
 */
export function listenUnix(path: string, backlog: number): number {
  const AF_UNIX = 1;
  const SOCK_STREAM_CLOEXEC = 1 | 0o2000000;
  const bytes = new TextEncoder().encode(path);
  const addr = new Uint8Array(2 + bytes.length + 1);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(bytes, 2);
  const fd = check("socket", lib().socket(AF_UNIX, SOCK_STREAM_CLOEXEC, 0));
  try {
    check("bind", lib().bind(fd, addr, addr.length));
    check("listen", lib().listen(fd, backlog));
  } catch (error) {
    lib().close(fd);
    throw error;
  }
  return fd;
}

/** A socket's local address, decoded from its sockaddr. */
export type SockName =
  | { family: "inet"; address: string; port: number }
  | { family: "inet6"; address: string; port: number }
  | { family: "unix"; path: string }
  | { family: "other"; code: number };

/** getsockname(2), decoded. Throws {@link SysError} when `fd` is not a socket. */
export function getsockname(fd: number): SockName {
  const buf = new Uint8Array(128);
  const len = new Uint32Array([buf.length]);
  check("getsockname", lib().getsockname(fd, buf, len));
  const view = new DataView(buf.buffer);
  const family = view.getUint16(0, true);
  if (family === 2) {
    return { family: "inet", address: buf.slice(4, 8).join("."), port: view.getUint16(2, false) };
  }
  if (family === 10) {
    const groups = [];
    for (let i = 0; i < 8; i++) groups.push(view.getUint16(8 + 2 * i, false).toString(16));
    return { family: "inet6", address: groups.join(":"), port: view.getUint16(2, false) };
  }
  if (family === 1) {
    const end = Math.min(len[0], buf.length);
    const raw = buf.slice(2, end);
    const nul = raw.indexOf(0);
    return { family: "unix", path: new TextDecoder().decode(nul >= 0 ? raw.slice(0, nul) : raw) };
  }
  return { family: "other", code: family };
}

function intSockopt(fd: number, option: number): number {
  const value = new Int32Array(1);
  const len = new Uint32Array([4]);
  check("getsockopt", lib().getsockopt(fd, SOL_SOCKET, option, value, len));
  return value[0];
}

/**
 * getsockopt(2) into a buffer of `size` bytes; returns the bytes the kernel
 * filled in. Throws {@link SysError}.
 */
export function getsockoptBytes(
  fd: number,
  level: number,
  option: number,
  size: number,
): Uint8Array {
  const value = new Uint8Array(size);
  const len = new Uint32Array([size]);
  check("getsockopt", lib().getsockopt(fd, level, option, value, len));
  return value.subarray(0, Math.min(len[0], size));
}

/** setsockopt(2) with `value` as the option's bytes. Throws {@link SysError}. */
export function setsockoptBytes(
  fd: number,
  level: number,
  option: number,
  value: Uint8Array<ArrayBuffer>,
): void {
  check("setsockopt", lib().setsockopt(fd, level, option, value, value.byteLength));
}

/** A socket of any domain, close-on-exec. Throws {@link SysError}. */
export function socket(domain: number, type: number, protocol: number): number {
  const SOCK_CLOEXEC = 0o2000000;
  return check("socket", lib().socket(domain, type | SOCK_CLOEXEC, protocol));
}

/** send(2); returns the bytes sent. Throws {@link SysError}. */
export function send(fd: number, data: Uint8Array<ArrayBuffer>, flags = 0): number {
  return Number(checkBig("send", lib().send(fd, data, BigInt(data.length), flags)));
}

/** recv(2) into `buf`; returns the bytes received. Throws {@link SysError} (EAGAIN too). */
export function recv(fd: number, buf: Uint8Array<ArrayBuffer>, flags = 0): number {
  return Number(checkBig("recv", lib().recv(fd, buf, BigInt(buf.length), flags)));
}

function checkBig(call: string, result: number | bigint): bigint {
  const value = BigInt(result);
  if (value < 0n) throw new SysError(call, errno());
  return value;
}

/** sysconf(3): `_SC_PAGESIZE` (30), `_SC_CLK_TCK` (2) …; -1 when unknown. */
export function sysconf(name: number): number {
  return Number(lib().sysconf(name));
}

/** Whether `fd` is a stream socket in the listening state. */
export function isListeningStreamSocket(fd: number): boolean {
  try {
    return intSockopt(fd, SO_TYPE) === 1 && intSockopt(fd, SO_ACCEPTCONN) === 1;
  } catch {
    return false;
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

/** Sets the umask and returns the previous one. */
export function umask(mask: number): number {
  return lib().umask(mask);
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

function cString(text: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
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
