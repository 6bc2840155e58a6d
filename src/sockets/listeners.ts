/**
 * The listening sockets the master owns for its whole life. Each is opened
 * once (with `Deno.listen` where Deno can, or taken over from an inherited fd),
 * then prepared for hand-over: FD_CLOEXEC cleared so the exec shim inherits
 * it, O_NONBLOCK cleared so a worker doing blocking accept() works (the flag
 * lives on the shared open file description; docs/troubleshooting.md, "The
 * O_NONBLOCK trap"), and the configured backlog applied. The master itself never accepts.
 *
 * A {@link ListenerPool} keeps them across reloads: a reload that keeps a
 * bind reuses the same socket (no connection is ever refused), a new bind is
 * opened before new workers start, and a removed one is closed once no
 * generation of workers still uses it.
 *
 * @module
 */

import type { BindSpec } from "../config/types.ts";
import { ArbiterError, ExitCode } from "../errors.ts";
import * as libc from "../sys/libc.ts";
import { listenErrorReason } from "./errors.ts";

/** An open listening socket, ready to hand to workers. */
export interface Listener {
  readonly spec: BindSpec;
  /** The master's fd of the socket; inheritable and blocking. */
  readonly fd: number;
  /** The entry for `LISTEN_FDNAMES`. */
  readonly name: string;
  /** The address as people read it, with the real port when 0 was asked. */
  readonly address: string;
  /** Closes the socket; removes a unix socket file this master created. */
  close(): void;
}

/** Options for opening listeners. */
export interface ListenOptions {
  /** listen(2) backlog. */
  backlog: number;
  /** umask while a unix socket is created (its file mode comes from it). */
  umask?: number;
  /** Names systemd gave inherited fds (`LISTEN_FDNAMES`), by fd. */
  inheritedNames?: Map<number, string>;
}

