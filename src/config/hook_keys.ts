/**
 * The lifecycle hook keys of the config (docs/hooks.md), apart from the
 * schema so that the running master, which runs hooks but never validates a
 * config itself (src/config/validate_child.ts), does not load zod for them.
 *
 * @module
 */

/** The lifecycle hook keys, in the order they fire. */
export const HOOK_KEYS = [
  "on_starting",
  "when_ready",
  "on_reload",
  "pre_spawn",
  "post_exit",
  "worker_timeout",
  "nworkers_changed",
  "on_exit",
] as const;
