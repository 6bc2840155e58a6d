/**
 * Resolves the `user` and `group` config keys to numeric ids, from
 * /etc/passwd and /etc/group (no NSS: minimal containers have only files),
 * and tells whether this master may switch workers to them. Workers are
 * dropped to these ids by the exec shim; the master keeps its own.
 *
 * Invariants:
 * - Every id is an integer from 0 to {@link MAX_ID}; a malformed table row
 *   is an error, never a silent 0.
 * - A worker's gid is always decided on purpose: `group`, or the primary
 *   group of `user` from /etc/passwd. A numeric `user` without a passwd
 *   entry has no primary group, so it needs `group` (it used to run with the
 *   master's gid, 0 under root).
 *
 * @module
 */

import { MAX_ID } from "../core/limits.ts";
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

/** A decimal id within range, or undefined when `text` is not one. */
function parseId(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,10}$/.test(text)) return undefined;
  const id = Number(text);
  return id <= MAX_ID ? id : undefined;
}

function tableId(key: string, table: string, row: string[], field: number): number {
  const id = parseId(row[field]);
  if (id === undefined) {
    throw new ConfigError(
      `${key}: the ${table} entry of ${JSON.stringify(row[0])} has no valid id ` +
        `(${JSON.stringify(row[field] ?? "")})`,
    );
  }
  return id;
}

/**
 * Resolves `user` (name or uid) and `group` (name or gid). A user without a
 * group gets the user's primary group.
 * @throws {ConfigError} naming the key when a name is unknown, an id is out
 *   of range, or a numeric user has no passwd entry and no `group` is set
 */
export function resolveIdentity(user?: string, group?: string): Identity {
  const identity: Identity = {};
  if (user !== undefined) {
    const row = readTable("/etc/passwd").find((r) => r[0] === user || r[2] === user);
    if (row) {
      identity.uid = tableId("user", "/etc/passwd", row, 2);
      identity.gid = tableId("user", "/etc/passwd", row, 3);
    } else if (/^\d+$/.test(user)) {
      identity.uid = parseId(user);
      if (identity.uid === undefined) {
        throw new ConfigError(`user: expected a uid from 0 to ${MAX_ID}, got ${user}`);
      }
      if (group === undefined) {
        throw new ConfigError(
          `user: uid ${user} has no entry in /etc/passwd, so it has no primary group; ` +
            "set `group` as well",
        );
      }
    } else {
      throw new ConfigError(`user: no user named ${JSON.stringify(user)} in /etc/passwd`);
    }
  }
  if (group !== undefined) {
    const row = readTable("/etc/group").find((r) => r[0] === group || r[2] === group);
    if (row) identity.gid = tableId("group", "/etc/group", row, 2);
    else if (/^\d+$/.test(group)) {
      identity.gid = parseId(group);
      if (identity.gid === undefined) {
        throw new ConfigError(`group: expected a gid from 0 to ${MAX_ID}, got ${group}`);
      }
    } else throw new ConfigError(`group: no group named ${JSON.stringify(group)} in /etc/group`);
  }
  return identity;
}

const CAP_SETGID = 6;
const CAP_SETUID = 7;

/** This process's effective capabilities, from /proc/self/status. */
function effectiveCapabilities(): bigint {
  try {
    const line = Deno.readTextFileSync("/proc/self/status").split("\n")
      .find((l) => l.startsWith("CapEff:"));
    return line ? BigInt(`0x${line.slice("CapEff:".length).trim()}`) : 0n;
  } catch {
    return 0n;
  }
}

/**
 * Why this master cannot start workers as `identity`, or undefined when it
 * can. The exec shim always drops supplementary groups (setgroups needs
 * CAP_SETGID) and changes the uid only with CAP_SETUID (or to its own).
 *
 * @param identity what {@link resolveIdentity} gave
 * @param caps the effective capability mask (default: this process's)
 * @param uid the master's uid (default: this process's)
 */
export function identityProblem(
  identity: Identity,
  caps: bigint = effectiveCapabilities(),
  uid: number = Deno.uid() ?? 0,
): string | undefined {
  if (identity.uid === undefined && identity.gid === undefined) return undefined;
  const has = (cap: number) => (caps >> BigInt(cap)) & 1n;
  const missing = [
    ...(has(CAP_SETGID) ? [] : ["CAP_SETGID"]),
    ...(identity.uid === undefined || identity.uid === uid || has(CAP_SETUID)
      ? []
      : ["CAP_SETUID"]),
  ];
  if (missing.length === 0) return undefined;
  const key = identity.uid === undefined ? "group" : "user";
  return `${key}: running workers as another user or group needs root (or ` +
    `${missing.join(" and ")}); the master runs as uid ${uid} without it`;
}
