/**
 * Unix sockets that tell who sent each message, and an epoll set to wait on
 * them, through FFI: Deno's own datagram and stream APIs hide the sender's
 * credentials (SCM_CREDENTIALS, SO_PEERCRED), which the notify hub needs to
 * accept a worker's messages from that worker only (docs/contract.md,
 * "Security").
 *
 * Invariants:
 * - Every fd made here is close-on-exec and non-blocking from birth
 *   (SOCK_CLOEXEC / SOCK_NONBLOCK, EPOLL_CLOEXEC, EFD_CLOEXEC, accept4 flags,
 *   MSG_CMSG_CLOEXEC), so none can leak into a worker or a new master image.
 * - Every fd a sender passes with SCM_RIGHTS is closed at once (that also
 *   releases an sd_notify barrier, `BARRIER=1` with a pipe fd).
 * - The only call that blocks is `epoll_wait`, declared `nonblocking` so it
 *   runs on a runtime worker thread and resolves a promise. errno is
 *   thread-local, so its failures are not explained (the caller retries).
 *
 * Struct layouts (both LP64): msghdr 56 bytes, iovec 16, cmsghdr header 16,
 * ucred 12 (pid, uid, gid). `struct epoll_event` is packed on x86_64 (12
 * bytes, data at 4) and naturally aligned on aarch64 (16 bytes, data at 8).
 * The socket constants are the generic Linux values, the same on both.
 *
 * @module
 */

import { errno, libc as lib, strerror as message } from "./libc.ts";

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_PASSCRED = 16;
const SO_PEERCRED = 17;
const SCM_RIGHTS = 1;
const SCM_CREDENTIALS = 2;
const MSG_CTRUNC = 0x8;
const MSG_TRUNC = 0x20;
const MSG_DONTWAIT = 0x40;
const MSG_CMSG_CLOEXEC = 0x40000000;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLLIN = 0x1;
const EAGAIN = 11;
const EINTR = 4;
const ECONNRESET = 104;

/** Size of `struct epoll_event` and the offset of its data field on this machine. */
export const EPOLL_EVENT = Deno.build.arch === "x86_64"
  ? { size: 12, dataOffset: 4 }
  : { size: 16, dataOffset: 8 };

/** A failed call, with its errno. */
export class UnixError extends Error {
  constructor(readonly call: string, readonly errno: number) {
    super(`${call}: ${message(errno)} (errno ${errno})`);
    this.name = "UnixError";
  }
}

function check(call: string, result: number): number {
  if (result < 0) throw new UnixError(call, errno());
  return result;
}

function sockaddrUn(path: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(path);
  if (bytes.length > 107) throw new RangeError(`unix socket path too long: ${path}`);
  const addr = new Uint8Array(2 + bytes.length + 1);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(bytes, 2);
  return addr;
}

export function closeFd(fd: number): void {
  lib().close(fd);
}

/**
 * A unix socket bound at `path`: a datagram socket with SO_PASSCRED (the
 * kernel then attaches the sender's pid/uid/gid to every datagram), or a
 * listening stream socket. Non-blocking, close-on-exec.
 * @throws {UnixError} (EADDRINUSE, EACCES, ENOENT …)
 */
