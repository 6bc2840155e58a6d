/**
 * The directories the master creates files in, and whether it can: the
 * control socket's, each `unix:` bind's, the pidfile's, the log file's, and
 * its runtime directory (where the notify hub puts the workers' private
 * sockets). `--check-config` and a real start run the same check, before
 * anything is bound or written, so a read-only root filesystem or a missing
 * volume is reported as a config problem naming the key, never found later
 * as an "internal error".
 *
 * Where the runtime directory is, first that works:
 * 1. `runtime_dir`, when set (then it must work: nothing else is tried);
 * 2. `$RUNTIME_DIRECTORY`, which systemd's `RuntimeDirectory=` sets;
 * 3. `$XDG_RUNTIME_DIR`;
 * 4. the temp directory (`$TMPDIR`, else /tmp);
 * 5. the control socket's directory: in a container with a read-only root
 *    this is the one writable volume the config already names.
 * A candidate works when it is a directory the master's user may create
 * files in (the kernel's `access(2)` answer, so a read-only mount counts),
 * short enough for the socket paths made in it, and — when a root master
 * runs its workers as another `user` — passable by others all the way down
 * (see src/notify/hub.ts). The chosen path is resolved through
 * symbolic links once, so the hub directory's parent is a real directory
 * (an in-place upgrade checks it by lstat).
 *
 * Why not abstract unix sockets: Deno cannot bind one, and a path in a
 * private 0711 directory keeps the kernel's file permissions as a second
 * lock beside the sender check.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import type { Config } from "../config/types.ts";
import { accessErrno, strerror, W_OK, X_OK } from "../sys/libc.ts";

/** Bytes a hub directory adds to its parent's path: `/arbiter-` + 16 random hex digits. */
const HUB_DIR_NAME_BYTES = 25;
/** Bytes of the longest socket path inside a hub directory: `/` + 33 (see src/notify/dir.ts). */
const HUB_SOCKET_NAME_BYTES = 34;
/** Longest unix socket path: `sun_path` is 108 bytes with its NUL. */
const MAX_SOCKET_PATH = 107;
/** The longest runtime directory path that leaves room for the hub's socket paths. */
export const MAX_RUNTIME_DIR_BYTES = MAX_SOCKET_PATH - HUB_DIR_NAME_BYTES - HUB_SOCKET_NAME_BYTES;

/** Where the runtime directory is and which setting chose it. */
export interface RuntimeDir {
  /** Absolute, resolved through symbolic links. */
  path: string;
  /** The setting it came from, for messages: `runtime_dir`, `$XDG_RUNTIME_DIR`, … */
  from: string;
}

const encoder = new TextEncoder();

/**
 * Why the master cannot create files in `dir`, completing a sentence that
 * starts with the directory's name; undefined when it can.
 */
export function writableDirProblem(dir: string): string | undefined {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(dir);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "does not exist";
    return `cannot be looked at: ${(error as Error).message.replace(/ \(os error \d+\).*$/, "")}`;
  }
  if (!info.isDirectory) return "is not a directory";
  const errno = accessErrno(dir, W_OK | X_OK);
  if (errno === 0) return undefined;
  const user = `uid ${Deno.uid()}`;
  return `is not writable by the master's user (${user}): ${strerror(errno).toLowerCase()}`;
}

