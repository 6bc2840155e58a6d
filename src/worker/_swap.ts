/**
 * Swapping a socket under a `Deno.serve` listener: the machinery of the
 * worker helper's native path (Linux, `-A`: reading `/proc/self` needs all
 * permissions, libc needs FFI).
 *
 * `Deno.serve` cannot take an inherited fd (https://github.com/denoland/deno/issues/14006), but its
 * listener is a plain fd registered in the runtime's epoll set with a token
 * (`data`) that routes readiness to that listener. Putting another listening
 * socket at the same fd number (`dup3`) and registering it again with the
 * same events and token makes the runtime accept from that socket instead.
 *
 * Invariants:
 * - The registration is read from `/proc/self/fdinfo/<epoll fd>`, never
 *   guessed; a swap is checked afterwards the same way (every epoll fd that
 *   held the listener now holds the new socket, same events and token) and
 *   anything unexpected throws {@link SwapError}, so the caller can fall back.
 * - The old item is removed explicitly (`EPOLL_CTL_DEL`) before `dup3`:
 *   closing an fd removes its epoll item only when no other process holds
 *   the file, and a shared socket is held by the master and the other workers.
 *
 * @module
 */

import * as libc from "./_libc.ts";

/** The swap cannot be done or checked; the message says why. */
export class SwapError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SwapError";
  }
}

/** The runtime's epoll registration of a listener fd. */
export interface Registration {
  /** The epoll fds that list it (several fds may name one epoll instance). */
  epfds: number[];
  events: number;
  data: bigint;
}

/** One item of an epoll set. */
export interface Entry {
  epfd: number;
  tfd: number;
  events: number;
  data: bigint;
  /** Inode of the registered file, decimal (as in `socket:[N]`). */
  ino: string;
}

/** fd → link target, for every open fd of this process. */
function fdLinks(): Map<number, string> {
  const links = new Map<number, string>();
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    try {
      links.set(Number(entry.name), Deno.readLinkSync(`/proc/self/fd/${entry.name}`));
    } catch {
      // Closed meanwhile (the directory listing's own fd).
    }
  }
  return links;
}

/** The inode of the socket at `fd` (decimal), or undefined when `fd` is not a socket. */
export function socketInode(fd: number): string | undefined {
  try {
    return Deno.readLinkSync(`/proc/self/fd/${fd}`).match(/^socket:\[(\d+)\]$/)?.[1];
  } catch {
    return undefined;
  }
}

/** The open fds that are sockets. */
export function socketFds(): Set<number> {
  const fds = new Set<number>();
  for (const [fd, link] of fdLinks()) if (link.startsWith("socket:")) fds.add(fd);
  return fds;
}

const ENTRY = /^tfd:\s*(\d+)\s+events:\s*([0-9a-f]+)\s+data:\s*([0-9a-f]+)\s.*\bino:([0-9a-f]+)/gm;

/** The items of one epoll set, from the text of its `/proc/self/fdinfo/<epfd>`. */
export function parseEpollFdinfo(epfd: number, text: string): Entry[] {
  return [...text.matchAll(ENTRY)].map((m) => ({
    epfd,
    tfd: Number(m[1]),
    events: parseInt(m[2], 16),
    data: BigInt(`0x${m[3]}`),
    ino: BigInt(`0x${m[4]}`).toString(),
  }));
}

/** Every item of every epoll set this process holds. */
function epollEntries(): Entry[] {
  const entries: Entry[] = [];
  for (const [epfd, link] of fdLinks()) {
    if (link !== "anon_inode:[eventpoll]") continue;
    try {
      entries.push(...parseEpollFdinfo(epfd, Deno.readTextFileSync(`/proc/self/fdinfo/${epfd}`)));
    } catch {
      // Closed meanwhile.
    }
  }
  return entries;
}

/** The registration of the socket at `fd` in the runtime's epoll set. */
export function findRegistration(fd: number): Registration {
  const ino = socketInode(fd);
  if (ino === undefined) throw new SwapError(`fd ${fd} is not a socket`);
  const items = epollEntries().filter((e) => e.tfd === fd && e.ino === ino);
  if (items.length === 0) {
    throw new SwapError(
      `the listener (fd ${fd}) is in no epoll set: this Deno registers it differently`,
    );
  }
  const { events, data } = items[0];
  if (items.some((e) => e.events !== events || e.data !== data)) {
    throw new SwapError(`the listener (fd ${fd}) is registered in several ways`);
  }
  return { epfds: [...new Set(items.map((e) => e.epfd))], events, data };
}

/**
 * Puts the socket at `src` under the listener at `fd`: `src` becomes
 * non-blocking (a blocking accept would freeze the event loop), the old
 * item leaves the epoll set, `fd` is made to name `src`'s file, and the
 * same registration is added back. `src` stays open; the caller closes it.
 */
export function swapUnder(fd: number, src: number, reg: Registration): void {
  libc.setNonBlocking(src);
  libc.epollCtl(reg.epfds[0], libc.EPOLL_CTL_DEL, fd);
  libc.dup3(src, fd);
  libc.epollCtl(reg.epfds[0], libc.EPOLL_CTL_ADD, fd, reg.events, reg.data);
}

/** Checks that `fd` names the socket with inode `ino` and is registered as `reg` says, once. */
export function verifySwap(fd: number, reg: Registration, ino: string): void {
  const now = socketInode(fd);
  if (now !== ino) throw new SwapError(`fd ${fd} is socket ${now}, expected ${ino}`);
  const items = epollEntries().filter((e) => e.tfd === fd);
  for (const epfd of reg.epfds) {
    const mine = items.filter((e) => e.epfd === epfd);
    if (mine.length !== 1) {
      throw new SwapError(`fd ${fd} has ${mine.length} items in epoll fd ${epfd}, expected 1`);
    }
    const [item] = mine;
    if (item.ino !== ino || item.events !== reg.events || item.data !== reg.data) {
      throw new SwapError(`the epoll item of fd ${fd} is not the one the runtime made`);
    }
  }
}
