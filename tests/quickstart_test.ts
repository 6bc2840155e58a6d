// The README's quick start, run as a newcomer would: from a clean clone of
// the committed tree, with the bootstrap script installing its own Deno.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { freePort, httpRequest, REPO_ROOT, startArbiter, waitFor } from "./_harness.ts";
import { generationReady, tempDir } from "./_workers.ts";

const isCheckout = await Deno.lstat(`${REPO_ROOT}/.git`).then(() => true, () => false);

Deno.test({
  name: "README quick start from a clean clone: deno task start serves, HUP reloads, TERM stops",
  ignore: !isCheckout,
  async fn() {
    await using dir = await tempDir();
    const clone = `${dir.path}/arbiter`;
    const git = await new Deno.Command("git", {
      args: ["clone", "--quiet", REPO_ROOT, clone],
      stdout: "null",
    }).output();
    assert(git.success, new TextDecoder().decode(git.stderr));
    const readme = await Deno.readTextFile(`${clone}/README.md`);
    assert(readme.includes("./scripts/deno task start"), "the README's first command");
    assert(readme.includes("./scripts/deno task test"), "the README's second command");
    const port = freePort();
    // The README's command, with the example's port swapped for a free one.
    await using master = startArbiter(["task", "start", "-b", `127.0.0.1:${port}`], {
      cmd: [`${clone}/scripts/deno`],
      cwd: clone,
    });
    await master.waitForLog(generationReady(1), { timeoutMs: 60_000 });
    const hello = await httpRequest(`http://127.0.0.1:${port}/`);
    assertEquals(hello.status, 200);
    assert(/^hello from worker \d \(pid \d+\)/.test(hello.text), hello.text);
    const pid = Number((await Deno.readTextFile(`${clone}/examples/arbiter.pid`)).trim());
    Deno.kill(pid, "SIGHUP");
    await master.waitForLog(generationReady(2));
    Deno.kill(pid, "SIGTERM");
    await waitFor(() => master.exited, { timeoutMs: 20_000, message: "the example to stop" });
    assertEquals((await master.status).code, 0);
  },
});
