/**
 * Per-worker notify channels: for every worker, a unix datagram socket
 * speaking sd_notify (its `NOTIFY_SOCKET`) and a unix stream socket taking
 * the same `KEY=VALUE` text one message per line (its
 * `ARBITER_NOTIFY_STREAM`, for runtimes such as Node that cannot send unix
 * datagrams). A message is attributed to a worker by the socket it arrives
 * on, never by a pid it carries.
 *
 * Sender check (docs/contract.md, "Security": a worker's notify socket accepts messages from that
 * worker only). Paths alone cannot ensure it: the names are predictable and
 * a same-uid sibling can read the worker's environment in /proc. So the
 * kernel's word on the sender decides: SCM_CREDENTIALS on each datagram,
 * SO_PEERCRED on each stream connection (as systemd's `NotifyAccess=`). A
 * message counts only if it comes from the worker's pid (given by
 * {@link NotifyHub.setWorkerPid} right after the spawn) or a descendant of
 * it (a shell worker's `systemd-notify`); anything else is dropped, counted
 * in {@link NotifyHub.droppedMessages} and reported (rate-limited) to
 * `onGarbage`. Fds passed along (SCM_RIGHTS) are closed at once.
 *
 * Waiting costs no wake-ups: every socket of the hub is in one epoll set,
 * whose `epoll_wait` runs off the main thread (src/sys/unix.ts); the main
 * thread then drains the ready sockets without blocking. An eventfd ends the
 * wait on close.
 *
 * Files: one private directory per hub, `<serial>.sock` and
 * `<serial>.stream` in it.
 *
 * Permissions — workers may run as another user (`user =`), so:
 * - the directory is mode 0711: anyone may pass through it to a path they
 *   already know, nobody but the master may list it or create files in it;
 * - each socket is bound under a random hidden name (unguessable, since the
 *   directory cannot be listed), made mode 0600 and, when `open()` is given
 *   an owner, chowned to the worker's uid/gid, and only then renamed to its
 *   public name. So from the moment `<serial>.sock` exists, only the
 *   worker's user (and root) can connect to it, whatever the umask; no
 *   process-wide umask change is needed.
 * - the directory is made in the master's runtime directory, chosen before
 *   start (src/cli/directories.ts): for a root master, whose workers may
 *   run as another user, only one that others can pass through all the way
 *   down (`$XDG_RUNTIME_DIR` is normally 0700).
 *
 * Nothing here throws from the loop: a failing socket is reported through
 * `onGarbage` and closed; garbage is reported and the channel keeps working.
 * What a message read here is worth (its sender, its syntax) is judged in
 * delivery.ts.
 *
 * @module
 */

import {
  acceptWithCredentials,
  closeFd,
  DatagramReceiver,
  EpollSet,
  recvStream,
} from "../sys/unix.ts";
import { Channel, errText, type StreamConn } from "./channel.ts";
import { LineSplitter } from "../output/lines.ts";
import type { NotifyEndpoints, SocketOwner } from "./channel.ts";
import { makeHubDir, MAX_SOCKET_PATH, removeHubDir } from "./dir.ts";
import { MAX_NOTIFY_BYTES } from "./protocol.ts";
import { Delivery, type GarbageHandler, type NotifyHandler } from "./delivery.ts";

export type { GarbageHandler, NotifyEndpoints, NotifyHandler, SocketOwner };
export { MAX_SOCKET_PATH };

/** The environment variables that point a worker at its channels. */
export function notifyEnv(endpoints: NotifyEndpoints): Record<string, string> {
  return { NOTIFY_SOCKET: endpoints.notifySocket, ARBITER_NOTIFY_STREAM: endpoints.streamSocket };
}

/** Open stream connections allowed per worker; more are closed at once (garbage). */
export const MAX_STREAM_CONNECTIONS = 32;
/** Most messages (or accepts) taken from one socket per wake-up, so one cannot starve the rest. */
const BATCH = 64;

const BARRIER = new TextEncoder().encode("BARRIER=1");

/** Whether a datagram is `BARRIER=1` alone (a trailing newline allowed), as `sd_notify_barrier()` sends it. */
function isBarrierOnly(payload: Uint8Array): boolean {
  const n = payload.length - (payload[payload.length - 1] === 0x0a ? 1 : 0);
  return n === BARRIER.length && BARRIER.every((b, i) => payload[i] === b);
}

type Target =
  | { kind: "dgram"; ch: Channel }
  | { kind: "listen"; ch: Channel }
  | { kind: "conn"; ch: Channel; conn: StreamConn };

/** The per-worker notify sockets of one master. */
export class NotifyHub {
  /** The private directory holding every socket. */
  readonly dir: string;

