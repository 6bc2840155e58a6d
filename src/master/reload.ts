/**
 * The executor's side of a reload, in the steps the core separates:
 * {@link loadConfig} reads and prepares a new config (answering the core's
 * `load-config` effect with a `config-loaded` or `config-failed` event),
 * {@link vetReload} runs the `on_reload` hook when the core asks (answering
 * with `reload-vetted`; the core decides what a veto does), and
 * {@link MasterSettings.adopt} applies a config's master-level parts (log
 * output, pidfile, hooks, file watcher) when the core says so with an
 * `adopt-config` effect — that is, exactly when the serving generation
 * changes, including back to the old one after an abandoned reload.
 *
 * Invariants:
 * - Loading changes nothing the master runs with; only adopting does.
 * - Adopting never throws: a part that cannot be applied (a log file that
 *   cannot be opened, a pidfile held by another process) is logged and keeps
 *   its previous value; the rest still applies.
 *
 * Part of the executor: it decides nothing; every decision is the core's
 * (src/core/), and this only carries one out or reports what happened.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { Config } from "../config/types.ts";
import type { HookRunner } from "../hooks/runner.ts";
import type { Logging } from "../logging/log.ts";
import { Pidfile } from "../pidfile/pidfile.ts";
import { reloadPathsOf, type Watcher, watchForChanges } from "../reload/watch.ts";
import type { ListenerPool } from "../sockets/listeners.ts";
import type { Event } from "../core/events.ts";
import { type GenerationContext, prepareGeneration, settingsOf } from "./generation.ts";

type Push = (event: Event<GenerationContext>) => void;

/** What {@link loadConfig} needs from the master. */
export interface LoadHost {
  /** Reads and validates the config again, with the same command-line overrides. */
  reloadConfig: () => Promise<Config>;
  masterEnv: Record<string, string>;
  pool: ListenerPool;
  push: Push;
  /** Called with a context the master must hold on to until the core has seen it. */
  prepared: (context: GenerationContext) => void;
}

/** Loads the config again and prepares its generation. Answers with one event; never throws. */
export function loadConfig(host: LoadHost): void {
  host.reloadConfig()
    .then((config) => prepareGeneration(config, host.pool, host.masterEnv))
    .then((context) => {
      host.prepared(context);
      host.push({ type: "config-loaded", settings: settingsOf(context.config), context });
    })
    .catch((error) => {
      host.push({ type: "config-failed", error: error?.message ?? String(error) });
    });
}

/** Runs the loaded config's `on_reload` hook; answers with `reload-vetted`; never throws. */
export function vetReload(
  hooks: HookRunner,
  push: Push,
  request: { context: GenerationContext; oldWorkers: number; newWorkers: number },
): void {
  const { context, oldWorkers, newWorkers } = request;
  const hook = hooks.fire("on_reload", { oldWorkers, newWorkers }, { config: context.config });
  Promise.resolve(hook)
    .then((result) => push({ type: "reload-vetted", ok: result?.ok ?? true, context }))
    .catch(() => push({ type: "reload-vetted", ok: false, context }));
}

/** The master-level settings of the serving config, and what they hold open. */
export class MasterSettings {
  #config: Config;
  #pidfile?: Pidfile;
  #watcher?: Watcher;

  constructor(
    config: Config,
    pidfile: Pidfile | undefined,
    readonly deps: { logging: Logging; hooks: HookRunner; log: Logger; push: Push },
  ) {
    this.#config = config;
    this.#pidfile = pidfile;
  }

  /** The config the master runs with now. */
  get config(): Config {
    return this.#config;
  }

  /** Applies `config`'s master-level parts; see the module invariants. */
  async adopt(config: Config): Promise<void> {
    const { logging, hooks, log } = this.deps;
    this.#config = config;
    try {
      await logging.apply({
        level: config.log_level,
        format: config.log_format,
        file: config.log_file,
      });
    } catch (error) {
      log.error("cannot apply the logging settings, keeping the old output: {error}", {
        event: "reload.apply_failed",
        error: String(error),
      });
    }
    if (config.pidfile !== this.#pidfile?.path) {
      try {
        const next = config.pidfile ? Pidfile.claim(config.pidfile) : undefined;
        this.#pidfile?.remove();
        this.#pidfile = next;
      } catch (error) {
        log.error("cannot move the pidfile, keeping {path}: {error}", {
          event: "reload.apply_failed",
          path: this.#pidfile?.path ?? "none",
          error: String(error),
        });
      }
    }
    hooks.update(config);
    this.watch();
  }

  /** (Re)starts the file watcher for a rolling reload on change (`reload = true`). */
  watch(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    const config = this.#config;
    if (!config.reload) return;
    const { log, push } = this.deps;
    try {
      this.#watcher = watchForChanges({
        paths: reloadPathsOf(config),
        extensions: config.reload_extensions,
        onChange: (files) => {
          const more = files.length > 1 ? ` and ${files.length - 1} more` : "";
          push({ type: "request", action: "reload", source: `${files[0] ?? "?"}${more} changed` });
        },
        onError: (error) =>
          log.error("file watcher: {error}", {
            event: "reload.watch_failed",
            error: String(error),
          }),
      });
    } catch (error) {
      log.error("cannot watch files for reload: {error}", {
        event: "reload.watch_failed",
        error: String(error),
      });
    }
  }

  /** Stops the file watcher (the loop is ending, or the image is about to be replaced). */
  stopWatching(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  /** Removes the pidfile (the master is exiting). */
  removePidfile(): void {
    this.#pidfile?.remove();
    this.#pidfile = undefined;
  }
}
