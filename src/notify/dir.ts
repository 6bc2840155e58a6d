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
 * Makes the hub directory, mode 0711, with room for socket paths:
 * `$XDG_RUNTIME_DIR/arbiter-*` when usable (see hub.ts), else a fresh temp dir.
 */
export async function makeHubDir(): Promise<string> {
  const fits = (dir: string) => encoder.encode(dir).length + 1 + LONGEST_NAME <= MAX_SOCKET_PATH;
  const runtime = Deno.env.get("XDG_RUNTIME_DIR");
  let dir: string | undefined;
  if (runtime && runtime.startsWith("/") && runtimeDirUsable(runtime)) {
    try {
      const made = await Deno.makeTempDir({ dir: runtime, prefix: HUB_DIR_PREFIX });
      if (fits(made)) dir = made;
      else await Deno.remove(made);
    } catch {
      // Not writable after all: fall back.
    }
  }
  if (dir === undefined) {
    const made = await Deno.makeTempDir({ prefix: HUB_DIR_PREFIX });
    if (!fits(made)) {
      await Deno.remove(made).catch(() => {});
      throw new Error(
        `notify: temp directory ${made} is too long for unix socket paths ` +
          `(at most ${MAX_SOCKET_PATH - 1 - LONGEST_NAME} bytes); set TMPDIR to a shorter one`,
      );
    }
    dir = made;
  }
  // makeTempDir makes it 0700; open it for passing through only.
  await Deno.chmod(dir, HUB_DIR_MODE);
  return dir;
}

/**
 * True if `$XDG_RUNTIME_DIR` may hold the hub: always for a non-root master
 * (its workers run as itself); for root only if others can pass through it
 * and every directory above it.
 */
function runtimeDirUsable(runtime: string): boolean {
  if (Deno.uid() !== 0) return true;
  try {
    let p = runtime.replace(/\/+$/, "");
    while (p !== "") {
      const mode = Deno.statSync(p).mode;
      if (mode === null || (mode & 0o001) === 0) return false;
      p = p.slice(0, p.lastIndexOf("/"));
    }
    return true;
  } catch {
    return false;
  }
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
