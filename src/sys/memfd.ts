/**
 * Sealed memory files (memfd) for handing bytes across an `execve` of the
 * same process: the writer makes an anonymous file, writes it, and seals it
 * against every change; the file stays open (no FD_CLOEXEC) across the exec;
 * the reader checks that the fd really is such a file before reading it.
 *
 * Why this proves where the bytes came from: the environment alone cannot
 * make an open file appear in a process. A fresh start could only get one
 * from its parent, and a memfd is owned by the user that made it, so the
 * reader accepts only a memfd with the expected name, owned by its own uid,
 * carrying all four seals (so nobody can change it after the check).
 *
 * Linux only (memfd_create: glibc 2.27, kernel 3.17), through the one
 * binding in libc.ts.
 *
 * @module
 */

import { close, fcntl, libc as lib } from "./libc.ts";

const MFD_ALLOW_SEALING = 2;
const F_ADD_SEALS = 1033;
const F_GET_SEALS = 1034;
/** F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE. */
const ALL_SEALS = 1 | 2 | 4 | 8;

/**
 * A new memfd named `name` holding `bytes`, sealed, inheritable across exec.
 * The caller closes it if the exec does not happen.
 * @throws when the kernel refuses
 */
export function writeSealedMemfd(name: string, bytes: Uint8Array): number {
  const fd = lib().memfd_create(new TextEncoder().encode(name + "\0"), MFD_ALLOW_SEALING);
  if (fd < 0) throw new Error("memfd_create failed");
  try {
    let done = 0;
    while (done < bytes.length) {
      const n = Number(lib().write(fd, bytes.subarray(done), BigInt(bytes.length - done)));
      if (n <= 0) throw new Error("write to memfd failed");
      done += n;
    }
    fcntl(fd, F_ADD_SEALS, ALL_SEALS);
  } catch (error) {
    close(fd);
    throw error;
  }
  return fd;
}

/**
 * Reads fd `fd` if, and only if, it is a sealed memfd named `name` owned by
 * this process's uid and at most `maxBytes` long; then closes it. Otherwise
 * returns why not, closing the fd only if it is a memfd by that name (any
 * other fd may be someone else's, such as a socket from systemd).
 */
export function readSealedMemfd(
  fd: number,
  name: string,
  maxBytes: number,
): { bytes: Uint8Array } | { why: string } {
  if (!Number.isSafeInteger(fd) || fd < 3 || fd > 0x7fffffff) return { why: `bad fd ${fd}` };
  const link = `/proc/self/fd/${fd}`;
  let target: string;
  try {
    target = Deno.readLinkSync(link);
  } catch {
    return { why: `fd ${fd} is not open` };
  }
  if (target !== `/memfd:${name} (deleted)`) return { why: `fd ${fd} is not our memfd` };
  // From here on the fd is a memfd by our name: ours to close whatever it holds, so a
  // forged one does not stay open into hooks (workers get only their sockets anyway).
  const refuse = (why: string) => {
    close(fd);
    return { why };
  };
  let seals: number;
  let info: Deno.FileInfo;
  try {
    seals = fcntl(fd, F_GET_SEALS);
    info = Deno.statSync(link);
  } catch (error) {
    return refuse(`fd ${fd}: ${(error as Error).message}`);
  }
  if ((seals & ALL_SEALS) !== ALL_SEALS) return refuse(`fd ${fd} is not sealed`);
  if (info.uid !== Deno.uid()) return refuse(`fd ${fd} belongs to uid ${info.uid}`);
  if (!info.isFile || info.size > maxBytes) return refuse(`fd ${fd} is over ${maxBytes} bytes`);
  const bytes = new Uint8Array(info.size);
  const n = Number(lib().pread(fd, bytes, BigInt(bytes.length), 0n));
  close(fd);
  if (n !== bytes.length) return { why: `fd ${fd}: short read` };
  return { bytes };
}
