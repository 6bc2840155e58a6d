/**
 * The master's one libc binding, through `Deno.dlopen` (needs
 * `--allow-ffi`): every symbol any module under src/sys/ calls is declared
 * in {@link SYMBOLS} here and opened once, and errno is read in one place.
 * This module also wraps the fd and socket calls (fd flags, dup2, open
 * without following links, socket introspection); process-image calls are
 * in process.ts, credential-passing sockets and epoll in unix.ts, memfd in
 * memfd.ts and the USR1 signalfd in usr1_signalfd.ts, all through
 * {@link libc}. (The worker helper in src/worker/ keeps its own small table:
 * apps import it, and it must load no master code.)
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
  execve: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  getppid: { parameters: [], result: "i32" },
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
  // glibc only (the deno executable links it; absent under musl: null).
  malloc_trim: { parameters: ["usize"], result: "i32", optional: true },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  access: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // Kernel counters read by src/observe/.
  sysconf: { parameters: ["i32"], result: "i64" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  kill: { parameters: ["i32", "i32"], result: "i32" },
  // unix.ts: credential-passing unix sockets and epoll.
  accept4: { parameters: ["i32", "pointer", "pointer", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // On a runtime worker thread: it sleeps until an fd is ready and resolves a promise.
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32", nonblocking: true },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  // memfd.ts: sealed memory files.
  memfd_create: { parameters: ["buffer", "u32"], result: "i32" },
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  // usr1_signalfd.ts: the read sleeps in the kernel on a blocking-pool thread until USR1 comes.
  signalfd: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  read_sleeping: {
    name: "read",
    parameters: ["i32", "buffer", "usize"],
    result: "isize",
    nonblocking: true,
  },
} as const;

/** The opened symbols of {@link SYMBOLS}. */
export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
let opened: Libc | undefined;

/** The libc symbols, opened on first use. @throws {Error} off Linux */
export function libc(): Libc {
  if (!opened) {
    if (Deno.build.os !== "linux") {
      throw new Error(`arbiter runs on Linux only (this is ${Deno.build.os})`);
    }
    opened = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  }
  return opened;
}
const lib = libc;

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

/** An OS error from a libc call, with its errno name and message. */
export class SysError extends Error {
  constructor(readonly call: string, readonly errno: number) {
    super(`${call}: ${strerror(errno)} (errno ${errno})`);
    this.name = "SysError";
  }
}

/** errno of the last failed libc call on this thread. */
export function errno(): number {
  const ptr = lib().__errno_location();
  return ptr ? new Deno.UnsafePointerView(ptr).getInt32() : 0;
}

/** The message of an errno value. */
export function strerror(code: number): string {
  const ptr = lib().strerror(code);
  return ptr ? Deno.UnsafePointerView.getCString(ptr) : `errno ${code}`;
}

/** `result`, or a {@link SysError} for `call` when it is negative. */
export function check(call: string, result: number): number {
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

/**
 * Opens `path` read-only, close-on-exec and without blocking, following
 * symbolic links (a Kubernetes ConfigMap file is one): for files whose
 * place the operator chose, such as the config file. Check the type
 * through the fd before reading. Throws {@link SysError}.
 */
export function openNonBlocking(path: string): number {
  return check("open", lib().open(cString(path), O_NONBLOCK | O_CLOEXEC));
}

/** access(2) mode bits. */
export const W_OK = 2;
export const X_OK = 1;

/**
 * The errno of access(2) for `path` and `mode` (0 when allowed): the
 * kernel's own answer for this process's user, groups and mounts, so a
 * read-only filesystem (EROFS) counts as well as the mode bits.
 */
export function accessErrno(path: string, mode: number): number {
  return lib().access(cString(path), mode) === 0 ? 0 : errno();
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

/** Sets the umask and returns the previous one. */
export function umask(mask: number): number {
  return lib().umask(mask);
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
  check("setsockopt", libc().setsockopt(fd, level, option, value, value.byteLength));
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

/** {@link check} for calls that return a size. */
export function checkBig(call: string, result: number | bigint): bigint {
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

/** `text` as a NUL-terminated C string. */
export function cString(text: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}