/** True when every directory from `/` down to `dir` lets others pass through (o+x). */
function passableByOthers(dir: string): boolean {
  try {
    for (let p = dir; p !== "/" && p !== ""; p = dirname(p)) {
      if (((Deno.statSync(p).mode ?? 0) & 0o001) === 0) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** Why `dir` cannot hold the runtime files; undefined when it can. */
function runtimeDirProblem(dir: string, otherUsers: boolean): string | undefined {
  const problem = writableDirProblem(dir);
  if (problem !== undefined) return problem;
  const real = Deno.realPathSync(dir);
  const bytes = encoder.encode(real).length;
  if (bytes > MAX_RUNTIME_DIR_BYTES) {
    return `is ${bytes} bytes long (as ${real}); the notify sockets made in it need a path ` +
      `of at most ${MAX_RUNTIME_DIR_BYTES} bytes`;
  }
  if (otherUsers && !passableByOthers(real)) {
    return "is not passable by other users (o+x on it and every directory above it), " +
      "which workers running as another user need to reach their notify sockets";
  }
  return undefined;
}

/**
 * Chooses the runtime directory (see the module notes for the order).
 *
 * @returns the directory, or the problem: one line naming `runtime_dir`
 */
export function chooseRuntimeDir(
  config: Config,
  env: Record<string, string | undefined>,
  uid: number = Deno.uid() ?? -1,
): RuntimeDir | { problem: string } {
  // Workers of another user must pass through to their sockets; root passes anyway.
  const otherUsers = uid === 0 && config.user !== undefined;
  if (config.runtime_dir !== undefined) {
    const problem = runtimeDirProblem(config.runtime_dir, otherUsers);
    if (problem === undefined) {
      return { path: Deno.realPathSync(config.runtime_dir), from: "runtime_dir" };
    }
    return { problem: `runtime_dir: ${JSON.stringify(config.runtime_dir)} ${problem}` };
  }
  const candidates: [from: string, dir: string | undefined][] = [
    ["$RUNTIME_DIRECTORY", env.RUNTIME_DIRECTORY?.split(":")[0]],
    ["$XDG_RUNTIME_DIR", env.XDG_RUNTIME_DIR],
    [env.TMPDIR ? "$TMPDIR" : "the temp directory", env.TMPDIR || "/tmp"],
    [
      "control_socket's directory",
      config.control_socket === undefined ? undefined : dirname(config.control_socket),
    ],
  ];
  const tried: string[] = [];
  for (const [from, dir] of candidates) {
    if (!dir || !dir.startsWith("/")) continue;
    const problem = runtimeDirProblem(dir, otherUsers);
    if (problem === undefined) return { path: Deno.realPathSync(dir), from };
    tried.push(`${dir} (${from}) ${problem}`);
  }
  return {
    problem: "runtime_dir: no directory for the master's private notify sockets: " +
      `${tried.join("; ")}; set runtime_dir to a writable directory ` +
      "(in a container: the emptyDir or tmpfs volume)",
  };
}

/** A file the master creates, the key that names it, and what it is. */
interface WrittenFile {
  key: string;
  path: string;
  what: string;
}

/** The files the config makes the master create, with the keys naming them. */
function writtenFiles(config: Config): WrittenFile[] {
  const files: WrittenFile[] = [];
  if (config.control_socket !== undefined) {
    files.push({ key: "control_socket", path: config.control_socket, what: "the control socket" });
  }
  for (const spec of config.bind) {
    if (spec.kind === "unix") {
      files.push({ key: "bind", path: spec.path, what: `the socket of ${spec.text}` });
    }
  }
  if (config.pidfile !== undefined) {
    files.push({ key: "pidfile", path: config.pidfile, what: "the pidfile" });
  }
  if (config.log_file !== undefined) {
    files.push({ key: "log_file", path: config.log_file, what: "the log file" });
  }
  return files;
}

/**
 * Every problem with the directories the master will create files in, one
 * line each, naming the key to change; empty when there is none.
 */
export function directoryProblems(config: Config): string[] {
  const problems: string[] = [];
  for (const file of writtenFiles(config)) {
    const dir = dirname(resolve(file.path));
    const problem = writableDirProblem(dir);
    if (problem !== undefined) {
      problems.push(
        `${file.key}: the directory ${JSON.stringify(dir)} of ${file.what} ${problem}`,
      );
    }
  }
  // An existing log file is appended to, not replaced: it must be writable itself.
  if (config.log_file !== undefined && writableDirProblem(dirname(config.log_file)) === undefined) {
    const errno = existingFileWriteErrno(config.log_file);
    if (errno !== 0) {
      problems.push(
        `log_file: ${JSON.stringify(config.log_file)} is not writable by the master's user ` +
          `(uid ${Deno.uid()}): ${strerror(errno).toLowerCase()}`,
      );
    }
  }
  return problems;
}

/** access(W_OK)'s errno for a file that exists; 0 when it does not or is writable. */
function existingFileWriteErrno(path: string): number {
  try {
    Deno.statSync(path);
  } catch {
    return 0;
  }
  return accessErrno(path, W_OK);
}
