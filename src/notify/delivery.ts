/**
 * What the hub (hub.ts) does with what it read: a message from the worker's
 * pid or a descendant of it (the channel's sender check) is checked
 * (protocol.ts) and handed on; one from any other process is dropped and
 * counted, and reported at most once a second (docs/contract.md,
 * "Security"). Nothing here throws: a failing handler is reported as
 * garbage, and a failing garbage handler is ignored.
 *
 * @module
 */

import { type Channel, errText } from "./channel.ts";
import { checkNotify } from "./protocol.ts";

/** Called for each message, with the serial of the worker whose socket it came in on. */
export type NotifyHandler = (serial: number, fields: Record<string, string>) => void;
/** Called for each refused message (or a channel failing), with a reason for the log. */
export type GarbageHandler = (serial: number, why: string) => void;

/** At most one report of dropped senders per this many ms. */
const DROP_REPORT_MS = 1000;

/** Judges and hands on the messages of every channel of one hub. */
export class Delivery {
  #dropped = 0;
  #droppedUnreported = 0;
  #lastDropReport = -Infinity;
  readonly #onMessage: NotifyHandler;
  readonly #onGarbage: GarbageHandler;

  constructor(onMessage: NotifyHandler, onGarbage?: GarbageHandler) {
    this.#onMessage = onMessage;
    this.#onGarbage = onGarbage ?? (() => {});
  }

  /** Messages (and stream connections) dropped because another process sent them. */
  get dropped(): number {
    return this.#dropped;
  }

  /** A message (or connection) from a process that is not the worker: counted, reported. */
  drop(ch: Channel, pid: number | undefined): void {
    this.#dropped++;
    this.#droppedUnreported++;
    const now = performance.now();
    if (now - this.#lastDropReport < DROP_REPORT_MS) return;
    this.#lastDropReport = now;
    const count = this.#droppedUnreported;
    this.#droppedUnreported = 0;
    const who = ch.workerPid === undefined ? "a worker not yet started" : `pid ${ch.workerPid}`;
    this.garbage(
      ch.serial,
      `dropped ${count} message(s) from a process that is not ${who} or its descendant ` +
        `(last: pid ${pid ?? "unknown"}; ${this.#dropped} in all)`,
    );
  }

  /** A message from the worker: checked, then handed to `onMessage` (or reported as garbage). */
  deliver(ch: Channel, payload: Uint8Array): void {
    if (ch.closed) return;
    const r = checkNotify(payload);
    if (!r.ok) {
      this.garbage(ch.serial, r.why);
      return;
    }
    // BARRIER=1 only asks us to have read everything before it (its fd is closed
    // already); it says nothing about the worker.
    delete r.fields.BARRIER;
    if (Object.keys(r.fields).length === 0) return;
    try {
      this.#onMessage(ch.serial, r.fields);
    } catch (err) {
      this.garbage(ch.serial, `notify handler failed: ${errText(err)}`);
    }
  }

  /** Reports `why` for worker `serial`; never throws. */
  garbage(serial: number, why: string): void {
    try {
      this.#onGarbage(serial, why);
    } catch {
      // Nothing left to report it to; the channel goes on.
    }
  }
}
