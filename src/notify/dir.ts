/**
 * The notify hub's private directory: where it is made, how a path handed
 * over by an in-place upgrade is recognised as one the master made itself,
 * and how it is removed.
 *
 * Invariants:
 * - The directory is `arbiter-*`, a real directory (never a symlink), owned
 *   by the master's uid, mode 0711 (see hub.ts for why 0711).
 * - Removal never recurses and never follows a link: it unlinks only the
 *   socket files the hub itself names (`<serial>.sock`, `<serial>.stream`,
 *   `.<32 hex>` staging names), each checked to be a socket by lstat, then
 *   rmdir — which fails, harmlessly, if anything else is in it. So whatever
 *   path the environment names, nothing but the hub's own sockets is ever
 *   deleted (docs/contract.md, "Security").
 *
 * @module
 */

import { basename, dirname, normalize } from "node:path";
import { ConfigError } from "../errors.ts";

/** The prefix of every hub directory's name. */
export const HUB_DIR_PREFIX = "arbiter-";
/** The mode of a hub directory. */
export const HUB_DIR_MODE = 0o711;

/** Longest unix socket path: `sun_path` is 108 bytes with its NUL. */
export const MAX_SOCKET_PATH = 107;
/** Bytes of the longest name made in the directory: `.` + 32 hex digits (the staging name). */
const LONGEST_NAME = 33;

/** Names of the files the hub makes in its directory. */
const OWN_NAME = /^(?:\d{1,16}\.(?:sock|stream)|\.[0-9a-f]{32})$/;
const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;

const encoder = new TextEncoder();

/**
 * Makes the hub directory, mode 0711, in `parent`: the master's runtime
 * directory, chosen and checked before start (src/cli/directories.ts).
 * @throws {ConfigError} naming `runtime_dir` when it cannot be made there
 */
export async function makeHubDir(parent: string): Promise<string> {
  let dir: string;
  try {
    dir = await Deno.makeTempDir({ dir: parent, prefix: HUB_DIR_PREFIX });
  } catch (error) {
    const reason = (error as Error).message.replace(/ \(os error \d+\).*$/s, "").toLowerCase();
    throw new ConfigError(
      `runtime_dir: cannot make the notify directory in ${JSON.stringify(parent)}: ${reason}; ` +
        "set runtime_dir to a writable directory",
      { cause: error },
    );
  }
  if (encoder.encode(dir).length + 1 + LONGEST_NAME > MAX_SOCKET_PATH) {
    await Deno.remove(dir).catch(() => {});
    throw new ConfigError(
      `runtime_dir: ${JSON.stringify(parent)} is too long for unix socket paths ` +
        `(the notify directory ${dir} leaves no room for them); set runtime_dir to a shorter one`,
    );
  }
  // makeTempDir makes it 0700; open it for passing through only.
  await Deno.chmod(dir, HUB_DIR_MODE);
  return dir;
}

/**
 * Why `path` is not a hub directory this master's user made, or undefined
 * when it is one: absolute and normalised, named `arbiter-*`, a directory
 * by lstat, owned by our uid, mode 0711, in a parent that others cannot
 * rename entries in (owned by us or root; group/other-writable only if sticky).
 */
export function checkHubDir(path: unknown): string | undefined {
  if (typeof path !== "string" || !path.startsWith("/") || normalize(path) !== path) {
    return `${JSON.stringify(path)} is not an absolute, normalised path`;
  }
  if (!basename(path).startsWith(HUB_DIR_PREFIX)) {
    return `${path} is not named ${HUB_DIR_PREFIX}*`;
  }
  try {
    const info = Deno.lstatSync(path);
    if (!info.isDirectory) return `${path} is not a directory`;
    if (info.uid !== Deno.uid()) return `${path} belongs to uid ${info.uid}`;
    if (((info.mode ?? 0) & 0o7777) !== HUB_DIR_MODE) {
      return `${path} has mode ${((info.mode ?? 0) & 0o7777).toString(8)}, not 711`;
    }
    const parent = Deno.lstatSync(dirname(path));
    const pmode = parent.mode ?? 0;
    if (!parent.isDirectory) return `${dirname(path)} is not a directory`;
    if (parent.uid !== 0 && parent.uid !== Deno.uid()) {
      return `${dirname(path)} belongs to uid ${parent.uid}`;
    }
    if ((pmode & 0o022) !== 0 && (pmode & 0o1000) === 0) {
      return `${dirname(path)} is writable by others and not sticky`;
    }
  } catch (error) {
    return `${path}: ${(error as Error).message}`;
  }
  return undefined;
}

/**
 * Removes a hub directory: its own socket files, then the directory itself
 * (see the module notes). Does nothing to a path {@link checkHubDir} refuses;
 * returns why, or undefined when it is gone (or was never there).
 */
export function removeHubDir(path: string): string | undefined {
  try {
    Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
  }
  const why = checkHubDir(path);
  if (why !== undefined) return why;
  try {
    for (const entry of Deno.readDirSync(path)) {
      if (!OWN_NAME.test(entry.name)) continue;
      const file = `${path}/${entry.name}`;
      try {
        if (((Deno.lstatSync(file).mode ?? 0) & S_IFMT) === S_IFSOCK) Deno.removeSync(file);
      } catch {
        // Gone meanwhile.
      }
    }
    Deno.removeSync(path); // rmdir: refuses if anything else is left
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    return `${path}: ${(error as Error).message}`;
  }
  return undefined;
}
