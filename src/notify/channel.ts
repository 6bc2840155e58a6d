/**
 * One worker's two notify sockets, made through FFI (src/sys/unix.ts) so the
 * kernel tells who sent each message: the datagram socket has SO_PASSCRED,
 * the stream socket's connections are checked by SO_PEERCRED at accept.
 * The hub (hub.ts) owns the epoll set and decides what to do with what a
 * channel reads; a channel only knows its sockets, its files and its
 * worker's pid.
 *
 * Invariants:
 * - From the moment `<serial>.sock` / `<serial>.stream` exist, they are mode
 *   0600 and owned by the worker's user (bound under a hidden staging name,
 *   chmod/chown'ed, then renamed).
 * - A sender is accepted only while the worker's pid is known
 *   ({@link Channel.workerPid}) and the sender is that pid or a descendant
 *   of it (sender.ts).
 * - `close()` closes every fd of the channel and removes exactly its two
 *   files; it is idempotent.
 *
 * @module
 */

import type { LineSplitter } from "../output/lines.ts";

import { bindUnix, closeFd } from "../sys/unix.ts";
import { speaksFor } from "./sender.ts";

/** The paths a worker is told about. */
export interface NotifyEndpoints {
  /** For `NOTIFY_SOCKET`: a unix datagram socket speaking sd_notify. */
  notifySocket: string;
  /** For `ARBITER_NOTIFY_STREAM`: a unix stream socket, one `KEY=VALUE` message per line. */
  streamSocket: string;
}

/** Who the worker runs as, when that is not the master's own user. */
export interface SocketOwner {
  uid: number;
  gid?: number;
}

/** An accepted stream connection and the splitter holding a line whose end has not come yet. */
export interface StreamConn {
  fd: number;
  token: number;
  lines: LineSplitter;
}

/** One worker's sockets. */
export class Channel {
  readonly serial: number;
  readonly paths: NotifyEndpoints;
  readonly dgramFd: number;
  readonly listenFd: number;
  /** Open stream connections by fd. */
  readonly conns = new Map<number, StreamConn>();
  /** The worker's pid, once it is spawned; until then nobody may send. */
  workerPid?: number;
  #closed = false;

  private constructor(serial: number, paths: NotifyEndpoints, dgramFd: number, listenFd: number) {
    this.serial = serial;
    this.paths = paths;
    this.dgramFd = dgramFd;
    this.listenFd = listenFd;
  }

  /**
   * Binds worker `serial`'s sockets in `dir` (see the module notes).
   * `stage()` gives a fresh hidden staging path in `dir`.
   * @throws when a socket cannot be made
   */
  static async open(
    dir: string,
    serial: number,
    owner: SocketOwner | undefined,
    stage: () => string,
  ): Promise<Channel> {
    const paths: NotifyEndpoints = {
      notifySocket: `${dir}/${serial}.sock`,
      streamSocket: `${dir}/${serial}.stream`,
    };
    const dgramStage = stage();
    const streamStage = stage();
    const fds: number[] = [];
    try {
      fds.push(bindUnix(dgramStage, "datagram"));
      fds.push(bindUnix(streamStage, "stream"));
      for (const path of [dgramStage, streamStage]) {
        await Deno.chmod(path, 0o600);
        if (owner) await Deno.chown(path, owner.uid, owner.gid ?? null);
      }
      await Deno.rename(dgramStage, paths.notifySocket);
      await Deno.rename(streamStage, paths.streamSocket);
    } catch (err) {
      for (const fd of fds) closeFd(fd);
      for (const p of [dgramStage, streamStage, paths.notifySocket, paths.streamSocket]) {
        removeQuietly(p);
      }
      throw new Error(`notify: cannot open the sockets of worker ${serial}: ${errText(err)}`, {
        cause: err,
      });
    }
    return new Channel(serial, paths, fds[0], fds[1]);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Whether a message from `pid` (as the kernel reports it) speaks for this worker. */
  accepts(pid: number | undefined): boolean {
    return pid !== undefined && this.workerPid !== undefined && speaksFor(pid, this.workerPid);
  }

  /** Closes one stream connection. */
  closeConn(conn: StreamConn): void {
    if (this.conns.delete(conn.fd)) closeFd(conn.fd);
  }

  /** Closes every fd and removes the two files. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeFd(this.dgramFd);
    closeFd(this.listenFd);
    for (const conn of this.conns.values()) closeFd(conn.fd);
    this.conns.clear();
    removeQuietly(this.paths.notifySocket);
    removeQuietly(this.paths.streamSocket);
  }
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // Gone already.
  }
}

export function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
