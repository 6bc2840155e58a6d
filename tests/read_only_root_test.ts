// A read-only root filesystem is a normal place to run: the master writes
// only into the directories its config names, and refuses at once, naming the
// key, when one of them cannot be written. Each test runs the real master in
// a private mount namespace (`unshare -m`) where the directories are mounted
// read-only, as a container's `readOnlyRootFilesystem` does.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { arbiterArgv, arbiterCommand, freePort, startArbiter, waitForHttp } from "./_harness.ts";
import { generationReady, PY_WORKER, tempDir, which } from "./_workers.ts";

const canUnshare = Deno.uid() === 0 && which("unshare") !== undefined &&
  (await new Deno.Command("unshare", { args: ["-m", "true"], stderr: "null" }).output()).success;
const skip = canUnshare ? "" : "SKIPPED (needs root and unshare -m for read-only mounts): ";

/**
 * The argv that runs arbiter in a new mount namespace where /tmp is
 * read-only (so the temp dir cannot be written) and each of `readOnly` is
 * too, with an empty writable tmpfs at `writable` if given.
 */
function inReadOnlyMounts(readOnly: string[], writable?: string): string[] {
  const script = [
    ...["/tmp", ...readOnly].map((d) => `mount --bind -o ro '${d}' '${d}'`),
    ...(writable ? [`mount -t tmpfs -o size=1m,mode=0755 tmpfs '${writable}'`] : []),
    'exec "$@"',
  ].join(" && ");
  return ["unshare", "-m", "sh", "-c", script, "sh", ...arbiterArgv()];
}

Deno.test({
  name:
    `${skip}read-only directories: --check-config and a start exit 2 naming each key, nothing bound`,
  ignore: !canUnshare,
  fn: async () => {
    await using dir = await tempDir();
    const ro = `${dir.path}/ro`;
    await Deno.mkdir(ro);
    const port = freePort();
    await Deno.writeTextFile(
      `${dir.path}/app.toml`,
      [
        `command = ${JSON.stringify(PY_WORKER)}`,
        `bind = ["127.0.0.1:${port}", "unix:${ro}/app.sock"]`,
        `control_socket = "${ro}/ctl.sock"`,
        `pidfile = "${ro}/arbiter.pid"`,
        `log_file = "${ro}/arbiter.log"`,
        `runtime_dir = "${ro}"`,
      ].join("\n") + "\n",
    );
    for (const args of [["--check-config"], []]) {
      await using master = startArbiter(["-c", `${dir.path}/app.toml`, ...args], {
        cmd: inReadOnlyMounts([ro]),
      });
      const { code } = await master.waitExit(30_000);
      const stderr = master.stderr();
      assertEquals(code, 2, stderr);
      for (const key of ["control_socket", "bind", "pidfile", "log_file", "runtime_dir"]) {
        assert(
          new RegExp(`^(arbiter: )?${key}: .*${ro}.* read-only file system`, "m").test(stderr),
          `${key} named in:\n${stderr}`,
        );
      }
      assert(!stderr.includes("    at "), `a message, not a stack trace:\n${stderr}`);
      Deno.listen({ hostname: "127.0.0.1", port }).close(); // never bound
    }
    assertEquals([...Deno.readDirSync(ro)], [], "nothing written");
  },
});

Deno.test({
  name:
    `${skip}read-only root, no writable temp dir: the master serves from the control socket's directory`,
  ignore: !canUnshare,
  fn: async () => {
    await using dir = await tempDir();
    const run = `${dir.path}/run`; // becomes the only writable place
    await Deno.mkdir(run);
    const port = freePort();
    await Deno.writeTextFile(
      `${dir.path}/app.toml`,
      [
        `command = ${JSON.stringify(PY_WORKER)}`,
        `workers = 2`,
        `bind = "127.0.0.1:${port}"`,
        `ready = "notify"`,
        `control_socket = "${run}/ctl.sock"`,
        `pidfile = "${run}/arbiter.pid"`,
      ].join("\n") + "\n",
    );
    await using master = startArbiter(["-c", `${dir.path}/app.toml`], {
      cmd: inReadOnlyMounts([dir.path], run),
      env: { NOTIFY_READY: "1", TMPDIR: "", XDG_RUNTIME_DIR: "" },
    });
    await master.waitForLog(generationReady(1), { timeoutMs: 30_000 });
    await waitForHttp(`http://127.0.0.1:${port}/`);
    // The namespace's mounts are visible through the master's own root.
    const seen = `/proc/${master.pid}/root${run}`;
    const names = [...Deno.readDirSync(seen)].map((e) => e.name).sort();
    assert(names.some((n) => n.startsWith("arbiter-")), `notify directory in ${run}: ${names}`);
    const status = await arbiterCommand(["ctl", "--socket", `${seen}/ctl.sock`, "status"], {
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(status.code, 0, new TextDecoder().decode(status.stderr));
    master.signal("SIGTERM");
    assertEquals((await master.waitExit(30_000)).code, 0, master.stderr());
    assert(!master.stderr().includes("internal error"), master.stderr());
  },
});
