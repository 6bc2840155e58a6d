/**
 * The hub directory rules: only a directory this user made as a hub passes
 * checkHubDir, and removeHubDir removes nothing but the hub's own sockets.
 */
import { ok, strictEqual } from "node:assert/strict";
import { tmpdir } from "node:os";
import { checkHubDir, makeHubDir, removeHubDir } from "./dir.ts";

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dir-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("a hub directory passes; removeHubDir removes its sockets and itself", async () => {
  const dir = await makeHubDir(tmpdir());
  strictEqual(checkHubDir(dir), undefined);
  // Kept open while removing: Deno unlinks a unix socket's path when it closes it.
  const sock = Deno.listen({ transport: "unix", path: `${dir}/3.sock` });
  strictEqual(removeHubDir(dir), undefined);
  sock.close();
  strictEqual(await Deno.lstat(dir).catch(() => undefined), undefined);
  strictEqual(removeHubDir(dir), undefined, "already gone is fine");
});

Deno.test("checkHubDir refuses paths the master did not make", async () => {
  await withTemp(async (base) => {
    const plain = `${base}/data`;
    await Deno.mkdir(plain);
    ok(checkHubDir(plain)?.includes("not named arbiter-"));
    const wrongMode = `${base}/arbiter-a`;
    await Deno.mkdir(wrongMode, { mode: 0o755 });
    await Deno.chmod(wrongMode, 0o755);
    ok(checkHubDir(wrongMode)?.includes("mode 755"));
    const link = `${base}/arbiter-link`;
    const target = `${base}/arbiter-target`;
    await Deno.mkdir(target);
    await Deno.chmod(target, 0o711);
    await Deno.symlink(target, link);
    ok(checkHubDir(link)?.includes("not a directory"), "a symlink is not followed");
    ok(checkHubDir(`${base}/../${base.split("/").pop()}/arbiter-target`)?.includes("normalised"));
    ok(checkHubDir("relative/arbiter-x")?.includes("absolute"));
    ok(checkHubDir(42)?.includes("absolute"));
    ok(checkHubDir("/")?.includes("not named"));
    strictEqual(checkHubDir(target), undefined);
  });
});

Deno.test("removeHubDir leaves anything that is not the hub's own socket", async () => {
  await withTemp(async (base) => {
    const hub = `${base}/arbiter-x`;
    await Deno.mkdir(`${hub}/sub`, { recursive: true });
    await Deno.writeTextFile(`${hub}/1.sock`, "regular file");
    await Deno.writeTextFile(`${hub}/other`, "x");
    // Kept open while removing: Deno unlinks a unix socket's path when it closes it.
    const sock = Deno.listen({ transport: "unix", path: `${hub}/2.stream` });
    await Deno.chmod(hub, 0o711);
    ok(removeHubDir(hub)?.includes("arbiter-x"), "rmdir of a non-empty directory fails");
    strictEqual(await Deno.lstat(`${hub}/2.stream`).catch(() => undefined), undefined);
    ok((await Deno.lstat(`${hub}/1.sock`)).isFile);
    ok((await Deno.lstat(`${hub}/other`)).isFile);
    ok((await Deno.lstat(`${hub}/sub`)).isDirectory);
    // A refused path is not touched at all.
    const plain = `${base}/plain`;
    await Deno.mkdir(plain);
    const s2 = Deno.listen({ transport: "unix", path: `${plain}/1.sock` });
    ok(removeHubDir(plain) !== undefined);
    ok((await Deno.lstat(`${plain}/1.sock`)) !== undefined);
    s2.close();
    sock.close();
  });
});
