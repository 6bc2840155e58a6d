/**
 * Closes the listeners the master no longer needs, when the core says so
 * (`retire-generation`, `release-listeners`). Kept open: those of the
 * contexts the core holds (the serving generation, a reload being vetted),
 * of a reload still on its way to the core, and of every live worker (an old
 * generation still draining, inherited workers). It decides nothing: the
 * core says when, and what it holds; this only adds what is in flight.
 * It also carries out the stop's and a reload's effects at the listeners
 * (stop_listeners.ts), all through the {@link OsSockets} seam.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { Listener, ListenerPool } from "../sockets/listeners.ts";
import type { GenerationContext } from "./generation.ts";
import type { OsSockets } from "./os.ts";
import { closeHandshakes, queuedConnections, reopenHandshakes } from "./stop_listeners.ts";

/** What the keeper asks the master. */
export interface KeeperSources {
  /** Listeners some live worker holds. */
  inUse: () => Set<Listener>;
  /** The contexts the core holds (serving, being vetted); none before it exists. */
  held: () => GenerationContext[];
}

/** Tracks listener use and closes the unused ones. */
export class ListenerKeeper {
  /** Contexts loaded by a reload whose event the core has not handled yet. */
  readonly #pending = new Set<GenerationContext>();

  constructor(
    readonly pool: ListenerPool,
    readonly log: Logger,
    readonly sources: KeeperSources,
    readonly sockets: OsSockets,
  ) {}

  /** `close-handshakes`: the stop takes no new handshakes at any listener. */
  closeHandshakes(): void {
    closeHandshakes(this.sockets, this.pool.list(), this.log);
  }

  /** `sample-drain`: the connections waiting in every accept queue. */
  queued(): number {
    return queuedConnections(this.sockets, this.pool.list());
  }

  /**
   * `adopt-config`: a bind the serving generation dropped takes no new
   * handshakes; one it serves (again, after an abandoned reload) takes them all.
   */
  adoptConfig(context: GenerationContext): void {
    reopenHandshakes(this.sockets, context.listeners, context.config.backlog, this.log);
    closeHandshakes(this.sockets, this.retiring(), this.log);
  }

  /** A reload prepared `context`: hold its listeners, and log those new to the master. */
  prepared(context: GenerationContext): void {
    this.#pending.add(context);
    const served = this.sources.inUse();
    this.logListening(context.listeners.filter((l) => !served.has(l)));
  }

  /** Contexts loaded by a reload and not yet handled by the core. */
  pendingContexts(): GenerationContext[] {
    return [...this.#pending];
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

  /** Listeners restored so far (`arbiter_listener_restores_total`). */
  restores = 0;

  /**
   * Replaces every listener that stopped listening (a worker shut it down)
   * with a fresh socket for the same address, in `contexts` too, so the next
   * workers get it. Returns the addresses restored.
   */
  async restoreDead(contexts: Iterable<GenerationContext | undefined>): Promise<string[]> {
    const restored = await this.pool.restoreDead();
    for (const { dead, fresh } of restored) {
      this.restores++;
      this.log.warn(
        "listener {address} stopped listening (a worker shut the shared socket down); " +
          "opened a fresh one (fd {fd})",
        { event: "master.listener_restored", address: dead.address, fd: fresh.fd },
      );
      for (const ctx of contexts) {
        const i = ctx?.listeners.indexOf(dead) ?? -1;
        if (i >= 0) ctx!.listeners[i] = fresh;
      }
    }
    return restored.map((r) => r.dead.address);
  }

  /**
   * Listeners no generation will serve any more (a reload removed their
   * bind) while old workers may still hold them: they take no new handshakes
   * and are drained by those workers before they close (docs/stopping.md).
   */
  retiring(): Listener[] {
    const keep = new Set<Listener>(this.sources.held().flatMap((c) => c.listeners));
    for (const ctx of this.#pending) for (const l of ctx.listeners) keep.add(l);
    return this.pool.list().filter((l) => !keep.has(l));
  }

  /** Closes listeners that neither the current generation nor any live worker uses. */
  release(): void {
    const keep = new Set<Listener>(this.sources.held().flatMap((c) => c.listeners));
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