  readonly #delivery: Delivery;
  readonly #channels = new Map<number, Channel>();
  /** Serials whose `open()` is under way. */
  readonly #opening = new Set<number>();
  /** Those opens themselves: `closeAll` waits for them, so no socket file outlives the directory. */
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #epoll: EpollSet;
  /** What each epoll token stands for; tokens are never reused. */
  readonly #targets = new Map<number, Target>();
  #nextToken = 1;
  readonly #receiver = new DatagramReceiver(MAX_NOTIFY_BYTES + 1);
  readonly #streamBuf = new Uint8Array(8192);
  readonly #loop: Promise<void>;
  #closed = false;

  private constructor(dir: string, onMessage: NotifyHandler, onGarbage?: GarbageHandler) {
    this.dir = dir;
    this.#delivery = new Delivery(onMessage, onGarbage);
    this.#epoll = new EpollSet();
    // #run catches everything it can; this only keeps a bug from becoming an unhandled rejection.
    this.#loop = this.#run().catch((err) =>
      this.#delivery.garbage(-1, `notify hub failed: ${errText(err)}`)
    );
  }

  /**
   * Makes the hub's private directory in `parent` (see the module notes for
   * why mode 0711). Calls `onMessage` for every well-formed, non-empty
   * message from the right sender and `onGarbage` for every refused one.
   * Neither should throw; if `onMessage` does, that is reported to
   * `onGarbage`.
   * @throws {ConfigError} when no directory short enough for socket paths can be made there
   */
  static async create(
    parent: string,
    onMessage: NotifyHandler,
    onGarbage?: GarbageHandler,
  ): Promise<NotifyHub> {
    const dir = await makeHubDir(parent);
    try {
      return new NotifyHub(dir, onMessage, onGarbage);
    } catch (error) {
      removeHubDir(dir);
      throw error;
    }
  }

  /** Messages (and stream connections) dropped because another process sent them. */
  get droppedMessages(): number {
    return this.#delivery.dropped;
  }

  /**
   * Opens worker `serial`'s two sockets and starts receiving on both. Call it
   * before spawning the worker and pass the paths in its environment (see
   * {@link notifyEnv}); then {@link setWorkerPid}. `owner`: the worker's
   * uid/gid when it runs as another user (the master must then be root).
   * @throws when `serial` is already open, the hub is closed, or a socket cannot be made
   */
  async open(serial: number, owner?: SocketOwner): Promise<NotifyEndpoints> {
    if (this.#closed) throw new Error("notify hub is closed");
    if (!Number.isSafeInteger(serial) || serial < 0) {
      throw new RangeError(`notify: bad worker serial ${serial}`);
    }
    if (this.#channels.has(serial) || this.#opening.has(serial)) {
      throw new Error(`notify: worker ${serial} is already open`);
    }
    this.#opening.add(serial);
    let ch: Channel;
    const opening = Channel.open(this.dir, serial, owner, () => this.#stagingPath());
    this.#inFlight.add(opening);
    try {
      ch = await opening;
    } finally {
      this.#opening.delete(serial);
      this.#inFlight.delete(opening);
    }
    if (this.#closed) {
      ch.close(); // closeAll() ran meanwhile
      throw new Error("notify hub is closed");
    }
    try {
      this.#watch(ch.dgramFd, { kind: "dgram", ch });
      this.#watch(ch.listenFd, { kind: "listen", ch });
    } catch (err) {
      this.#forget(ch);
      ch.close();
      throw new Error(`notify: cannot watch the sockets of worker ${serial}: ${errText(err)}`);
    }
    this.#channels.set(serial, ch);
    return ch.paths;
  }

  /**
   * Tells the hub worker `serial`'s pid: from now on, messages on its
   * sockets count when they come from that process or its descendants.
   */
  setWorkerPid(serial: number, pid: number): void {
    const ch = this.#channels.get(serial);
    if (ch && Number.isSafeInteger(pid) && pid > 1) ch.workerPid = pid;
  }

  /** Stops receiving for worker `serial`, closes its sockets and removes their files. */
  close(serial: number): void {
    const ch = this.#channels.get(serial);
    if (!ch) return;
    this.#channels.delete(serial);
    this.#forget(ch);
    ch.close();
  }

  /** Closes every channel, ends the wait, and removes the directory. */
  async closeAll(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      for (const serial of [...this.#channels.keys()]) this.close(serial);
      this.#epoll.wake();
    }
    await this.#loop;
    // A worker's sockets still being made (a TERM during a crash loop): let
    // them finish, and be closed by open() itself, before the directory goes.
    await Promise.allSettled([...this.#inFlight]);
    this.#epoll.close();
    removeHubDir(this.dir);
  }

  /**
   * Reads, without waiting, every message already queued on any worker's
   * sockets and hands each to `onMessage` now — for the master to call before
   * it judges deadlines after a pause, so a ping that waited is not missed.
   * Returns how many sockets were read.
   */
  drainPending(): number {
    let read = 0;
    for (const [token, target] of [...this.#targets]) {
      if (target.ch.closed) continue;
      read++;
      this.#service(token, target);
    }
    return read;
  }

  /** Serials with open channels. */
  get serials(): number[] {
    return [...this.#channels.keys()];
  }

  #stagingPath(): string {
    return `${this.dir}/.${crypto.randomUUID().replaceAll("-", "")}`;
  }

  #watch(fd: number, target: Target): number {
    const token = this.#nextToken++;
    this.#epoll.add(fd, token);
    this.#targets.set(token, target);
    return token;
  }

  /** Drops every token of `ch` (its fds are about to close, which leaves the epoll set). */
  #forget(ch: Channel): void {
    for (const [token, target] of this.#targets) {
      if (target.ch === ch) this.#targets.delete(token);
    }
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#closed) {
      const tokens = await this.#epoll.wait().catch(() => undefined);
      if (tokens === undefined || (tokens.length === 0 && !this.#closed)) {
        // EINTR or a wake-up; a persistent failure must not spin.
        if (++failures > 8) await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      failures = 0;
      for (const token of tokens) {
        const target = this.#targets.get(token);
        if (!target || target.ch.closed) continue;
        this.#service(token, target);
      }
    }
  }

  /** Reads what is waiting on one socket; a failing socket is reported and closed. */
  #service(token: number, target: Target): void {
    try {
      if (target.kind === "dgram") this.#drainDatagrams(target.ch);
      else if (target.kind === "listen") this.#acceptAll(target.ch);
      else this.#readConn(target.ch, target.conn, token);
    } catch (err) {
      this.#delivery.garbage(target.ch.serial, `notify socket failed: ${errText(err)}`);
      if (target.kind === "conn") this.#dropConn(target.ch, target.conn, token);
      else this.close(target.ch.serial);
    }
  }

  #drainDatagrams(ch: Channel): void {
    for (let i = 0; i < BATCH && !ch.closed; i++) {
      const d = this.#receiver.receive(ch.dgramFd);
      if (d === undefined) return;
      // A lone BARRIER=1 says nothing and is never handed on; its fd is closed
      // as it is read, which lets `systemd-notify` exit before its pid could
      // be checked, so it is not checked (it would be dropped as a stranger's).
      if (isBarrierOnly(d.payload)) continue;
      if (!ch.accepts(d.sender?.pid)) {
        this.#delivery.drop(ch, d.sender?.pid);
        continue;
      }
      // One byte over the limit at most: refused as too long by checkNotify.
      this.#delivery.deliver(ch, d.payload.slice());
    }
  }

  #acceptAll(ch: Channel): void {
    for (let i = 0; i < BATCH && !ch.closed; i++) {
      const accepted = acceptWithCredentials(ch.listenFd);
      if (accepted === undefined) return;
      if (!ch.accepts(accepted.peer.pid)) {
        closeFd(accepted.fd);
        this.#delivery.drop(ch, accepted.peer.pid);
        continue;
      }
      if (ch.conns.size >= MAX_STREAM_CONNECTIONS) {
        closeFd(accepted.fd);
        this.#delivery.garbage(
          ch.serial,
          `more than ${MAX_STREAM_CONNECTIONS} notify stream connections; closed the new one`,
        );
        continue;
      }
      const conn: StreamConn = {
        fd: accepted.fd,
        token: 0,
        lines: new LineSplitter({
          maxBytes: MAX_NOTIFY_BYTES,
          long: "stop",
          onLine: (line) => {
            this.#delivery.deliver(ch, line);
            return !ch.closed && ch.conns.has(conn.fd);
          },
          onStop: () => this.#tooLong(ch, conn, conn.token),
        }),
      };
      ch.conns.set(conn.fd, conn);
      try {
        conn.token = this.#watch(conn.fd, { kind: "conn", ch, conn });
      } catch (err) {
        ch.closeConn(conn);
        throw err;
      }
    }
  }

  /** Reads one stream connection: each `\n`-terminated line is one message. */
  #readConn(ch: Channel, conn: StreamConn, token: number): void {
    for (let i = 0; i < BATCH && !ch.closed; i++) {
      const got = recvStream(conn.fd, this.#streamBuf);
      if (got === "empty") return;
      if (got === "eof") {
        // A last line without its newline still counts.
        conn.lines.end();
        this.#dropConn(ch, conn, token);
        return;
      }
      conn.lines.push(got);
      if (conn.lines.stopped) return;
    }
  }

  #tooLong(ch: Channel, conn: StreamConn, token: number): void {
    this.#delivery.garbage(ch.serial, `notify stream line over ${MAX_NOTIFY_BYTES} bytes; closed`);
    this.#dropConn(ch, conn, token);
  }

  #dropConn(ch: Channel, conn: StreamConn, token: number): void {
    this.#targets.delete(token);
    ch.closeConn(conn);
  }
}
