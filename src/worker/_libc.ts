/**
 * The libc calls behind the worker helper's native path, through
 * `Deno.dlopen` (needs `--allow-ffi`, which `-A` includes).
 *
 * The one libc binding besides the master's (`src/sys/libc.ts`), and on
 * purpose: the worker helper is a library that apps import, so it must load
 * no master code, and it opens only the symbols it calls (an older libc
 * without a symbol the master needs still loads this one). Opened lazily: the
 * `node:http` path never loads libc. Constants are the generic Linux values,
 * the same on x86_64 and aarch64; only `struct epoll_event` differs (packed
 * 12 bytes on x86_64, 16 elsewhere).
 *
 * @module
 */

const SYMBOLS = {
  dup3: { parameters: ["i32", "i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
let libc: Libc | undefined;

function lib(): Libc {
  if (!libc) {
    if (Deno.build.os !== "linux") throw new Error(`needs Linux (this is ${Deno.build.os})`);
    libc = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  }
  return libc;
}

const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const SOCK_NONBLOCK = 0o4000;
const SOL_SOCKET = 1;
const SO_TYPE = 3;
const SO_ACCEPTCONN = 30;
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;

function fail(call: string): never {
  const ptr = lib().__errno_location();
  const code = ptr ? new Deno.UnsafePointerView(ptr).getInt32() : 0;
  const text = lib().strerror(code);
  throw new Error(`${call}: ${text ? Deno.UnsafePointerView.getCString(text) : `errno ${code}`}`);
}

function check(call: string, result: number): number {
  return result < 0 ? fail(call) : result;
}

/** Sets O_NONBLOCK on the open file description behind `fd` (shared with every process holding it). */
export function setNonBlocking(fd: number): void {
  const flags = check("fcntl", lib().fcntl(fd, F_GETFL, 0));
  check("fcntl", lib().fcntl(fd, F_SETFL, flags | O_NONBLOCK));
}

/** dup3(from, to, O_CLOEXEC): `to` now names `from`'s file; its old file is released. */
export function dup3(from: number, to: number): void {
  check("dup3", lib().dup3(from, to, O_CLOEXEC));
}

export function close(fd: number): void {
  check("close", lib().close(fd));
}

/**
 * A `struct epoll_event` for `arch`: the kernel declares it packed on x86_64
 * (12 bytes, `data` at offset 4) and naturally aligned elsewhere (16 bytes,
 * `data` at offset 8, as on aarch64).
 */
export function epollEvent(
  events: number,
  data: bigint,
  arch: string = Deno.build.arch,
): Uint8Array<ArrayBuffer> {
  const packed = arch === "x86_64";
  const buf = new Uint8Array(packed ? 12 : 16);
  const view = new DataView(buf.buffer);
  view.setUint32(0, events, true);
  view.setBigUint64(packed ? 4 : 8, data, true);
  return buf;
}

/** epoll_ctl(ADD or DEL); `events` and `data` are ignored by DEL. */
export function epollCtl(epfd: number, op: number, fd: number, events = 0, data = 0n): void {
  check("epoll_ctl", lib().epoll_ctl(epfd, op, fd, epollEvent(events, data)));
}

/** A socket's address family (AF_INET, AF_INET6, AF_UNIX, …). */
export function socketFamily(fd: number): number {
  const buf = new Uint8Array(128);
  const len = new Uint32Array([buf.length]);
  check("getsockname", lib().getsockname(fd, buf, len));
  return new DataView(buf.buffer).getUint16(0, true);
}

/** The port a TCP socket is bound to. */
export function tcpPort(fd: number): number {
  const buf = new Uint8Array(128);
  const len = new Uint32Array([buf.length]);
  check("getsockname", lib().getsockname(fd, buf, len));
  return new DataView(buf.buffer).getUint16(2, false);
}

/** Whether `fd` is a stream socket in the listening state. */
export function isListeningStreamSocket(fd: number): boolean {
  const opt = (name: number) => {
    const value = new Int32Array(1);
    const len = new Uint32Array([4]);
    return lib().getsockopt(fd, SOL_SOCKET, name, value, len) === 0 ? value[0] : -1;
  };
  return opt(SO_TYPE) === SOCK_STREAM && opt(SO_ACCEPTCONN) === 1;
}

/** A non-blocking, close-on-exec listening socket: unix at `path`, or TCP on 127.0.0.1:0 when `path` is undefined. */
export function listenPrivate(path?: string): number {
  let addr: Uint8Array<ArrayBuffer>;
  if (path === undefined) {
    addr = new Uint8Array(16);
    const view = new DataView(addr.buffer);
    view.setUint16(0, AF_INET, true);
    addr.set([127, 0, 0, 1], 4);
  } else {
    const bytes = new TextEncoder().encode(path);
    if (bytes.length > 107) throw new Error(`unix socket path too long: ${path}`);
    addr = new Uint8Array(2 + bytes.length + 1);
    new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
    addr.set(bytes, 2);
  }
  const family = path === undefined ? AF_INET : AF_UNIX;
  const fd = check("socket", lib().socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  try {
    check("bind", lib().bind(fd, addr, addr.length));
    check("listen", lib().listen(fd, 16));
  } catch (error) {
    lib().close(fd);
    throw error;
  }
  return fd;
}
