// A worker that can never boot is not silent: after the same failure three
// times in a row the log says so plainly, with the last lines of its stderr,
// and `arbiter ctl status` shows both. Its stderr still reaches the master's
// stderr unchanged (worker_output = "inherit"), or prefixed ("prefix").
import { ok as assert } from "node:assert/strict";
import { arbiterCommand, freePort, startArbiter } from "./_harness.ts";
import { tempDir } from "./_workers.ts";

const ERROR_LINE = "OSError: [Errno 9] Bad file descriptor";

async function cannotBoot(output: "inherit" | "prefix") {
  await using dir = await tempDir();
  const socket = `${dir.path}/ctl.sock`;
  const config = `${dir.path}/app.toml`;
  await Deno.writeTextFile(
    config,
    [
      `bind = "127.0.0.1:${freePort()}"`,
      `command = ["python3", "-c", "import sys; print('starting'); print('${ERROR_LINE}', file=sys.stderr); sys.exit(1)"]`,
      "workers = 1",
      // Readiness by READY=1, so "before ready" does not depend on how fast a loaded
      // machine starts Python (with ready = spawn it is a 1 s settle).
      `ready = "notify"`,
      `control_socket = "${socket}"`,
      `worker_output = "${output}"`,
    ].join("\n") + "\n",
  );
  await using master = startArbiter(["--config", config]);
  const [line] = await master.waitForEvent(
    "worker.cannot_boot",
    /worker 0 .*exit code 1 .* 3 tries.*/,
  );
  assert(line.includes(`The last lines of its stderr: "${ERROR_LINE}"`), line);
  // Passed through as well, by every try (kept or not): byte for byte, or prefixed.
  const expected = output === "inherit" ? ERROR_LINE : `[worker 0] ${ERROR_LINE}`;
  const raw = master.stderr().split("\n").filter((l) => l === expected).length;
  assert(raw >= 3, master.stderr());
  const out = await arbiterCommand(["ctl", "--socket", socket, "status"], {
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert(
    /failing {2}worker 0 cannot boot: exit code 1 before ready on each of the last \d+ tries/.test(
      text,
    ),
    text + new TextDecoder().decode(out.stderr),
  );
  assert(text.includes(`stderr: ${ERROR_LINE}\n`), text);
  assert(!text.includes("stderr: starting"), "stdout is not stderr: " + text);
}

Deno.test("a command that prints an error and exits 1 at once, every time: said in the log and in ctl status, with its stderr", async () => {
  await cannotBoot("inherit");
});

Deno.test("the same with worker_output = prefix: its lines are kept, and still prefixed on the way", async () => {
  await cannotBoot("prefix");
});
