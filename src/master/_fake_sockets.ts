/**
 * Listening sockets as records, for the executor's unit tests: the
 * {@link FakeSockets} of a `FakeOs` (src/master/_testing.ts) binds nothing;
 * the test says what the kernel would (a socket shut down, connections
 * queued, the handshake filter refused) and reads what was done to each
 * socket, in order, from its journal.
 *
 * @module
 */

import type { BindSpec } from "../config/types.ts";
import type { ListenerQueue, SampledListener } from "../observe/queue.ts";
import { fdName, type Listener, type ListenOptions } from "../sockets/listeners.ts";
import type { OsSockets } from "./os.ts";

/** A listening socket of a {@link FakeSockets}: what the kernel would know of it. */
export interface FakeSocket {
  readonly fd: number;
  readonly spec: BindSpec;
  /** listen(2)'s backlog now (0 after the filter's fallback). */
  backlog: number;
  /** The handshake filter is attached. */
  filtered: boolean;
  /** False once a worker shut it down (it cannot listen again). */
  listening: boolean;
  /** Connections waiting in its accept queue. */
  queued: number;
  closed: boolean;
}

/** Listening sockets as records: nothing is bound; the test says what the kernel would. */
export class FakeSockets implements OsSockets {
  nextFd = 100;
  readonly sockets = new Map<number, FakeSocket>();
  /** What was done to the sockets, in order ("filter 100", "listen 100 0", "read queues" …). */
  readonly journal: string[] = [];
  /** When set, attaching the handshake filter throws it (no CAP_NET_ADMIN). */
  refuseFilter?: Error;
  readonly #waiters: (() => void)[] = [];

  /** Resolves once `entry` is in the journal `count` times. */
  async journaled(entry: string, count = 1): Promise<void> {
    while (this.journal.filter((e) => e === entry).length < count) {
      await new Promise<void>((wake) => this.#waiters.push(wake));
    }
  }

  #note(entry: string): void {
    this.journal.push(entry);
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** The socket bound for `text` and not closed. */
  bound(text: string): FakeSocket {
    const found = [...this.sockets.values()].find((s) => s.spec.text === text && !s.closed);
    if (!found) throw new Error(`nothing is bound for ${text}`);
    return found;
  }

  open(spec: BindSpec, opts: ListenOptions): Promise<Listener> {
    return Promise.resolve(this.#listener(this.nextFd++, spec, opts.backlog));
  }

  adopt(fd: number, spec: BindSpec, opts: ListenOptions): Listener {
    return this.#listener(fd, spec, opts.backlog);
  }

  listening(fd: number): boolean {
    const socket = this.sockets.get(fd);
    return socket !== undefined && socket.listening && !socket.closed;
  }

  setBacklog(fd: number, backlog: number): void {
    this.#note(`listen ${fd} ${backlog}`);
    this.#socket(fd).backlog = backlog;
  }

  stopHandshakes(fd: number): boolean {
    const socket = this.#socket(fd);
    if (socket.spec.kind === "unix") return false;
    if (this.refuseFilter) throw this.refuseFilter;
    this.#note(`filter ${fd}`);
    socket.filtered = true;
    return true;
  }

  shrinkQueue(fd: number): void {
    this.setBacklog(fd, 0);
  }

  resumeHandshakes(fd: number, backlog: number): void {
    this.#socket(fd).filtered = false;
    this.setBacklog(fd, backlog);
  }

  queues(listeners: readonly SampledListener[]): ListenerQueue[] {
    this.#note("read queues");
    return listeners.flatMap((l) => {
      const socket = this.sockets.get(l.fd);
      if (!socket || socket.closed) return [];
      return [{ listener: l.address, length: socket.queued, capacity: socket.backlog }];
    });
  }

  #socket(fd: number): FakeSocket {
    const socket = this.sockets.get(fd);
    if (!socket || socket.closed) throw new Deno.errors.BadResource(`fd ${fd} is not open`);
    return socket;
  }

  #listener(fd: number, spec: BindSpec, backlog: number): Listener {
    const socket: FakeSocket = {
      fd,
      spec,
      backlog,
      filtered: false,
      listening: true,
      queued: 0,
      closed: false,
    };
    this.sockets.set(fd, socket);
    const address = spec.kind === "tcp" ? `${spec.hostname}:${spec.port || 40000 + fd}` : spec.text;
    return {
      spec,
      fd,
      name: fdName(spec.text),
      address,
      close: () => {
        this.#note(`close ${fd}`);
        socket.closed = true;
      },
    };
  }
}
