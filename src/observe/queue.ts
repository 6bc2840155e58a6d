/**
 * The kernel's accept queue of the master's own listening sockets: how many
 * connections wait because every worker is busy. Only the master
 * can see this — it owns the sockets — and it needs no cooperation from the
 * workers.
 *
 * Where the numbers come from (Linux):
 * - TCP: `getsockopt(TCP_INFO)` on a listening socket reports the accept
 *   queue's current length in `tcpi_unacked` and its capacity (the
 *   effective backlog) in `tcpi_sacked` (`tcp_get_info`, LISTEN state).
 * - Unix stream: `ioctl(SIOCINQ)` refuses listeners (EINVAL) and
 *   `/proc/net/unix` has no queue column, so we ask sock_diag over netlink
 *   (`NETLINK_SOCK_DIAG`, `UNIX_DIAG_RQLEN`), as `ss -xl` does: for a
 *   listener `rqueue` is the queue length and `wqueue` the backlog. One exact
 *   lookup by inode per listener; the kernel answers synchronously inside
 *   send(2), so the receive never waits. Kernels without `unix_diag` (or
 *   sandboxes refusing netlink) give no sample for unix listeners rather than
 *   an error.
 *
 * Invariants: sampling is a few syscalls per listener, on demand only (no
 * timer here); it never throws for a socket it cannot read — the listener is
 * left out of the sample — so a metrics scrape cannot fail because of it.
 *
 * @module
 */

import * as libc from "../sys/libc.ts";

/** One listener's accept queue at one moment. */
export interface QueueSample {
  /** Connections accepted by the kernel, waiting for a worker to accept() them. */
  length: number;
  /** How many may wait before the kernel drops or refuses new ones (the effective backlog). */
  capacity: number;
}

/** A listening socket to sample: the master's fd and a label for people and metrics. */
export interface SampledListener {
  readonly fd: number;
  /** How the listener is named in metrics and status (its bind text or address). */
  readonly address: string;
}

/** {@link QueueSample} labelled with its listener. */
export interface ListenerQueue extends QueueSample {
  listener: string;
}

const IPPROTO_TCP = 6;
const TCP_INFO = 11;
/** The start of `struct tcp_info` up to `tcpi_sacked` is 32 bytes; ask for the stable 104. */
const TCP_INFO_SIZE = 104;
const TCP_LISTEN = 10;

/**
 * The accept queue of a listening TCP socket, or undefined when `fd` is not
 * one (or the kernel refuses).
 */
export function tcpQueue(fd: number): QueueSample | undefined {
  try {
    const info = libc.getsockoptBytes(fd, IPPROTO_TCP, TCP_INFO, TCP_INFO_SIZE);
    if (info.length < 32 || info[0] !== TCP_LISTEN) return undefined;
    const view = new DataView(info.buffer, info.byteOffset, info.byteLength);
    return { length: view.getUint32(24, true), capacity: view.getUint32(28, true) };
  } catch {
    return undefined;
  }
}

const AF_UNIX = 1;
const AF_NETLINK = 16;
const SOCK_DGRAM = 2;
const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLMSG_ERROR = 2;
const NLM_F_REQUEST = 1;
const UDIAG_SHOW_RQLEN = 0x10;
const UNIX_DIAG_RQLEN = 4;
const MSG_DONTWAIT = 0x40;
const NLMSG_HDRLEN = 16;
const UNIX_DIAG_MSG_LEN = 16;

