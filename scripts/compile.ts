/**
 * Builds the arbiter executable with `deno compile`, stamped with the git
 * commit it is built from (`arbiter --version`, `arbiter_build_info`;
 * docs/operations.md, "Versions"). deno.json's compile tasks run it:
 *
 *     deno run -A scripts/compile.ts [deno compile options …]
 *     deno run -A scripts/compile.ts --target aarch64-unknown-linux-gnu -o arbiter-arm64
 *
 * The commit is written into src/_commit.ts for the time of the compile and
 * the file is restored to its checked-in text afterwards (also when the compile fails or the
 * script is interrupted), so the program never reads git at run time and a
 * checkout always says "commit unknown". A build from a working tree with
 * uncommitted changes to tracked files is stamped `<commit>-dirty`; outside
 * a git checkout the executable is built unstamped.
 *
 * `ARBITER_COMPILE_DENO` names the deno to run instead of this one (for the
 * script's own test).
 *
 * @module
 */

import { dirname, join } from "node:path";
import { MASTER_V8_FLAGS } from "../src/master/v8_flags.ts";

/** The repository root: the parent of this script's directory. */
const ROOT = dirname(import.meta.dirname!);
/** The generated module, relative to {@link ROOT}. */
export const COMMIT_MODULE = "src/_commit.ts";

/** The text of src/_commit.ts for `commit` (undefined: unstamped, as checked in). */
export function commitModule(commit: string | undefined): string {
  return [
    "// The git commit this program was built from. scripts/compile.ts rewrites",
    "// this file while `deno compile` runs and restores it afterwards; in a",
    '// checkout it stays undefined, so `deno run` says "commit unknown".',
    `export const COMMIT: string | undefined = ${
      commit === undefined ? "undefined" : JSON.stringify(commit)
    };`,
    "",
  ].join("\n");
}

async function git(root: string, args: string[]): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("git", {
      args: ["-C", root, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    return undefined; // no git on this machine
  }
}

/** The commit `root` is checked out at, `-dirty` when tracked files changed; undefined outside git. */
export async function gitCommit(root: string): Promise<string | undefined> {
  const head = await git(root, ["rev-parse", "HEAD"]);
  if (head === undefined || !/^[0-9a-f]{40}$/.test(head)) return undefined;
  const changes = await git(root, ["status", "--porcelain", "--untracked-files=no"]);
  return changes === "" ? head : `${head}-dirty`;
}

/** Runs `deno compile` with the commit stamped; resolves with its exit code. */
export async function compile(args: string[], root: string = ROOT): Promise<number> {
  const path = join(root, COMMIT_MODULE);
  const commit = await gitCommit(root);
  // Back to the checked-in text, whatever an earlier killed run left there.
  const restore = () => Deno.writeTextFileSync(path, commitModule(undefined));
  const onSignal = () => {
    restore();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    await Deno.writeTextFile(path, commitModule(commit));
    console.error(
      `scripts/compile.ts: stamping commit ${commit ?? "unknown (not a git checkout)"}`,
    );
    const deno = Deno.env.get("ARBITER_COMPILE_DENO") || Deno.execPath();
    const status = await new Deno.Command(deno, {
      args: [
        "compile",
        "-A",
        "--unstable-net",
        `--v8-flags=${MASTER_V8_FLAGS}`,
        ...args,
        "main.ts",
      ],
      cwd: root,
    }).spawn().status;
    return status.code;
  } finally {
    restore();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

if (import.meta.main) Deno.exit(await compile(Deno.args));