export function bindUnix(path: string, kind: "datagram" | "stream", backlog = 16): number {
  const type = (kind === "datagram" ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
  const fd = check("socket", lib().socket(AF_UNIX, type, 0));
  try {
    if (kind === "datagram") {
      check("setsockopt", lib().setsockopt(fd, SOL_SOCKET, SO_PASSCRED, new Int32Array([1]), 4));
    }
    const addr = sockaddrUn(path);
    check("bind", lib().bind(fd, addr, addr.length));
    if (kind === "stream") check("listen", lib().listen(fd, backlog));
  } catch (error) {
    lib().close(fd);
    throw error;
  }
  return fd;
}

/** Who is at the other end: what the kernel says, not what the peer claims. */
export interface Credentials {
  pid: number;
  uid: number;
  gid: number;
}

/**
 * Accepts one pending connection on a listening stream socket, with the
 * peer's credentials at connect time (SO_PEERCRED). Undefined when none is
 * pending. The new fd is non-blocking and close-on-exec.
 * @throws {UnixError} on other failures (EMFILE …)
 */
export function acceptWithCredentials(
  listener: number,
): { fd: number; peer: Credentials } | undefined {
  const fd = lib().accept4(listener, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    const code = errno();
    if (code === EAGAIN || code === EINTR) return undefined;
    throw new UnixError("accept4", code);
  }
  const cred = new Int32Array(3);
  const len = new Uint32Array([12]);
  if (lib().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, len) < 0) {
    const code = errno();
    lib().close(fd);
    throw new UnixError("getsockopt(SO_PEERCRED)", code);
  }
  return { fd, peer: { pid: cred[0], uid: cred[1] >>> 0, gid: cred[2] >>> 0 } };
}

/**
 * Reads what is there on a non-blocking stream socket: the bytes (a view of
 * `buf`), `"eof"` when the peer closed (or reset), `"empty"` when nothing is pending.
 * @throws {UnixError} on a reset or other failure
 */
export function recvStream(fd: number, buf: Uint8Array<ArrayBuffer>): Uint8Array | "eof" | "empty" {
  const n = Number(lib().recv(fd, buf, BigInt(buf.length), MSG_DONTWAIT));
  if (n > 0) return buf.subarray(0, n);
  if (n === 0) return "eof";
  const code = errno();
  if (code === EAGAIN || code === EINTR) return "empty";
  if (code === ECONNRESET) return "eof"; // the peer went away with data unread: as good as closed
  throw new UnixError("recv", code);
}

/** One datagram: its bytes and the kernel's word on who sent it. */
export interface Datagram {
  payload: Uint8Array;
  /** True when the datagram was longer than the buffer (and so cut). */
  truncated: boolean;
  /** Undefined when the kernel attached none (the socket lacked SO_PASSCRED). */
  sender?: Credentials;
  /** How many fds came with it (all already closed). */
  passedFds: number;
}

/**
 * Receives datagrams with their credentials from a non-blocking socket made
 * by {@link bindUnix}. Reuses its buffers: a {@link Datagram}'s payload is
 * valid until the next call.
 */
export class DatagramReceiver {
  readonly #data: Uint8Array<ArrayBuffer>;
  // Room for the credentials and a few dozen passed fds; more are cut
  // (MSG_CTRUNC), and the kernel itself closes the fds that did not fit.
  readonly #control = new Uint8Array(512);
  readonly #iov = new BigUint64Array(2);
  readonly #msg = new Uint8Array(56);
  readonly #msgView = new DataView(this.#msg.buffer);
  readonly #controlView = new DataView(this.#control.buffer);

  /** `size`: the largest datagram taken whole; longer ones come truncated. */
  constructor(size: number) {
    this.#data = new Uint8Array(size);
    this.#iov[0] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#data)));
    this.#iov[1] = BigInt(size);
  }

