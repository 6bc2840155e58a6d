/**
 * The master's event queue: producers (signal listeners, child exits,
 * timers, sockets) push; the one loop takes events one at a time, in order.
 * Nothing is dropped: the queue is unbounded and a push never blocks.
 *
 * Part of the executor: it decides nothing; every decision is the core's
 * (src/core/), and this only carries one out or reports what happened.
 *
 * @module
 */

/** An unbounded FIFO with an async `next()` for a single consumer. */
export class EventQueue<T> {
  #items: T[] = [];
  #waiter?: (item: T) => void;

  /** Adds an event; wakes the loop if it is waiting. */
  push(item: T): void {
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      waiter(item);
    } else {
      this.#items.push(item);
    }
  }

  /** The next event, waiting for one if none is queued. */
  next(): Promise<T> {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift()!);
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  /** How many events wait. */
  get size(): number {
    return this.#items.length;
  }
}
