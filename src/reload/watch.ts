/**
 * Reload on change (development): watches files and directories and reports
 * each burst of changes once, so the master can start one rolling reload.
 *
 * Invariants:
 * - Directories are watched recursively (`Deno.watchFs`, inotify on Linux).
 * - Only creations, modifications, removals and renames count; a path counts
 *   when its extension is one of `extensions` (all when empty) and it is not
 *   an editor's scratch file (`*.swp` and other vim swap files, `*~`, `.#*`,
 *   `#*#`, vim's `4913` probe, JetBrains' `*___jb_tmp___`/`*___jb_old___`) nor
 *   under `.git/`, `node_modules/` or `__pycache__/` below a watched path.
 * - Debounced: `onChange` is called once the paths have been quiet for
 *   `debounceMs`, with every path of the burst (sorted, each once); a burst
 *   that never goes quiet is still reported every `maxWaitMs`.
 * - After `close()`, `onChange` is never called again.
 *
 * @module
 */

import { basename, resolve, sep } from "node:path";
import type { Config } from "../config/types.ts";

/** Options of {@link watchForChanges}. */
export interface WatchOptions {
  /** Files or directories to watch; directories recursively. Must exist. */
  paths: string[];
  /** Extensions that count, with or without the dot (`".py"`, `"py"`); empty: every file. */
  extensions: string[];
  /** Quiet time that ends a burst, in ms (default 300). */
  debounceMs?: number;
  /** Longest a burst is held back, in ms (default 10 × debounceMs). */
  maxWaitMs?: number;
  /** Called once per burst with the changed paths (absolute, sorted, unique). */
  onChange: (files: string[]) => void;
  /** Called when watching fails after the start (e.g. inotify limits); watching stops. */
  onError?: (error: unknown) => void;
}

/** A running watch. */
export interface Watcher {
  /** Stops watching; pending changes are dropped. Idempotent. */
  close(): void;
  /** Resolves once the watch has fully stopped (after `close()` or an error). */
  readonly closed: Promise<void>;
}

/** Default quiet time that ends a burst of changes. */
export const DEFAULT_DEBOUNCE_MS = 300;

const COUNTED_KINDS = new Set<Deno.FsEvent["kind"]>(["create", "modify", "remove", "rename"]);
const IGNORED_DIRS = new Set([".git", "node_modules", "__pycache__"]);

/** Whether a file name is an editor's scratch file rather than a source file. */
export function isEditorScratch(name: string): boolean {
  return /\.sw[a-px]$/.test(name) || // vim swap files: .swp, .swo, ..., .swx
    name.endsWith("~") || // backups (vim, emacs, nano)
    name.startsWith(".#") || // emacs lock files
    (name.startsWith("#") && name.endsWith("#")) || // emacs auto-save
    name === "4913" || // vim's probe that the directory is writable
    name.endsWith("___jb_tmp___") || name.endsWith("___jb_old___"); // JetBrains safe write
}

/** `.py`, `py`, `.PY` → `.py`. */
function normalizeExtension(ext: string): string {
  return "." + ext.replace(/^\./, "").toLowerCase();
}

/**
 * What `reload = true` watches: `reload_paths`, or, when that is empty, the
 * workers' directory (`chdir`, else the master's working directory).
 *
 * @param cwd the master's working directory (default: this process's)
 */
export function reloadPathsOf(
  config: Pick<Config, "reload_paths" | "chdir">,
  cwd: string = Deno.cwd(),
): string[] {
  if (config.reload_paths.length > 0) return [...config.reload_paths];
  return [config.chdir ?? cwd];
}

/**
 * Problems with `reload_paths`, for `--check-config`: each must exist.
 * @returns one message per missing or unreadable path; empty when all is well
 */
export function checkReloadPaths(paths: string[]): string[] {
  const problems: string[] = [];
  for (const path of paths) {
    try {
      Deno.statSync(path);
    } catch (error) {
      const why = error instanceof Deno.errors.NotFound
        ? "does not exist"
        : `cannot be read: ${error instanceof Error ? error.message : error}`;
      problems.push(`reload_paths: ${JSON.stringify(path)} ${why}`);
    }
  }
  return problems;
}

/**
 * Watches `opts.paths` and calls `opts.onChange` once per burst of changes.
 *
 * @throws {Error} naming the path when a path does not exist
 * @throws {RangeError} for an empty `paths` or a negative `debounceMs`
 *
 * @example Restart on Python changes
 * ```ts ignore
 * const watcher = watchForChanges({
 *   paths: ["/srv/app"],
 *   extensions: [".py"],
 *   onChange: (files) => console.log("changed:", files),
 * });
 * // ...
 * watcher.close();
 * await watcher.closed;
 * ```
 */
export function watchForChanges(opts: WatchOptions): Watcher {
  const debounceMs = opts.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  if (!Number.isFinite(debounceMs) || debounceMs < 0) {
    throw new RangeError(`debounceMs: expected a number ≥ 0, got ${debounceMs}`);
  }
  const maxWaitMs = opts.maxWaitMs ?? Math.max(10 * debounceMs, 1000);
  if (!Number.isFinite(maxWaitMs) || maxWaitMs < debounceMs) {
    throw new RangeError(`maxWaitMs: expected a number ≥ debounceMs, got ${maxWaitMs}`);
  }
  if (opts.paths.length === 0) throw new RangeError("paths: expected at least one path");
  const problems = checkReloadPaths(opts.paths);
  if (problems.length > 0) throw new Error(problems.join("; "));

  // Longest first, so a path is judged relative to the innermost watched root.
  const roots = [...new Set(opts.paths.map((p) => resolve(p)))].sort((a, b) => b.length - a.length);
  const extensions = opts.extensions.map(normalizeExtension);

  const counts = (path: string): boolean => {
    const name = basename(path);
    if (isEditorScratch(name)) return false;
    if (extensions.length > 0 && !extensions.some((e) => name.toLowerCase().endsWith(e))) {
      return false;
    }
    const root = roots.find((r) => path === r || path.startsWith(r.endsWith(sep) ? r : r + sep));
    const below = root === undefined ? path : path.slice(root.length);
    return !below.split(sep).some((part) => IGNORED_DIRS.has(part));
  };

  const watcher = Deno.watchFs(roots, { recursive: true });
  const pending = new Set<string>();
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let burstStart: number | undefined;

  const flush = () => {
    timer = undefined;
    burstStart = undefined;
    const files = [...pending].sort();
    pending.clear();
    if (closed || files.length === 0) return;
    try {
      opts.onChange(files);
    } catch (error) {
      opts.onError?.(error);
    }
  };
  const schedule = () => {
    const now = performance.now();
    burstStart ??= now;
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(flush, Math.max(0, Math.min(debounceMs, burstStart + maxWaitMs - now)));
  };
  const close = () => {
    if (closed) return;
    closed = true;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    pending.clear();
    try {
      watcher.close();
    } catch { /* already closed */ }
  };

  const loop = (async () => {
    try {
      for await (const event of watcher) {
        if (closed) break;
        if (!COUNTED_KINDS.has(event.kind)) continue;
        const changed = event.paths.filter(counts);
        if (changed.length === 0) continue;
        for (const path of changed) pending.add(path);
        schedule();
      }
    } catch (error) {
      if (!closed) opts.onError?.(error);
    } finally {
      close();
    }
  })();

  return { close, closed: loop };
}
