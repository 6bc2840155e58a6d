/**
 * The listeners at start-up. An image that came from an in-place upgrade
 * holds every socket the old one handed over, and the new config may have
 * dropped some binds. While workers of the old image live they may still
 * accept on any of them, so all are kept; their generation's retirement
 * releases the rest later (`retire-generation`). With none, whatever the
 * serving generation does not use is released at once (docs/contract.md, "Upgrade and systemd").
 * A master that did not come from an upgrade holds only its own listeners,
 * and the release closes nothing.
 *
 * @module
 */

import type { CoreState } from "./state.ts";

/** The first step's listener decision: release at once unless inherited workers live. */
export function releaseAtStartUp<C>(state: CoreState<C>): void {
  if (state.workers.values().some((w) => w.inherited)) return;
  state.emit({ type: "release-listeners" });
}
