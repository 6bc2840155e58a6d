/**
 * Per-worker notify channels: for every worker, a unix datagram socket
 * speaking sd_notify (its `NOTIFY_SOCKET`) and a unix stream socket taking
 * the same `KEY=VALUE` text one message per line (its
 * `ARBITER_NOTIFY_STREAM`, for runtimes such as Node that cannot send unix
 * datagrams). A message is attributed to a worker by the socket it arrives
 * on, never by a pid it carries: only that worker is told the path.
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
 * - `$XDG_RUNTIME_DIR` is used when set and writable, except when the
 *   master runs as root: a root master may hand sockets to workers of
 *   another user, and `$XDG_RUNTIME_DIR` is normally 0700, so it then uses a
 *   fresh directory under the temp dir instead (unless every directory
 *   above the runtime dir lets others pass through).
 *
 * The receive loops never throw: closing a socket ends its loop quietly;
 * garbage is reported through `onGarbage` and the channel keeps working.
 *
 * @module
 */

import { makeHubDir, MAX_SOCKET_PATH, removeHubDir } from "./dir.ts";
import { checkNotify, MAX_NOTIFY_BYTES } from "./protocol.ts";

export { MAX_SOCKET_PATH };

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

/** Called for each message, with the serial of the worker whose socket it came in on. */
export type NotifyHandler = (serial: number, fields: Record<string, string>) => void;
/** Called for each refused message (or a channel failing), with a reason for the log. */
export type GarbageHandler = (serial: number, why: string) => void;

/** The environment variables that point a worker at its channels. */
export function notifyEnv(endpoints: NotifyEndpoints): Record<string, string> {
  return { NOTIFY_SOCKET: endpoints.notifySocket, ARBITER_NOTIFY_STREAM: endpoints.streamSocket };
}

/** Open stream connections allowed per worker; more are closed at once (garbage). */
export const MAX_STREAM_CONNECTIONS = 32;

interface Channel {
  serial: number;
  dgram: Deno.DatagramConn;
  listener: Deno.Listener;
  conns: Set<Deno.Conn>;
  paths: NotifyEndpoints;
  closed: boolean;
}

/** The per-worker notify sockets of one master. */
export class NotifyHub {
  /** The private directory holding every socket. */
  readonly dir: string;

  #onMessage: NotifyHandler;
  #onGarbage: GarbageHandler;
  #channels = new Map<number, Channel>();
  /** Serials whose `open()` is under way. */
  #opening = new Set<number>();
  /** Every running loop (also of channels already closed), awaited by {@link closeAll}. */
  #loops = new Set<Promise<void>>();
  #closed = false;

  private constructor(dir: string, onMessage: NotifyHandler, onGarbage?: GarbageHandler) {
    this.dir = dir;
    this.#onMessage = onMessage;
    this.#onGarbage = onGarbage ?? (() => {});
  }

  /**
   * Makes the hub's private directory (see the module notes for where and
   * why mode 0711). Calls `onMessage` for every well-formed, non-empty
   * message and `onGarbage` for every refused one. Neither should throw; if
   * `onMessage` does, that is reported to `onGarbage`.
   * @throws without `--unstable-net`, or when no directory short enough for
   *   socket paths can be made
   */
  static async create(onMessage: NotifyHandler, onGarbage?: GarbageHandler): Promise<NotifyHub> {
    if (typeof Deno.listenDatagram !== "function") {
      throw new Error("notify: unix datagram sockets need Deno's --unstable-net flag");
    }
    const dir = await makeHubDir();
    return new NotifyHub(dir, onMessage, onGarbage);
  }

  /**
   * Opens worker `serial`'s two sockets and starts receiving on both. Call it
   * before spawning the worker and pass the paths in its environment (see
   * {@link notifyEnv}). `owner`: the worker's uid/gid when it runs as
   * another user (the master must then be root).
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
    try {
      return await this.#open(serial, owner);
    } finally {
      this.#opening.delete(serial);
    }
  }

  async #open(serial: number, owner?: SocketOwner): Promise<NotifyEndpoints> {
    const paths: NotifyEndpoints = {
      notifySocket: `${this.dir}/${serial}.sock`,
      streamSocket: `${this.dir}/${serial}.stream`,
    };
    const dgramStage = this.#stagingPath();
    const streamStage = this.#stagingPath();
    let dgram: Deno.DatagramConn | undefined;
    let listener: Deno.Listener | undefined;
    try {
      dgram = Deno.listenDatagram({ transport: "unixpacket", path: dgramStage });
      listener = Deno.listen({ transport: "unix", path: streamStage });
      for (const stage of [dgramStage, streamStage]) {
        await Deno.chmod(stage, 0o600);
        if (owner) await Deno.chown(stage, owner.uid, owner.gid ?? null);
      }
      await Deno.rename(dgramStage, paths.notifySocket);
      await Deno.rename(streamStage, paths.streamSocket);
    } catch (err) {
      dgram?.close();
      listener?.close();
      for (const p of [dgramStage, streamStage, paths.notifySocket, paths.streamSocket]) {
        removeQuietly(p);
      }
      throw new Error(`notify: cannot open the sockets of worker ${serial}: ${errText(err)}`, {
        cause: err,
      });
    }
    if (this.#closed) {
      // closeAll() ran meanwhile.
      dgram.close();
      listener.close();
      removeQuietly(paths.notifySocket);
      removeQuietly(paths.streamSocket);
      throw new Error("notify hub is closed");
    }
    const ch: Channel = { serial, dgram, listener, conns: new Set(), paths, closed: false };
    this.#channels.set(serial, ch);
    this.#track(this.#receiveLoop(ch));
    this.#track(this.#acceptLoop(ch));
    return paths;
  }

  /** Stops receiving for worker `serial`, closes its sockets and removes their files. */
  close(serial: number): void {
    const ch = this.#channels.get(serial);
    if (!ch) return;
    this.#channels.delete(serial);
    ch.closed = true;
    closeQuietly(ch.dgram);
    closeQuietly(ch.listener);
    for (const c of ch.conns) closeQuietly(c);
    ch.conns.clear();
    removeQuietly(ch.paths.notifySocket);
    removeQuietly(ch.paths.streamSocket);
  }

