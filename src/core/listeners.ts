/**
 * A listener restored: a worker shut the shared socket down (it stops
 * listening for every worker at once), and the executor opened a fresh
 * socket for the same address. Workers still hold the dead one, so every
 * worker of the serving generation is replaced, as a recycle: replacements
 * start on the fresh socket, and the old workers go as they become ready.
 *
 * @module
 */

import type { CoreState } from "./state.ts";

/** The listeners at `addresses` were replaced by fresh sockets. */
export function onListenersRestored<C>(state: CoreState<C>, addresses: string[]): void {
  if (!state.running) return;
  let replaced = 0;
  for (const w of state.workers.values()) {
    if (w.generation === state.current.number && w.state !== "stopping" && !w.superseded) {
      w.superseded = true;
      replaced++;
    }
  }
  state.log(
    "warning",
    "generation.refreshing",
    "listener {addresses} restored after it stopped listening; replacing {count} worker(s) " +
      "so they accept on the fresh socket",
    { addresses: addresses.join(", "), count: replaced },
  );
}
