/**
 * The `--help` page of `arbiter` (kept out of cli.ts, which parses): the
 * synopsis of the master, `arbiter ctl` and `arbiter verify`, with each
 * option's default and range taken from the constants that enforce them.
 *
 * @module
 */

import { MAX_SECONDS, MAX_WORKERS } from "../core/limits.ts";
import { OPERATOR_SIGNALS } from "../core/events.ts";
import { RECENT_LINES_PER_SLOT } from "../output/recent.ts";
import { DEFAULT_LOG_LINES, DEFAULT_WAIT_S, MAX_WAIT_S } from "./_ctl_options.ts";
import { VERIFY_HELP } from "./_verify_options.ts";

/**
 * The `--help` page.
 *
 * @returns Text for people new to arbiter: usage, options with defaults,
 * `ctl` requests, signals and examples.
 */
export function helpText(): string {
  return `arbiter: a pre-fork process supervisor. It holds the listening sockets,
runs N copies of a worker command (any language), hands them the sockets at
fd 3, 4, ... (systemd socket activation), keeps them alive, and reloads,
scales, upgrades and stops them on signals.

Usage:
  arbiter [options] [--] [command [args...]]
  arbiter ctl [--socket PATH] [--config FILE] REQUEST
  arbiter verify [--config FILE] [--json] [--path P] [--reloads N]
                 [-- command [args...]]

The worker command starts at \`--\` or at the first word that is not an option;
its own options are passed through untouched. It overrides \`command\` in the
config file, and each option overrides the file's value.

Options:
  -c, --config FILE         TOML config file (default: none)
  -w, --workers N           number of workers, 1 to ${MAX_WORKERS} (default: 1)
  -b, --bind ADDR           listen address, repeatable: HOST:PORT, [IPV6]:PORT,
                            unix:PATH or fd://N (default: 127.0.0.1:8000, or
                            0.0.0.0:$PORT when PORT is set)
  -t, --timeout S           watchdog deadline in seconds; 0 disables
                            (default: 30)
      --graceful-timeout S  seconds a stopping worker may drain before SIGKILL
                            (default: 30)
      --boot-timeout S      seconds a worker may take to become ready
                            (default: 30)
      --ready spawn|notify  a worker is ready once alive for 1 s (spawn), or
                            once it sends READY=1 (notify) (default: spawn)
  -p, --pidfile FILE        write the master's pid here (default: none)
      --log-level L         trace, debug, info, warning, error or fatal;
                            critical is fatal (default: info)
      --log-format F        text or json (default: text)
      --log-file FILE       log file, reopened on USR1 (default: stderr)
      --reload              restart workers when files change; for
                            development (default: off)
      --check-config        validate, print the effective config and exit
                            (0 when valid, 2 when not)
  -h, --help                show this help
  -V, --version             show the version

Control requests (arbiter ctl), sent to the master's \`control_socket\`:
  -s, --socket PATH         the socket (default: \`control_socket\` of --config)
  -c, --config FILE         the config file naming the socket
  status [--json]           master and workers, as a table or as JSON
  reload [--wait]           like HUP; --wait returns once the new workers
                            serve and the old ones are gone
  upgrade [--wait]          like USR2; --wait as for reload
      --timeout S           how long --wait waits, 1 to ${MAX_WAIT_S} (default: ${DEFAULT_WAIT_S})
  scale N | +N | -N         run N workers, or N more / N fewer
  restart ID                replace worker ID; the new one is ready first
  signal SIG [ID]           send SIG to every ready worker, or to worker ID:
                            ${OPERATOR_SIGNALS.map((s) => s.slice(3)).join(" ")}
  logs [-f] [-n N] [ID]     recent output (worker_output = "prefix"; ${RECENT_LINES_PER_SLOT}
                            lines kept per worker); -f follows (default -n ${DEFAULT_LOG_LINES})
  stop                      like TERM       quick-stop   like INT
  top [--interval S] [-n N] live view: accept queue, RSS and CPU per worker,
                            redrawn every S seconds (default 1); plain lines
                            when piped; ends after N refreshes, q or Ctrl-C
  ctl exits 0 when done, 1 when refused, abandoned or unreachable, 2 on a
  usage error, 3 when --wait timed out (the rollout may still finish).

${VERIFY_HELP}
Signals to the master:
  HUP        reload the config, replace the workers
  TERM       graceful stop: workers finish their work, then exit
  INT, QUIT  quick stop
  TTIN/TTOU  one worker more / one fewer (never below 1)
  USR1       reopen log files
  USR2       upgrade the master in place, keeping its pid
  WINCH      stop all workers, keep the master (ignored on a terminal)

Durations are seconds from 0 to ${MAX_SECONDS} (365 days); fractions are allowed.

Exit codes: 0 stopped cleanly, 1 runtime error, 2 usage or config error,
3 a worker failed to boot, 4 a worker failed to load its app.

Examples:
  arbiter --config app.toml
  arbiter -w 4 -b 0.0.0.0:8000 -- node server.js
  arbiter verify --config app.toml
`;
}
