/**
 * The command line of `arbiter verify` (src/verify/), kept out of cli.ts: its
 * options, their checks and its part of `--help`. cli.ts only dispatches.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";

/** What `arbiter verify` asks for. */
export interface VerifyRequest {
  kind: "verify";
  /** The `--config` file as given (not resolved). */
  configPath?: string;
  /** The worker command after the options or `--`; overrides the file's. */
  command?: string[];
  /** Print the report as JSON. */
  json: boolean;
  /** The URL path requested (default "/"). */
  path: string;
  /** HUPs per connection mode (default 3). */
  reloads: number;
}

/** The options `arbiter verify` takes. */
export const VERIFY_OPTIONS = {
  config: { type: "string", short: "c" },
  json: { type: "boolean" },
  path: { type: "string" },
  reloads: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/**
 * The request from the parsed option values and the worker command.
 *
 * @throws {ConfigError} On a bad `--path` or `--reloads`, naming the value.
 */
export function verifyRequest(
  values: { config?: string; json?: boolean; path?: string; reloads?: string },
  command: string[],
): VerifyRequest {
  const path = values.path ?? "/";
  if (!/^\/[\x21-\x7e]*$/.test(path)) {
    throw new ConfigError(
      `verify --path: expected a URL path starting with "/" (no spaces), got ${
        JSON.stringify(path)
      }`,
    );
  }
  const reloads = values.reloads === undefined ? 3 : Number(values.reloads);
  if (!Number.isInteger(reloads) || reloads < 1 || reloads > 20) {
    throw new ConfigError(
      `verify --reloads: expected an integer from 1 to 20, got ${JSON.stringify(values.reloads)}`,
    );
  }
  return {
    kind: "verify",
    configPath: values.config,
    command: command.length > 0 ? command : undefined,
    json: values.json ?? false,
    path,
    reloads,
  };
}

/** The `--help` section of `arbiter verify`. */
export const VERIFY_HELP =
  `Check a worker (arbiter verify): runs it under a private master on a free
loopback port, with its own load, and reports each point of the worker
contract (fd 3, READY=1, USR1, watchdog, HUP and TERM without losing a
request, nothing left running) as pass, fail or n/a, with a fix per failure.
Exit 0 when nothing failed, 1 otherwise, 2 for a usage or config error.
  -c, --config FILE         the config whose worker to check (its pidfile,
                            addresses, hooks and sockets are not used)
      --json                print the report as JSON
      --path P              the URL path requested (default: /)
      --reloads N           HUPs per connection mode, 1 to 20 (default: 3)
`;