/** The inode of the socket behind `fd`, from `/proc/self/fd` (`socket:[N]`). */
export function socketInode(fd: number): number | undefined {
  try {
    const match = /^socket:\[(\d+)\]$/.exec(Deno.readLinkSync(`/proc/self/fd/${fd}`));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** A sock_diag request for one unix socket by inode, asking for its queue lengths. */
export function unixDiagRequest(inode: number, seq: number): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(NLMSG_HDRLEN + 24);
  const view = new DataView(buf.buffer);
  view.setUint32(0, buf.length, true); // nlmsg_len
  view.setUint16(4, SOCK_DIAG_BY_FAMILY, true);
  view.setUint16(6, NLM_F_REQUEST, true);
  view.setUint32(8, seq, true);
  view.setUint32(12, 0, true); // to the kernel
  buf[16] = AF_UNIX; // sdiag_family
  view.setUint32(20, 1 << TCP_LISTEN, true); // udiag_states
  view.setUint32(24, inode, true); // udiag_ino
  view.setUint32(28, UDIAG_SHOW_RQLEN, true); // udiag_show
  view.setUint32(32, 0xffffffff, true); // udiag_cookie: INET_DIAG_NOCOOKIE, no check
  view.setUint32(36, 0xffffffff, true);
  return buf;
}

/**
 * The queue sample in a sock_diag answer for `inode`, or undefined when the
 * answer is an error or holds no `UNIX_DIAG_RQLEN`. Exported for tests.
 */
export function parseUnixDiagAnswer(buf: Uint8Array, inode: number): QueueSample | undefined {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = view.getUint32(off, true);
    const type = view.getUint16(off + 4, true);
    if (len < NLMSG_HDRLEN || off + len > buf.length) return undefined;
    if (type === NLMSG_ERROR) return undefined;
    if (type === SOCK_DIAG_BY_FAMILY && len >= NLMSG_HDRLEN + UNIX_DIAG_MSG_LEN) {
      const msg = off + NLMSG_HDRLEN;
      if (view.getUint32(msg + 4, true) === inode) {
        let attr = msg + UNIX_DIAG_MSG_LEN;
        while (attr + 4 <= off + len) {
          const alen = view.getUint16(attr, true);
          const atype = view.getUint16(attr + 2, true);
          if (alen < 4) break;
          if (atype === UNIX_DIAG_RQLEN && alen >= 12) {
            return {
              length: view.getUint32(attr + 4, true),
              capacity: view.getUint32(attr + 8, true),
            };
          }
          attr += (alen + 3) & ~3;
        }
      }
    }
    off += (len + 3) & ~3;
  }
  return undefined;
}

/**
 * The accept queues of listening unix stream sockets, by inode, through one
 * netlink socket opened for this call. Inodes the kernel does not answer for
 * are missing from the result.
 */
export function unixQueues(inodes: readonly number[]): Map<number, QueueSample> {
  const out = new Map<number, QueueSample>();
  if (inodes.length === 0) return out;
  let nl: number;
  try {
    nl = libc.socket(AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG);
  } catch {
    return out;
  }
  try {
    const answer = new Uint8Array(8192);
    inodes.forEach((inode, i) => {
      try {
        libc.send(nl, unixDiagRequest(inode, i + 1));
        const n = libc.recv(nl, answer, MSG_DONTWAIT);
        const sample = parseUnixDiagAnswer(answer.subarray(0, n), inode);
        if (sample) out.set(inode, sample);
      } catch { /* no unix_diag here, or the socket is gone: no sample */ }
    });
  } finally {
    libc.close(nl);
  }
  return out;
}

/**
 * Sample the accept queue of every listener that can be read. Cheap (a few
 * syscalls per listener) and synchronous; call it when someone asks
 * (`/metrics`, `ctl status`) or from the autoscaler's slow timer.
 *
 * @example Usage
 * ```ts
 * import { sampleQueues } from "./queue.ts";
 * const queues = sampleQueues([{ fd: 3, address: "127.0.0.1:8000" }]);
 * // [{ listener: "127.0.0.1:8000", length: 3, capacity: 2048 }]
 * ```
 */
export function sampleQueues(listeners: readonly SampledListener[]): ListenerQueue[] {
  const results: (ListenerQueue | undefined)[] = [];
  const unix: { index: number; inode: number }[] = [];
  listeners.forEach((l, index) => {
    const tcp = tcpQueue(l.fd);
    if (tcp) {
      results[index] = { listener: l.address, ...tcp };
      return;
    }
    const inode = socketInode(l.fd);
    if (inode !== undefined) unix.push({ index, inode });
  });
  const answers = unixQueues(unix.map((u) => u.inode));
  for (const { index, inode } of unix) {
    const sample = answers.get(inode);
    if (sample) results[index] = { listener: listeners[index].address, ...sample };
  }
  return results.filter((r): r is ListenerQueue => r !== undefined);
}
