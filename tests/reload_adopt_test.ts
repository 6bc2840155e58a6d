// A reload's master-level settings (log file, pidfile) belong to the
// generation that serves: an abandoned reload must leave the old ones.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { freePort, startArbiter, waitFor } from "./_harness.ts";
import { generationReady, PY_WORKER, tempDir } from "./_workers.ts";

function toml(port: number, extra: string[]): string {
  const command = JSON.stringify(PY_WORKER);
  return [
    `bind = "127.0.0.1:${port}"`,
    `command = ${command}`,
    `workers = 2`,
    `ready = "notify"`,
    ...extra,
  ].join("\n") + "\n";
}

async function readOr(path: string): Promise<string | undefined> {
  return await Deno.readTextFile(path).catch(() => undefined);
}

Deno.test("an abandoned reload keeps the serving generation's log file and pidfile", async () => {
  await using dir = await tempDir();
  const port = freePort();
  const config = `${dir.path}/app.toml`;
  const [oldPid, newPid, newLog] = ["old.pid", "new.pid", "new.log"].map((f) => `${dir.path}/${f}`);
  await Deno.writeTextFile(
    config,
    toml(port, [`pidfile = "${oldPid}"`, "[env]", `NOTIFY_READY = "1"`]),
  );
  await using master = startArbiter(["--config", config]);
  await master.waitForLog(generationReady(1));
  await Deno.writeTextFile(
    config,
    toml(port, [
      `pidfile = "${newPid}"`,
      `log_file = "${newLog}"`,
      "[env]",
      `EXIT_AT_BOOT = "1"`,
    ]),
  );
  const at = master.logOffset();
  master.signal("SIGHUP");
  await waitFor(async () => {
    const log = `${master.stderr().slice(at)}${(await readOr(newLog)) ?? ""}`;
    return /reload abandoned/.test(log);
  }, { timeoutMs: 20_000, message: "the reload to be abandoned" });
  await waitFor(async () => (await readOr(oldPid))?.trim() === String(master.pid), {
    message: "the old pidfile to name the master again",
  });
  assertEquals(await readOr(newPid), undefined, "the abandoned config's pidfile is gone");
  // Later lines go where the serving config says: stderr, not the new log file.
  const after = master.logOffset();
  master.signal("SIGTTIN");
  await master.waitForEvent("scale.changed", "SIGTTIN: workers 2 -> 3", { after });
  assert(!((await readOr(newLog)) ?? "").includes("SIGTTIN"));
});
