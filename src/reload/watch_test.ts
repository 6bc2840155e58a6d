import { deepStrictEqual, match, ok, strictEqual, throws } from "node:assert/strict";
import {
  checkReloadPaths,
  isEditorScratch,
  reloadPathsOf,
  type Watcher,
  watchForChanges,
} from "./watch.ts";

/** The calls of one watcher, and promises for the n-th call. */
class Calls {
  readonly calls: string[][] = [];
  #waiters: { n: number; resolve: (files: string[]) => void }[] = [];

  readonly onChange = (files: string[]): void => {
    this.calls.push(files);
    for (const w of this.#waiters.filter((w) => w.n === this.calls.length)) w.resolve(files);
    this.#waiters = this.#waiters.filter((w) => w.n > this.calls.length);
  };

  /** Resolves with the files of call `n` (1-based), at once if it happened; rejects after 10 s. */
  nth(n: number): Promise<string[]> {
    if (this.calls.length >= n) return Promise.resolve(this.calls[n - 1]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no call #${n} within 10 s; calls: ${JSON.stringify(this.calls)}`)),
        10_000,
      );
      this.#waiters.push({
        n,
        resolve: (files) => {
          clearTimeout(timer);
          resolve(files);
        },
      });
    });
  }
}

async function withWatch(
  setup: (dir: string) => Promise<void> | void,
  opts: { extensions: string[]; debounceMs?: number; paths?: (dir: string) => string[] },
  fn: (dir: string, calls: Calls, watcher: Watcher) => Promise<void>,
): Promise<void> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "arbiter-watch-" }));
  const calls = new Calls();
  let watcher: Watcher | undefined;
  try {
    await setup(dir);
    watcher = watchForChanges({
      paths: opts.paths?.(dir) ?? [dir],
      extensions: opts.extensions,
      debounceMs: opts.debounceMs ?? 100,
      onChange: calls.onChange,
    });
    await fn(dir, calls, watcher);
  } finally {
    watcher?.close();
    await watcher?.closed;
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("watchForChanges: editing a watched file calls onChange once with that file", async () => {
  await withWatch(
    (dir) => Deno.writeTextFile(`${dir}/app.py`, "x = 1\n"),
    { extensions: [".py"] },
    async (dir, calls) => {
      await Deno.writeTextFile(`${dir}/app.py`, "x = 2\n");
      deepStrictEqual(await calls.nth(1), [`${dir}/app.py`]);
      // Control: the next change is a call of its own holding only its file,
      // so the edit above gave exactly one call.
      await Deno.writeTextFile(`${dir}/other.py`, "y = 1\n");
      deepStrictEqual(await calls.nth(2), [`${dir}/other.py`]);
      strictEqual(calls.calls.length, 2);
    },
  );
});

Deno.test("watchForChanges: a burst of ten edits gives exactly one call", async () => {
  await withWatch(
    (dir) => Deno.mkdir(`${dir}/pkg/sub`, { recursive: true }),
    { extensions: ["py"] },
    async (dir, calls) => {
      for (let i = 0; i < 10; i++) {
        await Deno.writeTextFile(`${dir}/pkg/sub/mod.py`, `x = ${i}\n`);
        if (i % 3 === 0) await Deno.writeTextFile(`${dir}/pkg/init.py`, `y = ${i}\n`);
      }
      deepStrictEqual(await calls.nth(1), [`${dir}/pkg/init.py`, `${dir}/pkg/sub/mod.py`]);
      await Deno.writeTextFile(`${dir}/control.py`, "");
      deepStrictEqual(await calls.nth(2), [`${dir}/control.py`]);
      strictEqual(calls.calls.length, 2);
    },
  );
});

Deno.test("watchForChanges: other extensions, editor scratch files and ignored dirs give nothing", async () => {
  await withWatch(
    async (dir) => {
      for (const d of [".git", "node_modules/lib", "__pycache__", "src"]) {
        await Deno.mkdir(`${dir}/${d}`, { recursive: true });
      }
    },
    { extensions: [".py", "html"] },
    async (dir, calls) => {
      for (
        const name of [
          "notes.txt",
          "src/.app.py.swp",
          "src/.app.py.swo",
          "src/app.py~",
          "src/.#app.py",
          "src/#app.py#",
          "src/4913",
          "src/app.py___jb_tmp___",
          ".git/hook.py",
          "node_modules/lib/x.py",
          "__pycache__/app.py",
        ]
      ) {
        await Deno.writeTextFile(`${dir}/${name}`, "ignored\n");
      }
      await Deno.writeTextFile(`${dir}/src/app.py`, "counted\n");
      await Deno.writeTextFile(`${dir}/src/page.HTML`, "counted\n");
      deepStrictEqual(await calls.nth(1), [`${dir}/src/app.py`, `${dir}/src/page.HTML`]);
    },
  );
});

Deno.test("watchForChanges: no extensions means every file; removals count", async () => {
  await withWatch(
    (dir) => Deno.writeTextFile(`${dir}/gone.cfg`, ""),
    { extensions: [] },
    async (dir, calls) => {
      await Deno.remove(`${dir}/gone.cfg`);
      await Deno.writeTextFile(`${dir}/Makefile`, "all:\n");
      deepStrictEqual(await calls.nth(1), [`${dir}/Makefile`, `${dir}/gone.cfg`]);
    },
  );
});

Deno.test("watchForChanges: a watched file, not only a directory", async () => {
  await withWatch(
    (dir) => Deno.writeTextFile(`${dir}/settings.py`, ""),
    { extensions: [], paths: (dir) => [`${dir}/settings.py`] },
    async (dir, calls) => {
      await Deno.writeTextFile(`${dir}/settings.py`, "DEBUG = True\n");
      deepStrictEqual(await calls.nth(1), [`${dir}/settings.py`]);
    },
  );
});

Deno.test("watchForChanges: after close() onChange is never called", async () => {
  await withWatch(() => {}, { extensions: [".py"], debounceMs: 300 }, async (dir, calls) => {
    // A second watcher with a shorter debounce: had the closed one (below)
    // still been watching, it would have been told before this one.
    const closedCalls = new Calls();
    const early = watchForChanges({
      paths: [dir],
      extensions: [".py"],
      debounceMs: 50,
      onChange: closedCalls.onChange,
    });
    early.close();
    early.close(); // idempotent
    await early.closed;
    await Deno.writeTextFile(`${dir}/a.py`, "");
    deepStrictEqual(await calls.nth(1), [`${dir}/a.py`]);
    strictEqual(closedCalls.calls.length, 0);
  });
});

Deno.test("watchForChanges: close() drops a burst still being debounced", async () => {
  await withWatch(() => {}, { extensions: [".py"] }, async (dir, calls) => {
    const closedCalls = new Calls();
    const pending = watchForChanges({
      paths: [dir],
      extensions: [".py"],
      debounceMs: 200,
      onChange: closedCalls.onChange,
    });
    await Deno.writeTextFile(`${dir}/a.py`, "");
    // The short-debounce watcher firing proves the event reached the long one too.
    await calls.nth(1);
    pending.close();
    await pending.closed;
    await Deno.writeTextFile(`${dir}/b.py`, "");
    deepStrictEqual(await calls.nth(2), [`${dir}/b.py`]);
    strictEqual(closedCalls.calls.length, 0);
  });
});

Deno.test("watchForChanges: bad options and missing paths are refused up front", () => {
  throws(
    () => watchForChanges({ paths: ["/nonexistent/arbiter"], extensions: [], onChange: () => {} }),
    /reload_paths: "\/nonexistent\/arbiter" does not exist/,
  );
  throws(() => watchForChanges({ paths: [], extensions: [], onChange: () => {} }), RangeError);
  throws(
    () => watchForChanges({ paths: ["/"], extensions: [], debounceMs: -1, onChange: () => {} }),
    RangeError,
  );
});

Deno.test("checkReloadPaths: names each missing path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arbiter-watch-" });
  try {
    const problems = checkReloadPaths([dir, `${dir}/missing`, `${dir}/also/missing.py`]);
    strictEqual(problems.length, 2);
    match(problems[0], /^reload_paths: ".*\/missing" does not exist$/);
    match(problems[1], /^reload_paths: ".*\/also\/missing\.py" does not exist$/);
    deepStrictEqual(checkReloadPaths([dir]), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("isEditorScratch", () => {
  for (const name of [".a.py.swp", ".a.py.swx", "a.py~", ".#a.py", "#a.py#", "4913"]) {
    ok(isEditorScratch(name), name);
  }
  for (const name of ["a.py", "swp.py", "README", "4914", "#notes"]) {
    ok(!isEditorScratch(name), name);
  }
});

Deno.test("reloadPathsOf: reload_paths, else chdir, else the working directory", () => {
  deepStrictEqual(reloadPathsOf({ reload_paths: ["/a", "/b"], chdir: "/srv" }, "/cwd"), [
    "/a",
    "/b",
  ]);
  deepStrictEqual(reloadPathsOf({ reload_paths: [], chdir: "/srv" }, "/cwd"), ["/srv"]);
  deepStrictEqual(reloadPathsOf({ reload_paths: [] }, "/cwd"), ["/cwd"]);
});
