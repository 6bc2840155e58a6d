/**
 * The master's signal listeners: each signal it acts on becomes a `signal`
 * event on its queue, nothing more (what a signal means is the core's
 * signal table). Installed once the loop can take events; removed at exit.
 *
 * Part of the executor: it decides nothing; every decision is the core's
 * (src/core/), and this only carries one out or reports what happened.
 *
 * @module
 */

import { blockAllSignals } from "../sys/process.ts";
import { addSignalListener, removeSignalListener } from "./usr1.ts";
import { type Event, MASTER_SIGNALS, type MasterSignal } from "../core/events.ts";

function hasControllingTerminal(): boolean {
  try {
    Deno.openSync("/dev/tty").close();
    return true;
  } catch {
    return false;
  }
}

/** Listeners for every {@link MasterSignal}, pushing events. */
export class SignalListeners {
  readonly #handlers = new Map<MasterSignal, () => void>();

  /** Listens for every signal; then unblocks them (an upgraded image starts with all blocked). */
  install(push: (event: Event<never>) => void): void {
    for (const signal of MASTER_SIGNALS) {
      const handler = () =>
        push({
          type: "signal",
          signal,
          hasTerminal: signal === "SIGWINCH" ? hasControllingTerminal() : undefined,
        });
      addSignalListener(signal, handler); // USR1 from a signalfd: no inspector (./usr1.ts)
      this.#handlers.set(signal, handler);
    }
    // An image started by an in-place upgrade inherits a fully blocked mask
    // (see execUpgrade); now that every signal has a listener, let them in.
    blockAllSignals(false);
  }

  remove(): void {
    for (const [signal, handler] of this.#handlers) removeSignalListener(signal, handler);
    this.#handlers.clear();
  }
}