function socketFds(): Set<number> {
  const fds = new Set<number>();
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${entry.name}`).startsWith("socket:")) {
        fds.add(Number(entry.name));
      }
    } catch { /* closed meanwhile (the directory's own fd) */ }
  }
  return fds;
}

/** A name fit for LISTEN_FDNAMES: systemd allows no colons or control characters. */
export function fdName(text: string): string {
  return text.replace(/[^A-Za-z0-9._\-[\]]/g, "_").slice(0, 255);
}

function prepare(fd: number, backlog: number): void {
  libc.setCloexec(fd, false);
  libc.setNonBlocking(fd, false);
  libc.listen(fd, backlog);
}

function bindError(spec: BindSpec, error: unknown): ArbiterError {
  const reason = listenErrorReason(error);
  return new ArbiterError(ExitCode.Runtime, `cannot listen on ${spec.text}: ${reason}`, {
    cause: error,
  });
}

/**
 * Whether `fd` is a listening TCP socket. An fd listed a moment ago may be
 * closed by now (the runtime closes sockets off the caller's turn), which is
 * simply not a match.
 */
function isTcpListener(fd: number): boolean {
  try {
    return libc.getsockname(fd).family !== "unix" && libc.isListeningStreamSocket(fd);
  } catch {
    return false;
  }
}

/** Finds the fd of the TCP listener a `Deno.listen` call just created. */
function newTcpListenerFd(before: Set<number>, spec: BindSpec): number {
  const match = [...socketFds()].find((fd) => !before.has(fd) && isTcpListener(fd));
  if (match === undefined) throw new Error(`cannot find the fd of the new socket ${spec.text}`);
  return match;
}

function openTcp(spec: Extract<BindSpec, { kind: "tcp" }>, opts: ListenOptions): Listener {
  const before = socketFds();
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: spec.hostname, port: spec.port, transport: "tcp" });
  } catch (error) {
    throw bindError(spec, error);
  }
  const { hostname, port } = listener.addr;
  const address = hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
  // The master never accepts. Keep a plain duplicate of the socket and close
  // Deno's listener, which takes it out of the runtime's epoll set: otherwise
  // every incoming connection would wake the master (measured: hundreds of
  // wake-ups per thousand requests).
  const fd = libc.fcntl(newTcpListenerFd(before, spec), libc.F_DUPFD_CLOEXEC, 3);
  listener.close();
  prepare(fd, opts.backlog);
  return {
    spec,
    fd,
    name: fdName(spec.text),
    address,
    close: () => libc.close(fd),
  };
}

/** Refuses what must not be replaced at a unix socket path; removes a stale socket. */
async function clearUnixPath(spec: BindSpec & { kind: "unix" }): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(spec.path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw bindError(spec, error);
  }
  if (info.isSymlink) {
    throw new ArbiterError(
      ExitCode.Runtime,
      `cannot listen on ${spec.text}: ${spec.path} is a symbolic link; refusing to follow it`,
    );
  }
  if (!info.isSocket) {
    throw new ArbiterError(
      ExitCode.Runtime,
      `cannot listen on ${spec.text}: ${spec.path} exists and is not a socket`,
    );
  }
  try {
    const conn = await Deno.connect({ transport: "unix", path: spec.path });
    conn.close();
  } catch {
    Deno.removeSync(spec.path); // nobody answers: a stale socket from a dead process
    return;
  }
  throw new ArbiterError(
    ExitCode.Runtime,
    `cannot listen on ${spec.text}: address already in use (another process serves it)`,
  );
}

async function openUnix(
  spec: Extract<BindSpec, { kind: "unix" }>,
  opts: ListenOptions,
): Promise<Listener> {
  await clearUnixPath(spec);
  // Made through libc, not Deno.listen: a Deno listener would sit in the
  // runtime's epoll set (a wake-up per connection) and unlinks its path on close.
  let fd: number;
  const previousMask = opts.umask === undefined ? undefined : libc.umask(opts.umask);
  try {
    fd = libc.listenUnix(spec.path, opts.backlog);
  } catch (error) {
    throw bindError(spec, error);
  } finally {
    if (previousMask !== undefined) libc.umask(previousMask);
  }
  const inode = Deno.lstatSync(spec.path).ino;
  prepare(fd, opts.backlog);
  return {
    spec,
    fd,
    name: fdName(spec.text),
    address: spec.text,
    close: () => {
      libc.close(fd);
      try {
        // Only our own socket: the path may have been replaced meanwhile.
        if (Deno.lstatSync(spec.path).ino === inode) Deno.removeSync(spec.path);
      } catch { /* already gone */ }
    },
  };
}

function adoptFd(spec: Extract<BindSpec, { kind: "fd" }>, opts: ListenOptions): Listener {
  if (!libc.isListeningStreamSocket(spec.fd)) {
    throw new ArbiterError(
      ExitCode.Runtime,
      `cannot use ${spec.text}: fd ${spec.fd} is not an inherited listening stream socket`,
    );
  }
  prepare(spec.fd, opts.backlog);
  const name = libc.getsockname(spec.fd);
  const address = name.family === "unix"
    ? `unix:${name.path}`
    : name.family === "inet6"
    ? `[${name.address}]:${name.port}`
    : name.family === "inet"
    ? `${name.address}:${name.port}`
    : spec.text;
  let open = true;
  return {
    spec,
    fd: spec.fd,
    name: opts.inheritedNames?.get(spec.fd) ?? fdName(spec.text),
    address,
    // Closing our copy is fine; the socket file (if any) belongs to whoever made it.
    close: () => {
      if (open) libc.close(spec.fd);
      open = false;
    },
  };
}

/** A listener for a socket this process already holds at `fd`. */
function adoptedListener(fd: number, spec: BindSpec, opts: ListenOptions): Listener {
  prepare(fd, opts.backlog);
  const base = adoptFd({ kind: "fd", fd, text: `fd://${fd}` }, opts);
  if (spec.kind !== "unix") {
    return { ...base, spec, name: spec.kind === "fd" ? base.name : fdName(spec.text) };
  }
  return {
    ...base,
    spec,
    name: fdName(spec.text),
    address: spec.text,
    close: () => {
      base.close();
      try {
        // The socket file is ours (a previous image of this master made it).
        if (Deno.lstatSync(spec.path).isSocket) Deno.removeSync(spec.path);
      } catch { /* already gone */ }
    },
  };
}

/**
 * What a {@link ListenerPool} asks of the operating system: the executor's
 * fake-OS seam (src/master/os.ts) extends it, so its unit tests keep
 * listeners as records. {@link kernelListeners} is the real one.
 */
export interface ListenerOpener {
  /**
   * Opens one listener for `spec` (binds it, or takes over an inherited fd).
   * @throws {ArbiterError} exit 1 with a message naming the address
   */
  open(spec: BindSpec, opts: ListenOptions): Promise<Listener>;
  /** A listener for a socket this process already holds at `fd` (an in-place upgrade's). */
  adopt(fd: number, spec: BindSpec, opts: ListenOptions): Listener;
  /** Whether `fd` still listens (a worker may have shut the shared socket down). */
  listening(fd: number): boolean;
  /** listen(2) again on `fd` with `backlog`. @throws {libc.SysError} */
  setBacklog(fd: number, backlog: number): void;
}

