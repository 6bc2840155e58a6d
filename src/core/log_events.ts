/**
 * The names of the master's log lines: every line the master logs carries
 * one of these as its `event`, so that tools (`arbiter verify`, the tests,
 * an operator's `jq`) match a name instead of wording. The catalogue for
 * users is docs/logging.md ("Events"); a name here is an interface: rename
 * one only with a note in the changelog.
 *
 * Names are `area.what_happened`, lower case, past tense or a state.
 *
 * @module
 */

/** Every event name, with the one-line meaning the docs repeat. */
export const LOG_EVENTS = {
  "master.started": "the master is up (listening sockets open, signals installed)",
  "master.listening": "a listening socket is open (one line per socket)",
  "master.listener_closed": "a listening socket no worker uses any more was closed",
  "master.backlog_failed":
    "a listener served again after an abandoned reload could not get its backlog back",
  "master.exiting": "every worker is gone: the master exits with the code shown",
  "master.halting": "the serving generation cannot boot: the master stops",
  "master.warning": "a problem found at start that does not stop the master",
  "master.fatal": "the master cannot go on and exits",
  "master.bug": "an error was contained (the master goes on); please report it",
  "generation.starting": "a generation of workers (the first, or a reload's) starts",
  "generation.ready": "every worker of a generation is ready (a reload is done)",
  "worker.spawned": "a worker process started",
  "worker.spawn_failed": "a worker process could not be started",
  "worker.ready": "a worker became ready",
  "worker.stopping": "a worker said it is stopping on its own (STOPPING=1)",
  "worker.exited": "a worker exited (stopped by the master, on its own, or killed)",
  "worker.killed": "a worker did not exit in time and gets SIGKILL",
  "worker.boot_timeout": "a worker did not become ready within boot_timeout; aborted",
  "worker.watchdog_timeout": "a worker missed its WATCHDOG=1 deadline; aborted",
  "worker.boot_failed": "a worker ended before it was ready; it is retried with back-off",
  "worker.cannot_boot": "a worker failed to boot on each of the last tries (said once)",
  "worker.over_memory": "a worker stayed over max_worker_memory; it will be replaced",
  "worker.over_memory_young": "a worker went over max_worker_memory soon after it started",
  "worker.recycling": "a worker's replacement starts (memory or maximum age)",
  "worker.output": 'a line a worker wrote (worker_output = "prefix")',
  "scale.changed": "the number of workers changed (TTIN, TTOU, ctl scale, autoscale)",
  "scale.refused": "a change of the number of workers was refused",
  "scale.stopped_all": "WINCH: every worker stops; the master stays",
  "signal.ignored": "a signal or request was ignored (the master is stopping, …)",
  "signal.sent": "ctl signal: a signal was sent to a worker's process group",
  "signal.refused": "ctl signal was refused (a signal not allowed, no such worker, none ready)",
  "restart.requested":
    "ctl restart: a worker's replacement starts; the worker stops once it is ready",
  "restart.refused": "ctl restart was refused (no such worker, a rollout is under way, …)",
  "reload.started": "a reload began: the config file is read again",
  "reload.queued": "a reload came while one is being prepared; it follows",
  "reload.refused": "a reload was refused; the running configuration stays",
  "reload.abandoned": "a reload's workers cannot boot; the previous generation serves",
  "reload.apply_failed": "a master-level setting of a reload could not be applied",
  "reload.watch_failed": "the file watcher of reload = true failed",
  "upgrade.checking": "an upgrade began: the new master is checked first",
  "upgrade.started": "the master re-executes itself in place (pid kept)",
  "upgrade.refused": "an upgrade was refused; nothing changed",
  "upgrade.done": "the new master image runs and took over the workers",
  "upgrade.warning": "something the new master image noticed while taking over",
  "stop.started": "the master began to stop (graceful or quick)",
  "stop.quickened": "a graceful stop became a quick one",
  "stop.draining": "new handshakes are stopped; the workers empty the accept queues",
  "stop.drain_unfinished": "the accept queues did not empty within graceful_timeout",
  "stop.handshakes_failed": "a listener could not stop new handshakes",
  "stop.handshakes_limited":
    "the handshake filter was refused; the listeners' queues were shrunk to one connection instead",
  "group.leftover": "a gone worker left processes in its group: SIGTERM, then SIGKILL",
  "group.killed": "a gone worker's group did not exit after SIGTERM: SIGKILL",
  "group.stuck": "a gone worker's group still has processes after SIGKILL",
  "group.refused": "a process group not provably the master's own was left alone",
  "hook.started": "a hook process started",
  "hook.output": "a line a hook wrote",
  "hook.overrun": "a hook ran past hook_timeout: SIGTERM, then SIGKILL",
  "hook.done": "a hook succeeded",
  "hook.failed": "a hook failed, timed out or could not start",
  "hook.skipped": "a hook was not run",
  "notify.ignored": "an sd_notify message was ignored (wrong sender, malformed, …)",
  "systemd.notify_failed": "a message to systemd could not be sent",
  "http.limited": "the control or metrics server refused a connection over its limits",
  "http.failed": "the control or metrics server's accept loop ended",
  "http.connection_ended": "a control or metrics connection ended with an error",
  "log.reopen_failed": "USR1: the log file could not be reopened; the old one is kept",
  "log.lines_dropped":
    "output lines were dropped (not read fast enough, or not writable): how many",
  "master.stalled": "the master had not run for a while (paused, throttled); deadlines re-armed",
  "master.not_halting": "a boot failure after workers served: no halt, the slot is retried",
  "master.listener_restored": "a listening socket stopped listening (a worker shut it); reopened",
  "generation.refreshing": "every worker is replaced to take a reopened listening socket",
  "worker.backed_off": "a worker ended soon after it became ready; its replacement waits",
  "master.usr1_lost": "USR1 can no longer be read; it is ignored from now on",
  "master.memory_released":
    "workers came or went, then 20 s of quiet: one garbage collection, freed memory given back",
} as const;

/** The name of a master log line. */
export type LogEvent = keyof typeof LOG_EVENTS;

/** The worker a log line is about, in the one shape every line uses. */
export interface WorkerRef {
  /** The slot (`ARBITER_WORKER_ID`). */
  id: number;
  /** Its process, once started. */
  pid?: number;
  generation?: number;
}

/** Whether `name` is a known event. */
export function isLogEvent(name: unknown): name is LogEvent {
  return typeof name === "string" && Object.hasOwn(LOG_EVENTS, name);
}