  /**
   * The next datagram, or undefined when none is pending.
   * @throws {UnixError} on a failure other than "nothing pending"
   */
  receive(fd: number): Datagram | undefined {
    const m = this.#msgView;
    const ptr = (b: BufferSource) =>
      BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b as Uint8Array<ArrayBuffer>)));
    this.#msg.fill(0);
    m.setBigUint64(16, ptr(this.#iov), true); // msg_iov
    m.setBigUint64(24, 1n, true); // msg_iovlen
    m.setBigUint64(32, ptr(this.#control), true); // msg_control
    m.setBigUint64(40, BigInt(this.#control.length), true); // msg_controllen
    const n = Number(
      lib().recvmsg(fd, this.#msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC),
    );
    if (n < 0) {
      const code = errno();
      if (code === EAGAIN || code === EINTR) return undefined;
      throw new UnixError("recvmsg", code);
    }
    const flags = m.getInt32(48, true);
    const controlLen = Number(m.getBigUint64(40, true));
    let sender: Credentials | undefined;
    let passedFds = 0;
    const c = this.#controlView;
    for (let off = 0; off + 16 <= controlLen;) {
      const len = Number(c.getBigUint64(off, true));
      if (len < 16 || off + len > controlLen) break;
      const level = c.getInt32(off + 8, true);
      const type = c.getInt32(off + 12, true);
      if (level === SOL_SOCKET && type === SCM_CREDENTIALS && len >= 28) {
        sender = {
          pid: c.getInt32(off + 16, true),
          uid: c.getUint32(off + 20, true),
          gid: c.getUint32(off + 24, true),
        };
      } else if (level === SOL_SOCKET && type === SCM_RIGHTS) {
        for (let p = off + 16; p + 4 <= off + len; p += 4) {
          lib().close(c.getInt32(p, true));
          passedFds++;
        }
      }
      off += (len + 7) & ~7;
    }
    const truncated = (flags & MSG_TRUNC) !== 0 || n > this.#data.length;
    return {
      payload: this.#data.subarray(0, Math.min(n, this.#data.length)),
      truncated,
      sender,
      passedFds: passedFds + ((flags & MSG_CTRUNC) !== 0 ? 1 : 0),
    };
  }
}

/**
 * An epoll set plus an eventfd to interrupt its wait. The wait itself runs
 * off the main thread (see the module notes).
 */
export class EpollSet {
  readonly #epfd: number;
  readonly #wakefd: number;
  readonly #events: Uint8Array<ArrayBuffer>;
  readonly #maxEvents: number;
  #closed = false;

  /** Token 0 is the wake-up eventfd's; callers use tokens ≥ 1. */
  constructor(maxEvents = 64) {
    this.#epfd = check("epoll_create1", lib().epoll_create1(SOCK_CLOEXEC /* EPOLL_CLOEXEC */));
    try {
      this.#wakefd = check("eventfd", lib().eventfd(0, SOCK_CLOEXEC | SOCK_NONBLOCK));
    } catch (error) {
      lib().close(this.#epfd);
      throw error;
    }
    this.#maxEvents = maxEvents;
    this.#events = new Uint8Array(EPOLL_EVENT.size * maxEvents);
    this.add(this.#wakefd, 0);
  }

  /** Watches `fd` for input; `token` (≥ 1) comes back from {@link wait}. */
  add(fd: number, token: number): void {
    const ev = new Uint8Array(EPOLL_EVENT.size);
    const view = new DataView(ev.buffer);
    view.setUint32(0, EPOLLIN, true);
    view.setBigUint64(EPOLL_EVENT.dataOffset, BigInt(token), true);
    check("epoll_ctl", lib().epoll_ctl(this.#epfd, EPOLL_CTL_ADD, fd, ev));
  }

  /** Stops watching `fd` (before closing it; closing also does, unless it was dup'ed). */
  remove(fd: number): void {
    lib().epoll_ctl(this.#epfd, EPOLL_CTL_DEL, fd, new Uint8Array(EPOLL_EVENT.size));
  }

  /**
   * Waits for input on any watched fd; resolves with their tokens (empty on
   * EINTR or a wake-up). Only one wait at a time.
   */
  async wait(): Promise<number[]> {
    const n = await lib().epoll_wait(this.#epfd, this.#events, this.#maxEvents, -1);
    const view = new DataView(this.#events.buffer);
    const tokens: number[] = [];
    for (let i = 0; i < n; i++) {
      const token = Number(view.getBigUint64(i * EPOLL_EVENT.size + EPOLL_EVENT.dataOffset, true));
      if (token === 0) lib().read(this.#wakefd, new Uint8Array(8), 8n);
      else tokens.push(token);
    }
    return tokens;
  }

  /** Makes a pending {@link wait} return now. */
  wake(): void {
    if (!this.#closed) lib().write(this.#wakefd, new BigUint64Array([1n]), 8n);
  }

  /** Closes both fds; call only once no {@link wait} is pending. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    lib().close(this.#wakefd);
    lib().close(this.#epfd);
  }
}
