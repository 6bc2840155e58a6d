/**
 * Resolves the `user` and `group` config keys to numeric ids, from
 * /etc/passwd and /etc/group (no NSS: minimal containers have only files).
 * Workers are dropped to these ids by the exec shim; the master keeps its own.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";

function readTable(path: string): string[][] {
  try {
    return Deno.readTextFileSync(path).split("\n").filter((l) => l && !l.startsWith("#"))
      .map((l) => l.split(":"));
  } catch {
    return [];
  }
}

/** The uid and gid workers run as; undefined fields mean "keep the master's". */
export interface Identity {
  uid?: number;
  gid?: number;
}

/**
 * Resolves `user` (name or uid) and `group` (name or gid). A user without a
 * group gets the user's primary group.
 * @throws {ConfigError} naming the key when a name is unknown
 */
export function resolveIdentity(user?: string, group?: string): Identity {
  const identity: Identity = {};
  if (user !== undefined) {
    const row = readTable("/etc/passwd").find((r) => r[0] === user || r[2] === user);
    if (row) {
      identity.uid = Number(row[2]);
      identity.gid = Number(row[3]);
    } else if (/^\d+$/.test(user)) {
      identity.uid = Number(user);
    } else {
      throw new ConfigError(`user: no user named ${JSON.stringify(user)} in /etc/passwd`);
    }
  }
  if (group !== undefined) {
    const row = readTable("/etc/group").find((r) => r[0] === group || r[2] === group);
    if (row) identity.gid = Number(row[2]);
    else if (/^\d+$/.test(group)) identity.gid = Number(group);
    else throw new ConfigError(`group: no group named ${JSON.stringify(group)} in /etc/group`);
  }
  return identity;
}
