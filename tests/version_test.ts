// `arbiter --version` (docs/operations.md, "Versions") and the commit stamp of
// scripts/compile.ts. The real `deno compile` needs Deno's download host, which
// these machines cannot reach, so the stamp is checked with a stand-in deno
// that copies the module as the compile would see it; the version output is
// the real program's.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { REPO_ROOT, startArbiter } from "./_harness.ts";
import { tempDir } from "./_workers.ts";
import { COMMIT_MODULE, commitModule } from "../scripts/compile.ts";

Deno.test("--version: arbiter's version, the commit (unknown from a checkout), Deno, V8, TypeScript", async () => {
  await using version = startArbiter(["--version"]);
  assertEquals((await version.waitExit()).code, 0);
  const denoJson = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}/deno.json`));
  assertEquals(
    version.stdout(),
    [
      `arbiter ${denoJson.version}`,
      "commit unknown",
      `deno ${Deno.version.deno}`,
      `v8 ${Deno.version.v8}`,
      `typescript ${Deno.version.typescript}`,
      "",
    ].join("\n"),
  );
});

Deno.test("the checked-in commit module is the unstamped one compile.ts restores", async () => {
  assertEquals(await Deno.readTextFile(`${REPO_ROOT}/${COMMIT_MODULE}`), commitModule(undefined));
});

async function run(cmd: string, args: string[], cwd: string): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stdin: "null", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert(out.success, `${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return text.trim();
}

Deno.test("scripts/compile.ts stamps the commit for the compile only, and restores the module", async () => {
  await using dir = await tempDir();
  const root = dir.path;
  await Deno.mkdir(`${root}/scripts`);
  await Deno.mkdir(`${root}/src/master`, { recursive: true });
  for (const file of ["scripts/compile.ts", "src/master/v8_flags.ts"]) {
    await Deno.copyFile(`${REPO_ROOT}/${file}`, `${root}/${file}`);
  }
  await Deno.writeTextFile(`${root}/${COMMIT_MODULE}`, commitModule(undefined));
  await Deno.writeTextFile(`${root}/main.ts`, "console.log(1);\n");
  // The stand-in deno: records its arguments and the module as it is during the compile.
  const seen = `${root}/seen`;
  const fake = `${root}/fake-deno`;
  await Deno.writeTextFile(
    fake,
    `#!/bin/sh\necho "$@" > '${seen}.args'\ncp '${root}/${COMMIT_MODULE}' '${seen}.ts'\nexit 7\n`,
  );
  await Deno.chmod(fake, 0o755);
  const git = (...args: string[]) =>
    run("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], root);
  await git("init", "-q");
  await git("add", "scripts", "src", "main.ts");
  await git("commit", "-q", "-m", "x");
  const head = await git("rev-parse", "HEAD");

  const compile = (extra: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${root}/scripts/compile.ts`, ...extra],
      env: { ARBITER_COMPILE_DENO: fake },
      stdin: "null",
      stderr: "piped",
    }).output();
  const out = await compile(["--target", "x86_64-unknown-linux-gnu", "-o", "arbiter-x86_64"]);
  assertEquals(out.code, 7, "the compile's exit code is the script's");
  assertEquals(
    await Deno.readTextFile(`${seen}.args`),
    "compile -A --unstable-net --v8-flags=--expose-gc --target x86_64-unknown-linux-gnu -o arbiter-x86_64 main.ts\n",
  );
  assertEquals(await Deno.readTextFile(`${seen}.ts`), commitModule(head));
  assertEquals(await Deno.readTextFile(`${root}/${COMMIT_MODULE}`), commitModule(undefined));

  // A tracked file changed: the stamp says so.
  await Deno.writeTextFile(`${root}/main.ts`, "console.log(2);\n");
  await compile([]);
  assertEquals(await Deno.readTextFile(`${seen}.ts`), commitModule(`${head}-dirty`));
  assertEquals(await Deno.readTextFile(`${root}/${COMMIT_MODULE}`), commitModule(undefined));

  // Not a git checkout: built unstamped.
  await Deno.remove(`${root}/.git`, { recursive: true });
  await compile([]);
  assertEquals(await Deno.readTextFile(`${seen}.ts`), commitModule(undefined));
});