  /** Closes every channel, waits for their loops to end, and removes the directory. */
  async closeAll(): Promise<void> {
    this.#closed = true;
    for (const serial of [...this.#channels.keys()]) this.close(serial);
    await Promise.all([...this.#loops]);
    removeHubDir(this.dir);
  }

  /** Serials with open channels. */
  get serials(): number[] {
    return [...this.#channels.keys()];
  }

  #stagingPath(): string {
    return `${this.dir}/.${crypto.randomUUID().replaceAll("-", "")}`;
  }

  #track(loop: Promise<void>): void {
    this.#loops.add(loop);
    loop.finally(() => this.#loops.delete(loop));
  }

  #deliver(ch: Channel, payload: Uint8Array): void {
    if (ch.closed) return;
    const r = checkNotify(payload);
    if (!r.ok) {
      this.#garbage(ch.serial, r.why);
      return;
    }
    if (Object.keys(r.fields).length === 0) return;
    try {
      this.#onMessage(ch.serial, r.fields);
    } catch (err) {
      this.#garbage(ch.serial, `notify handler failed: ${errText(err)}`);
    }
  }

  #garbage(serial: number, why: string): void {
    try {
      this.#onGarbage(serial, why);
    } catch {
      // Nothing left to report it to; the channel goes on.
    }
  }

  async #receiveLoop(ch: Channel): Promise<void> {
    // One byte more than the limit: a longer datagram arrives truncated to
    // this size, and is then refused as too long.
    const buf = new Uint8Array(MAX_NOTIFY_BYTES + 1);
    while (!ch.closed) {
      let payload: Uint8Array;
      try {
        [payload] = await ch.dgram.receive(buf);
      } catch (err) {
        if (!ch.closed) this.#garbage(ch.serial, `notify socket failed: ${errText(err)}`);
        return;
      }
      this.#deliver(ch, payload);
    }
  }

  async #acceptLoop(ch: Channel): Promise<void> {
    while (!ch.closed) {
      let conn: Deno.Conn;
      try {
        conn = await ch.listener.accept();
      } catch (err) {
        if (!ch.closed) this.#garbage(ch.serial, `notify stream socket failed: ${errText(err)}`);
        return;
      }
      if (ch.closed) {
        closeQuietly(conn);
        return;
      }
      if (ch.conns.size >= MAX_STREAM_CONNECTIONS) {
        closeQuietly(conn);
        this.#garbage(
          ch.serial,
          `more than ${MAX_STREAM_CONNECTIONS} notify stream connections; closed the new one`,
        );
        continue;
      }
      ch.conns.add(conn);
      this.#track(this.#readLoop(ch, conn));
    }
  }

  /** Reads one stream connection: each `\n`-terminated line is one message. */
  async #readLoop(ch: Channel, conn: Deno.Conn): Promise<void> {
    const buf = new Uint8Array(8192);
    // The start of a line whose end has not arrived yet.
    let pending: Uint8Array = new Uint8Array(0);
    try {
      while (!ch.closed) {
        let n: number | null;
        try {
          n = await conn.read(buf);
        } catch {
          return; // closed by us, or reset by the worker
        }
        if (n === null) {
          // End of stream: a last line without its newline still counts.
          if (pending.length > 0) this.#deliver(ch, pending);
          return;
        }
        let chunk = buf.subarray(0, n);
        for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a)) {
          const end = chunk.subarray(0, nl);
          const line = pending.length > 0 ? concat(pending, end) : end;
          pending = new Uint8Array(0);
          if (line.length > MAX_NOTIFY_BYTES) {
            this.#garbage(ch.serial, `notify stream line over ${MAX_NOTIFY_BYTES} bytes; closed`);
            return;
          }
          this.#deliver(ch, line);
          chunk = chunk.subarray(nl + 1);
        }
        if (pending.length + chunk.length > MAX_NOTIFY_BYTES) {
          this.#garbage(ch.serial, `notify stream line over ${MAX_NOTIFY_BYTES} bytes; closed`);
          return;
        }
        if (chunk.length > 0) pending = concat(pending, chunk);
      }
    } finally {
      ch.conns.delete(conn);
      closeQuietly(conn);
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function closeQuietly(r: { close(): void }): void {
  try {
    r.close();
  } catch {
    // Closed already.
  }
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // Gone already.
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
