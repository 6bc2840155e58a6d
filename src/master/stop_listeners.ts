/**
 * The executor's part of a graceful stop at the listeners: stopping new
 * handshakes (src/sys/handshake_filter.ts, through the {@link OsSockets}
 * seam) and reading how many connections still
 * wait to be accepted, so the core sends SIGTERM only once the workers have
 * taken every connection the kernel completed (docs/stopping.md).
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { Listener } from "../sockets/listeners.ts";
import type { OsSockets } from "./os.ts";

/**
 * Stops new handshakes on every TCP listener. Where the kernel refuses the
 * filter (no CAP_NET_ADMIN), shrinks the listener's queue instead and says
 * once, for all such listeners, what that leaves at risk.
 */
export function closeHandshakes(
  sockets: OsSockets,
  listeners: readonly Listener[],
  log: Logger,
): void {
  const shrunk: string[] = [];
  let refusal = "";
  for (const l of listeners) {
    try {
      if (!sockets.stopHandshakes(l.fd)) {
        log.debug(
          "listener {address}: a unix socket keeps accepting connections until it closes",
          { event: "stop.draining", address: l.address },
        );
      }
    } catch (filterError) {
      try {
        sockets.shrinkQueue(l.fd);
        shrunk.push(l.address);
        refusal = String(filterError);
      } catch (error) {
        log.warning("listener {address}: cannot stop new handshakes: {error}", {
          event: "stop.handshakes_failed",
          address: l.address,
          error: `${filterError}; listen(2) with backlog 0: ${error}`,
        });
      }
    }
  }
  if (shrunk.length === 0) return;
  log.warning(
    "the handshake filter was refused ({error}; it needs root or CAP_NET_ADMIN): " +
      "the accept queue of {addresses} now holds one connection and new handshakes wait " +
      "while it is taken; the connection that arrives after the workers' last accept " +
      "(about one per listener) is reset",
    { event: "stop.handshakes_limited", addresses: shrunk.join(", "), error: refusal },
  );
}

/**
 * Lets handshakes in again with the queue's full `backlog` (a listener that a
 * reload had retired is served again).
 */
export function reopenHandshakes(
  sockets: OsSockets,
  listeners: readonly Listener[],
  backlog: number,
  log: Logger,
): void {
  for (const l of listeners) {
    try {
      sockets.resumeHandshakes(l.fd, backlog);
    } catch (error) {
      log.warning("listener {address}: cannot restore its backlog of {backlog}: {error}", {
        event: "master.backlog_failed",
        address: l.address,
        backlog,
        error: String(error),
      });
    }
  }
}

/** Connections waiting in the accept queues of `listeners`, summed. */
export function queuedConnections(sockets: OsSockets, listeners: readonly Listener[]): number {
  return sockets.queues(listeners).reduce((sum, q) => sum + q.length, 0);
}
