/**
 * The executor's part of a graceful stop at the listeners: stopping new
 * handshakes (handshake_filter.ts) and reading how many connections still
 * wait to be accepted, so the core sends SIGTERM only once the workers have
 * taken every connection the kernel completed (docs/stopping.md).
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { Listener } from "../sockets/listeners.ts";
import { resumeHandshakes, stopHandshakes } from "../sys/handshake_filter.ts";
import { sampleQueues } from "../observe/queue.ts";

/** Stops new handshakes on every TCP listener; logs what could not be covered. */
export function closeHandshakes(listeners: readonly Listener[], log: Logger): void {
  for (const l of listeners) {
    try {
      if (!stopHandshakes(l.fd)) {
        log.debug(
          "listener {address}: a unix socket keeps accepting connections until it closes",
          { event: "stop.draining", address: l.address },
        );
      }
    } catch (error) {
      log.warning("listener {address}: cannot stop new handshakes: {error}", {
        event: "stop.handshakes_failed",
        address: l.address,
        error: String(error),
      });
    }
  }
}

/** Lets handshakes in again (a listener that a reload had retired is served again). */
export function reopenHandshakes(listeners: readonly Listener[]): void {
  for (const l of listeners) resumeHandshakes(l.fd);
}

/** Connections waiting in the accept queues of `listeners`, summed. */
export function queuedConnections(listeners: readonly Listener[]): number {
  return sampleQueues(listeners).reduce((sum, q) => sum + q.length, 0);
}