/** The real {@link ListenerOpener}: sockets of the kernel. */
export const kernelListeners: ListenerOpener = {
  open: (spec, opts) => openListener(spec, opts),
  adopt: (fd, spec, opts) => adoptedListener(fd, spec, opts),
  listening: (fd) => libc.isListeningStreamSocket(fd),
  setBacklog: (fd, backlog) => libc.listen(fd, backlog),
};

/**
 * Opens one listener.
 * @throws {ArbiterError} exit 1 with a message naming the address
 */
export function openListener(spec: BindSpec, opts: ListenOptions): Promise<Listener> {
  switch (spec.kind) {
    case "tcp":
      return Promise.resolve().then(() => openTcp(spec, opts));
    case "unix":
      return openUnix(spec, opts);
    case "fd":
      return Promise.resolve().then(() => adoptFd(spec, opts));
  }
}

/** The master's listeners, shared between generations of workers. */
export class ListenerPool {
  #open = new Map<string, Listener>();

  /** @param sockets The operating system's sockets (a fake in the executor's unit tests). */
  constructor(
    readonly options: ListenOptions,
    readonly sockets: ListenerOpener = kernelListeners,
  ) {}

  /**
   * Returns listeners for `specs`, in order, reusing open ones with the same
   * bind text. If any fails to open, those opened by this call are closed
   * again and the error is thrown; the pool is as it was.
   */
  async acquire(specs: BindSpec[], backlog = this.options.backlog): Promise<Listener[]> {
    const opened: Listener[] = [];
    try {
      const result: Listener[] = [];
      for (const spec of specs) {
        let listener = this.#open.get(spec.text);
        if (!listener) {
          listener = await this.sockets.open(spec, { ...this.options, backlog });
          opened.push(listener);
        } else if (backlog !== this.options.backlog) {
          this.sockets.setBacklog(listener.fd, backlog);
        }
        result.push(listener);
      }
      for (const listener of opened) this.#open.set(listener.spec.text, listener);
      return result;
    } catch (error) {
      for (const listener of opened) listener.close();
      throw error;
    }
  }

  /**
   * Takes over a listening socket already open at `fd` (across an in-place
   * upgrade) as the listener for `spec`; `acquire` then reuses it.
   */
  adopt(fd: number, spec: BindSpec): Listener {
    const listener = this.sockets.adopt(fd, spec, this.options);
    this.#open.set(spec.text, listener);
    return listener;
  }

  /** Every open listener. */
  list(): Listener[] {
    return [...this.#open.values()];
  }

  /**
   * A listener that stopped listening (a worker called `shutdown()` on the
   * shared socket: it cannot listen again on Linux) is replaced by a fresh
   * socket for the same address; the dead one is closed. Returns each
   * replacement; one that cannot be reopened yet is left for the next try.
   * Contexts that hold the dead one must be pointed at the fresh one.
   * Inherited fds (`fd://N`) cannot be reopened and are not checked.
   */
  async restoreDead(): Promise<{ dead: Listener; fresh: Listener }[]> {
    const restored: { dead: Listener; fresh: Listener }[] = [];
    for (const [key, dead] of this.#open) {
      if (dead.spec.kind === "fd" || this.sockets.listening(dead.fd)) continue;
      let fresh: Listener;
      try {
        // A shut-down TCP socket no longer holds its port; a unix one's file is stale.
        fresh = await this.sockets.open(dead.spec, this.options);
      } catch {
        continue; // left as it is: the next check tries again
      }
      dead.close();
      this.#open.set(key, fresh);
      restored.push({ dead, fresh });
    }
    return restored;
  }

  /** Closes every open listener not in `inUse`. Returns the ones closed. */
  release(inUse: Iterable<Listener>): Listener[] {
    const keep = new Set(inUse);
    const closed: Listener[] = [];
    for (const [key, listener] of this.#open) {
      if (!keep.has(listener)) {
        listener.close();
        this.#open.delete(key);
        closed.push(listener);
      }
    }
    return closed;
  }

  /** Closes everything (clean exit). */
  closeAll(): void {
    this.release([]);
  }
}
