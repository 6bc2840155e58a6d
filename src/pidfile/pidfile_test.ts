import { deepStrictEqual, ok as assert, strictEqual, throws } from "node:assert/strict";
import { ArbiterError } from "../errors.ts";
import { MAX_PIDFILE_BYTES, Pidfile, readPidfile } from "./pidfile.ts";

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "arbiter-pidfile-" });
}

async function mkfifo(path: string): Promise<void> {
  const { success } = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert(success, "mkfifo failed");
}

/** Asserts that `fn` throws an exit-1 ArbiterError whose message has every fragment. */
function refused(fn: () => unknown, ...fragments: string[]): void {
  throws(fn, (error: unknown) => {
    assert(error instanceof ArbiterError, String(error));
    strictEqual(error.exitCode, 1);
    for (const f of fragments) assert(error.message.includes(f), error.message);
    return true;
  });
}

Deno.test("Pidfile: claim writes '<pid>\\n', remove removes it; a stale or empty file is replaced", async () => {
  const dir = await tempDir();
  try {
    const path = `${dir}/a.pid`;
    for (const before of [undefined, "4194999\n", ""]) {
      if (before !== undefined) await Deno.writeTextFile(path, before);
      const pidfile = Pidfile.claim(path, 4242);
      strictEqual(await Deno.readTextFile(path), "4242\n");
      deepStrictEqual((await Array.fromAsync(Deno.readDir(dir))).length, 1, "no temp file left");
      pidfile.remove();
      await Deno.lstat(path).then(() => assert(false, "still there"), () => {});
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Pidfile: a live foreign pid is refused unless liveness is off (--check-config)", async () => {
  const dir = await tempDir();
  try {
    const path = `${dir}/a.pid`;
    await Deno.writeTextFile(path, `${Deno.pid}\n`);
    refused(() => Pidfile.claim(path, 4242), `names process ${Deno.pid}, which is running`);
    Pidfile.check(path, { liveness: false, pid: 4242 });
    strictEqual(await Deno.readTextFile(path), `${Deno.pid}\n`, "left as it was");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Pidfile: anything but a regular file holding a pid is refused, read safely, left alone", async () => {
  const dir = await tempDir();
  try {
    const victim = `${dir}/victim`;
    await Deno.writeTextFile(victim, "123\n");
    const cases: [string, (path: string) => Promise<void>, string][] = [
      ["fifo", (p) => mkfifo(p), "is a FIFO, not a regular file"],
      ["zero", (p) => Deno.symlink("/dev/zero", p), "is a symbolic link"],
      ["link", (p) => Deno.symlink(victim, p), "is a symbolic link"],
      ["dangling", (p) => Deno.symlink(`${dir}/nowhere`, p), "is a symbolic link"],
      ["dir", (p) => Deno.mkdir(p), "is a directory, not a regular file"],
      ["big", (p) => Deno.writeTextFile(p, "1".repeat(MAX_PIDFILE_BYTES + 1)), "larger than 64"],
      ["text", (p) => Deno.writeTextFile(p, "root:x:0:0\n"), "does not hold a pid"],
    ];
    for (const [name, plant, message] of cases) {
      const path = `${dir}/${name}.pid`;
      await plant(path);
      const before = await Deno.lstat(path);
      refused(() => Pidfile.claim(path, 4242), path, message);
      refused(() => Pidfile.check(path, { liveness: false }), message);
      const after = await Deno.lstat(path);
      deepStrictEqual([after.ino, after.mtime], [before.ino, before.mtime], `${name} untouched`);
    }
    refused(() => readPidfile("/dev/zero"), "is a character device");
    strictEqual(await Deno.readTextFile(victim), "123\n");
    strictEqual(readPidfile(`${dir}/absent.pid`), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Pidfile: a missing directory is refused before anything is written", () => {
  refused(
    () => Pidfile.check("/nonexistent-arbiter-dir/a.pid", { liveness: true }),
    "/nonexistent-arbiter-dir is not an existing directory",
  );
});

Deno.test("Pidfile: remove() leaves a file that no longer holds our pid", async () => {
  const dir = await tempDir();
  try {
    const path = `${dir}/a.pid`;
    const pidfile = Pidfile.claim(path, 4242);
    await Deno.writeTextFile(path, "4243\n");
    pidfile.remove();
    strictEqual(await Deno.readTextFile(path), "4243\n");
    await Deno.remove(path);
    await mkfifo(path);
    pidfile.remove(); // must neither hang nor remove it
    assert((await Deno.lstat(path)).isFifo);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
