/**
 * Sockets handed to the master by systemd (or another socket-activating
 * parent) with `LISTEN_FDS`/`LISTEN_PID`/`LISTEN_FDNAMES`. The variables are
 * removed from the environment at once, whether they are honoured or not, so
 * they never reach a worker; they are honoured only when `LISTEN_PID` is the
 * master's own pid (SPEC §9).
 *
 * @module
 */

/** The first fd of socket activation. */
export const SD_LISTEN_FDS_START = 3;

/** Takes the socket-activation variables out of the environment; returns fd → name. */
export function takeInheritedSockets(env: Deno.Env = Deno.env): Map<number, string> {
  const count = env.get("LISTEN_FDS");
  const pid = env.get("LISTEN_PID");
  const names = env.get("LISTEN_FDNAMES")?.split(":") ?? [];
  for (const key of ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"]) env.delete(key);
  const inherited = new Map<number, string>();
  if (!count || !/^\d+$/.test(count) || pid !== String(Deno.pid)) return inherited;
  for (let i = 0; i < Number(count); i++) {
    inherited.set(SD_LISTEN_FDS_START + i, names[i] || `fd${SD_LISTEN_FDS_START + i}`);
  }
  return inherited;
}
