/**
 * The core's decisions about a reload (HUP, `arbiter ctl reload`, a watched
 * file): whether one starts or waits for the one being prepared, whether the
 * `on_reload` hook gets to veto the loaded config, and what a loaded,
 * vetted or refused config does to the serving generation.
 *
 * Sequence: `load-config` effect → `config-loaded` (or `config-failed`)
 * event → when the generation has an `on_reload` hook, a `vet-reload`
 * effect → `reload-vetted` event → the new generation starts, or the reload
 * is refused and the listeners only it opened are released.
 *
 * @module
 */

import { beginRollout, endRollout, rolloutStarted } from "./rollout.ts";
import type { Reply, Settings } from "./events.ts";
import type { CoreState } from "./state.ts";

/** Starts a reload, or queues one behind the reload being prepared. */
export function requestReload<C>(s: CoreState<C>, source: string): Reply {
  if (s.upgrading) {
    s.log("warning", "reload.refused", "reload refused: an upgrade is in progress");
    return { ok: false, error: "an upgrade is in progress" };
  }
  if (s.reloading) {
    s.reloadQueued = true;
    s.log(
      "info",
      "reload.queued",
      "{source}: a reload is being prepared; another one will follow it",
      {
        source,
      },
    );
    return {
      ok: true,
      message: "a reload is being prepared; another one will follow it",
      rollout: { attempt: (s.rollout?.attempt ?? 0) + 1, kind: "reload" },
    };
  }
  s.reloading = true;
  beginRollout(s, "reload");
  s.log("info", "reload.started", "{source}: reloading the configuration", { source });
  s.emit({ type: "load-config" });
  return {
    ok: true,
    message: "reloading: new workers start, old ones go as they are ready",
    rollout: { attempt: s.rollout!.attempt, kind: "reload" },
  };
}

/** A config was loaded and its listeners opened: vet it first when it has a veto hook. */
export function onConfigLoaded<C>(
  s: CoreState<C>,
  settings: Settings,
  context: C,
  now: number,
): void {
  if (settings.reloadVeto && s.running) {
    s.vetting = { settings, context };
    s.emit({ type: "vet-reload", context, oldWorkers: s.desired, newWorkers: settings.workers });
    return;
  }
  startGeneration(s, settings, context, now);
}

/** The `on_reload` hook answered for `context`: start it, or refuse the reload. */
export function onReloadVetted<C>(s: CoreState<C>, ok: boolean, context: C, now: number): void {
  const vetting = s.vetting;
  if (vetting?.context !== context) return;
  s.vetting = undefined;
  if (ok) return startGeneration(s, vetting.settings, context, now);
  refuse(s, "the on_reload hook failed");
  s.emit({ type: "release-listeners" }); // those only the refused config opened
}

/** The reload ends without a new generation; the running one stays. */
export function refuse<C>(s: CoreState<C>, error: string): void {
  s.reloading = false;
  s.log("error", "reload.refused", "reload refused, keeping the running configuration: {error}", {
    error,
  });
  endRollout(s, "refused", error);
  s.emit({ type: "reload-done" });
  runQueuedReload(s);
}

function startGeneration<C>(s: CoreState<C>, settings: Settings, context: C, now: number): void {
  s.reloading = false;
  if (!s.running) return endRollout(s, "refused", "the master is stopping");
  s.counters.reloads++;
  s.previous = s.current;
  const number = Math.max(...s.generations.keys()) + 1;
  const generation = { number, settings, context, bootFailures: 0, readyAnnounced: false };
  s.generations.set(number, generation);
  rolloutStarted(s, number);
  s.serve(generation, now);
  s.resetBackoff(); // a fresh generation gets fresh chances: old back-off belongs to old code
  s.log(
    "info",
    "generation.starting",
    "generation {generation}: starting {workers} worker(s) of {command}",
    {
      generation: number,
      workers: s.desired, // with autoscale on, the count it reached
      command: settings.commandName,
    },
  );
  runQueuedReload(s);
}

/** A HUP that came while the config was being read runs now. */
function runQueuedReload<C>(s: CoreState<C>): void {
  if (s.reloadQueued && s.running) {
    s.reloadQueued = false;
    requestReload(s, "SIGHUP");
  }
}
