import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { ArbiterError, ExitCode } from "../errors.ts";
import * as libc from "../sys/libc.ts";
import { MAX_BODY_BYTES } from "./api.ts";
import { FakeHandler, makeStaleSocket, rejectsWith, SAMPLE_STATUS, unixFetch } from "./_testing.ts";
import { startControlServer } from "./server.ts";

async function withServer(
  fn: (path: string, handler: FakeHandler, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "arbiter-ctl-" });
  const path = `${dir}/ctl.sock`;
  const handler = new FakeHandler();
  const server = await startControlServer(path, handler);
  try {
    await fn(path, handler, dir);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

const post = (body?: string): RequestInit => ({ method: "POST", body });

Deno.test("control socket: created with mode 0600 even under umask 000", async () => {
  const previous = libc.umask(0);
  try {
    await withServer((path) => {
      assertEquals(Deno.statSync(path).mode! & 0o777, 0o600);
      assert(Deno.lstatSync(path).isSocket);
      return Promise.resolve();
    });
  } finally {
    libc.umask(previous);
  }
  // The process umask is restored after the socket was created.
  const now = libc.umask(previous);
  assertEquals(now, previous);
});

Deno.test("control socket: GET /v1/status answers the handler's report", async () => {
  await withServer(async (path) => {
    const res = await unixFetch(path, "/v1/status");
    assertEquals(res.status, 200);
    assertEquals(res.headers.get("content-type"), "application/json");
    assertEquals(res.json(), SAMPLE_STATUS);
  });
});

Deno.test("control socket: every action route reaches the handler", async () => {
  await withServer(async (path, handler) => {
    const cases: [string, string | undefined, unknown][] = [
      ["/v1/reload", undefined, { type: "reload" }],
      ["/v1/reload", "{}", { type: "reload" }],
      ["/v1/scale", '{"workers": 3}', { type: "scale", workers: 3 }],
      ["/v1/scale", '{"workers": 10000}', { type: "scale", workers: 10000 }],
      ["/v1/stop", undefined, { type: "stop", quick: false }],
      ["/v1/stop", '{"quick": false}', { type: "stop", quick: false }],
      ["/v1/stop", '{"quick": true}', { type: "stop", quick: true }],
      ["/v1/upgrade", "", { type: "upgrade" }],
    ];
    for (const [route, body, action] of cases) {
      const res = await unixFetch(path, route, post(body));
      assertEquals(res.status, 200, `${route} ${body}: ${res.body}`);
      assertEquals(res.json(), { ok: true, message: `done: ${JSON.stringify(action)}` });
    }
    assertEquals(handler.actions, cases.map(([, , action]) => action));
  });
});

Deno.test("control socket: bad requests get a 4xx JSON error and the server keeps serving", async () => {
  await withServer(async (path, handler) => {
    const cases: [string, RequestInit, number, RegExp][] = [
      ["/v1/scale", post("{workers: 3"), 400, /not valid JSON/],
      ["/v1/scale", post("[3]"), 400, /must be a JSON object, got an array/],
      ["/v1/scale", post("3"), 400, /must be a JSON object, got a number/],
      ["/v1/scale", post("null"), 400, /must be a JSON object, got null/],
      ["/v1/scale", post("{}"), 400, /missing field "workers"/],
      ["/v1/scale", post('{"workers": 0}'), 400, /integer from 1 to 10000, got 0/],
      ["/v1/scale", post('{"workers": -2}'), 400, /got -2/],
      ["/v1/scale", post('{"workers": 1.5}'), 400, /got 1.5/],
      ["/v1/scale", post('{"workers": "3"}'), 400, /got "3"/],
      ["/v1/scale", post('{"workers": 10001}'), 400, /got 10001/],
      ["/v1/scale", post('{"workers": 1e400}'), 400, /from 1 to 10000, got Infinity \(a number/],
      ["/v1/scale", post('{"workers": 2, "force": true}'), 400, /unknown field "force"/],
      ["/v1/stop", post('{"quick": "yes"}'), 400, /"quick": expected true or false/],
      ["/v1/reload", post('{"now": true}'), 400, /unknown field "now"; expected no fields/],
      ["/v1/reload", post(new TextDecoder("latin1").decode(new Uint8Array([0xff]))), 400, /./],
      ["/v1/reload", post("x".repeat(MAX_BODY_BYTES + 1)), 413, /larger than 65536 bytes/],
      ["/v1/nope", {}, 404, /no such request: GET \/v1\/nope; this master serves GET \/v1\/status/],
      ["/status", {}, 404, /no such request/],
      ["/v2/status", {}, 404, /no such request/],
      ["/v1/reload", {}, 405, /\/v1\/reload expects POST, not GET/],
      ["/v1/status", post(), 405, /\/v1\/status expects GET, not POST/],
      ["/v1/stop", { method: "DELETE" }, 405, /expects POST, not DELETE/],
    ];
    for (const [route, init, status, pattern] of cases) {
      const res = await unixFetch(path, route, init);
      assertEquals(res.status, status, `${route} ${init.body}: ${res.body}`);
      assertEquals(res.headers.get("content-type"), "application/json");
      const body = res.json() as { error: string };
      assertEquals(Object.keys(body), ["error"]);
      assertMatch(body.error, pattern);
    }
    assertEquals((await unixFetch(path, "/v1/reload")).headers.get("allow"), "POST");
    assertEquals(handler.actions, [], "no bad request reached the handler");
    assertEquals((await unixFetch(path, "/v1/status")).status, 200);
  });
});

Deno.test("control socket: invalid UTF-8 in the body is a 400", async () => {
  await withServer(async (path) => {
    const res = await unixFetch(path, "/v1/scale", {
      method: "POST",
      body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
    });
    assertEquals(res.status, 400);
    assertMatch((res.json() as { error: string }).error, /not valid UTF-8/);
  });
});

Deno.test("control socket: a refusal is a 409, a failing handler a 500", async () => {
  await withServer(async (path, handler) => {
    handler.answer = () => ({ ok: false, error: "the master is stopping" });
    let res = await unixFetch(path, "/v1/reload", post());
    assertEquals(res.status, 409);
    assertEquals(res.json(), { error: "the master is stopping" });

    handler.answer = () => {
      throw new Error("boom");
    };
    res = await unixFetch(path, "/v1/scale", post('{"workers": 2}'));
    assertEquals(res.status, 500);
    assertEquals(res.json(), { error: "internal error: boom" });

    handler.report = undefined as never;
    handler.status = () => {
      throw new Error("no snapshot");
    };
    res = await unixFetch(path, "/v1/status");
    assertEquals(res.status, 500);
    assertEquals(res.json(), { error: "internal error: no snapshot" });

    handler.status = () => SAMPLE_STATUS;
    assertEquals((await unixFetch(path, "/v1/status")).status, 200);
  });
});

Deno.test("control socket: garbage on the wire does not stop the server", async () => {
  await withServer(async (path) => {
    for (const junk of ["HELLO\r\n\r\n", "GET /v1/status HTTP/9.9\r\n\r\n", "\x00\x01\x02", ""]) {
      const conn = await Deno.connect({ transport: "unix", path });
      await conn.write(new TextEncoder().encode(junk));
      const buf = new Uint8Array(4096);
      // Either an error answer or a closed connection; never a hang or a crash.
      const timer = setTimeout(() => conn.close(), 500);
      try {
        const n = await conn.read(buf);
        if (n !== null) {
          assertMatch(new TextDecoder().decode(buf.subarray(0, n)), /^HTTP\/1\.1 [45]/);
        }
      } catch { /* closed */ }
      clearTimeout(timer);
      try {
        conn.close();
      } catch { /* closed by the timer */ }
    }
    assertEquals((await unixFetch(path, "/v1/status")).status, 200);
  });
});

Deno.test("control socket: close removes the socket file and is idempotent", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/ctl.sock`;
  const server = await startControlServer(path, new FakeHandler());
  assert(exists(path));
  await server.close();
  await server.close();
  assert(!exists(path));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("control socket: a stale socket is replaced", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/ctl.sock`;
  await makeStaleSocket(path);
  assert(Deno.lstatSync(path).isSocket);
  assertEquals(Deno.statSync(path).mode! & 0o777, 0o755, "python3 made it under umask 022");
  const server = await startControlServer(path, new FakeHandler());
  try {
    assertEquals(Deno.statSync(path).mode! & 0o777, 0o600);
    assertEquals((await unixFetch(path, "/v1/status")).status, 200);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("control socket: a socket another process serves is refused, and keeps working", async () => {
  await withServer(async (path) => {
    const error = await rejectsWith(
      () => startControlServer(path, new FakeHandler()),
      ArbiterError,
      "is in use",
    );
    assertEquals(error.exitCode, ExitCode.Runtime);
    assertEquals((await unixFetch(path, "/v1/status")).status, 200);
  });
});

Deno.test("control socket: a regular file, a directory or a symlink at the path is refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/file.sock`;
    await Deno.writeTextFile(file, "precious");
    let error = await rejectsWith(
      () => startControlServer(file, new FakeHandler()),
      ArbiterError,
      `control_socket: ${file} exists and is not a socket; refusing to replace it`,
    );
    assertEquals(error.exitCode, ExitCode.Runtime);
    assertEquals(await Deno.readTextFile(file), "precious");

    await Deno.mkdir(`${dir}/sub.sock`);
    await rejectsWith(
      () => startControlServer(`${dir}/sub.sock`, new FakeHandler()),
      ArbiterError,
      "is a directory",
    );

    // A symlink to a stale socket: following it would remove the target.
    await makeStaleSocket(`${dir}/target.sock`);
    await Deno.symlink(`${dir}/target.sock`, `${dir}/link.sock`);
    error = await rejectsWith(
      () => startControlServer(`${dir}/link.sock`, new FakeHandler()),
      ArbiterError,
      "is a symbolic link",
    );
    assertEquals(error.exitCode, ExitCode.Runtime);
    assert(Deno.lstatSync(`${dir}/link.sock`).isSymlink);
    assert(Deno.lstatSync(`${dir}/target.sock`).isSocket);

    // A dangling symlink too.
    await Deno.symlink(`${dir}/nowhere`, `${dir}/dangling.sock`);
    await rejectsWith(
      () => startControlServer(`${dir}/dangling.sock`, new FakeHandler()),
      ArbiterError,
      "is a symbolic link",
    );
    assert(!exists(`${dir}/nowhere`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("control socket: a missing directory is a clear error", async () => {
  const error = await rejectsWith(
    () => startControlServer("/nonexistent-arbiter-dir/ctl.sock", new FakeHandler()),
    ArbiterError,
    "control_socket: cannot create /nonexistent-arbiter-dir/ctl.sock",
  );
  assertEquals(error.exitCode, ExitCode.Runtime);
});
