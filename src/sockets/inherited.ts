/**
 * Sockets handed to the master by systemd (or another socket-activating
 * parent) with `LISTEN_FDS`/`LISTEN_PID`/`LISTEN_FDNAMES`. The variables are
 * removed from the environment at once, whether they are honoured or not, so
 * they never reach a worker; they are honoured only when `LISTEN_PID` is the
 * master's own pid (docs/contract.md, "Security").
 *
 * @module
 */

import { ConfigError } from "../errors.ts";

/** The first fd of socket activation. */
export const SD_LISTEN_FDS_START = 3;

/** The most sockets a master takes through socket activation. */
export const MAX_INHERITED = 1024;

/** Takes the socket-activation variables out of the environment; returns fd → name. */
export function takeInheritedSockets(env: Deno.Env = Deno.env): Map<number, string> {
  const count = env.get("LISTEN_FDS");
  const pid = env.get("LISTEN_PID");
  const names = env.get("LISTEN_FDNAMES")?.split(":") ?? [];
  for (const key of ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"]) env.delete(key);
  const inherited = new Map<number, string>();
  if (!count || !/^\d+$/.test(count) || pid !== String(Deno.pid)) return inherited;
  // The environment is not trusted: a huge count must not make a huge map.
  if (Number(count) > MAX_INHERITED) {
    throw new ConfigError(
      `LISTEN_FDS: expected at most ${MAX_INHERITED} inherited sockets, got ${count.slice(0, 20)}`,
    );
  }
  for (let i = 0; i < Number(count); i++) {
    inherited.set(SD_LISTEN_FDS_START + i, names[i] || `fd${SD_LISTEN_FDS_START + i}`);
  }
  return inherited;
}
