/**
 * The master's one deadline timer: armed for the core's next deadline,
 * re-armed only when that changes, clamped by {@link timerDelay} so that a
 * deadline weeks away neither overflows `setTimeout` nor spins (a clamped
 * timer fires early, the core finds nothing due, the timer is armed again).
 *
 * Part of the executor: it decides nothing; every decision is the core's
 * (src/core/), and this only carries one out or reports what happened.
 *
 * @module
 */

import { timerDelay } from "../core/deadlines.ts";
import type { Os, TimerHandle } from "./os.ts";

/** A single re-armable timer that calls `fire` at a monotonic deadline. */
export class DeadlineTimer {
  #timer?: TimerHandle;
  #at?: number;
  /** The deadline last armed, kept after it fires until the next `arm`. */
  #due?: number;

  constructor(
    readonly fire: () => void,
    readonly clock: Pick<Os, "now" | "setTimer" | "clearTimer">,
  ) {}

  /** Waits for `deadline` (the clock's time), or for nothing when undefined. */
  arm(deadline: number | undefined): void {
    this.#due = deadline;
    if (deadline === this.#at) return;
    this.clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#at = deadline;
    if (deadline === undefined) return;
    this.#timer = this.clock.setTimer(() => {
      this.#timer = undefined;
      this.#at = undefined;
      this.fire();
    }, timerDelay(deadline, this.clock.now()));
  }

  /**
   * How far `now` is past the deadline armed last (0 when none, or not yet
   * due): a large value means the loop did not run when it should have.
   */
  lateBy(now: number): number {
    return this.#due === undefined ? 0 : Math.max(0, now - this.#due);
  }
}
