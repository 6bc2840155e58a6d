/**
 * Which listeners the master must keep open: those of the serving
 * generation, of a reload still on its way to the core, and of every live
 * worker (an old generation still draining). Everything else in the pool is
 * closed when a generation retires or a refused reload opened some.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { Listener, ListenerPool } from "../sockets/listeners.ts";
import type { GenerationContext } from "./generation.ts";

/** What the keeper asks the master. */
export interface KeeperSources {
  /** Listeners some live worker holds. */
  inUse: () => Set<Listener>;
  /** The serving generation's context, once there is one. */
  current: () => GenerationContext | undefined;
}

/** Tracks listener use and closes the unused ones. */
export class ListenerKeeper {
  /** Contexts loaded by a reload whose event the core has not handled yet. */
  readonly #pending = new Set<GenerationContext>();

  constructor(
    readonly pool: ListenerPool,
    readonly log: Logger,
    readonly sources: KeeperSources,
  ) {}

  /** A reload prepared `context`: hold its listeners, and log those new to the master. */
  prepared(context: GenerationContext): void {
    this.#pending.add(context);
    const served = this.sources.inUse();
    this.logListening(context.listeners.filter((l) => !served.has(l)));
  }

  /** The core has seen `context` (it is current now, or was dropped). */
  handled(context: GenerationContext): void {
    this.#pending.delete(context);
  }

  logListening(listeners: Listener[]): void {
    for (const l of listeners) {
      this.log.info("listening at {address} (fd {fd})", {
        event: "master.listening",
        address: l.address,
        fd: l.fd,
      });
    }
  }

  /** Closes listeners that neither the current generation nor any live worker uses. */
  release(): void {
    const keep = new Set<Listener>(this.sources.current()?.listeners ?? []);
    for (const ctx of this.#pending) for (const l of ctx.listeners) keep.add(l);
    for (const l of this.sources.inUse()) keep.add(l);
    for (const l of this.pool.release(keep)) {
      this.log.info("closed listener {address}: no worker uses it any more", {
        event: "master.listener_closed",
        address: l.address,
      });
    }
  }
}
