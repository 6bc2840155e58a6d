/**
 * Stops new TCP handshakes on a listening socket without closing it, so the
 * connections already in its accept queue can still be accepted and served.
 *
 * How: a classic BPF socket filter (`SO_ATTACH_FILTER`) that drops every
 * segment with SYN set and ACK clear, and lets everything else through. The
 * kernel runs a listener's filter on each incoming SYN and on the final ACK
 * of a half-open handshake:
 * - a new SYN is dropped, so the client retransmits it (after about 1 s,
 *   then 3 s …) and, once the listener is finally closed, gets a refusal —
 *   never a reset after it believed it was connected;
 * - the final ACK of a handshake already under way passes, so that
 *   connection completes and joins the queue the workers drain.
 * Sockets accepted afterwards inherit the filter; it lets their segments
 * through (none of them is a bare SYN). `SO_DETACH_FILTER` undoes it.
 *
 * Unix stream sockets run no filter on connect(2): there is no way to refuse
 * new connections while keeping the queue, so {@link stopHandshakes} reports
 * them as not covered (docs/stopping.md, "Unix sockets").
 *
 * @module
 */

import * as libc from "./libc.ts";

const SOL_SOCKET = 1;
const SO_ATTACH_FILTER = 26;
const SO_DETACH_FILTER = 27;

/** BPF opcodes used below. */
const LD_B_ABS = 0x30; // A = byte at [k] of the segment (the TCP header on a TCP socket)
const ALU_AND_K = 0x54; // A &= k
const JMP_JEQ_K = 0x15; // if A == k skip jt else skip jf
const RET_K = 0x06; // return k bytes (0: drop)

const TCP_FLAGS_OFFSET = 13;
const SYN = 0x02;
const ACK = 0x10;

/** The filter program: `(flags & (SYN|ACK)) == SYN` → drop, else keep. */
const PROGRAM: [code: number, jt: number, jf: number, k: number][] = [
  [LD_B_ABS, 0, 0, TCP_FLAGS_OFFSET],
  [ALU_AND_K, 0, 0, SYN | ACK],
  [JMP_JEQ_K, 0, 1, SYN],
  [RET_K, 0, 0, 0],
  [RET_K, 0, 0, 0xffff_ffff],
];

/** The instructions as `struct sock_filter[]` (u16 code, u8 jt, u8 jf, u32 k). */
const instructions = new Uint8Array(PROGRAM.length * 8);
{
  const view = new DataView(instructions.buffer);
  PROGRAM.forEach(([code, jt, jf, k], i) => {
    view.setUint16(i * 8, code, true);
    view.setUint8(i * 8 + 2, jt);
    view.setUint8(i * 8 + 3, jf);
    view.setUint32(i * 8 + 4, k, true);
  });
}

/** `struct sock_fprog`: u16 len, padding, pointer to the instructions (64-bit Linux). */
function fprog(): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, PROGRAM.length, true);
  const address = Deno.UnsafePointer.value(Deno.UnsafePointer.of(instructions));
  view.setBigUint64(8, BigInt(address), true);
  return bytes;
}

/**
 * Makes the TCP listener `fd` drop new handshakes. Returns false for a socket
 * that is not TCP (a unix socket); throws {@link libc.SysError} if the kernel
 * refuses the filter.
 */
export function stopHandshakes(fd: number): boolean {
  if (libc.getsockname(fd).family === "unix") return false;
  libc.setsockoptBytes(fd, SOL_SOCKET, SO_ATTACH_FILTER, fprog());
  return true;
}

/** Lets new handshakes in again on `fd` (a reload that removed it was abandoned). */
export function resumeHandshakes(fd: number): void {
  try {
    libc.setsockoptBytes(fd, SOL_SOCKET, SO_DETACH_FILTER, new Uint8Array(4));
  } catch { /* no filter attached (ENOENT): nothing to undo */ }
}
