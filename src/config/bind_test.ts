import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { assertConfigError } from "./_testing.ts";
import { parseBind, parseHostPort, UNIX_PATH_MAX } from "./bind.ts";

Deno.test("parseBind() reads HOST:PORT with a hostname or IPv4 address", () => {
  deepStrictEqual(parseBind("127.0.0.1:8000", "/"), {
    kind: "tcp",
    hostname: "127.0.0.1",
    port: 8000,
    text: "127.0.0.1:8000",
  });
  deepStrictEqual(parseBind("localhost:0", "/"), {
    kind: "tcp",
    hostname: "localhost",
    port: 0,
    text: "localhost:0",
  });
  strictEqual(parseBind("my-host.example.com:65535", "/").text, "my-host.example.com:65535");
});

Deno.test("parseBind() reads [V6]:PORT and stores the host without brackets", () => {
  deepStrictEqual(parseBind("[::1]:8080", "/"), {
    kind: "tcp",
    hostname: "::1",
    port: 8080,
    text: "[::1]:8080",
  });
  deepStrictEqual(parseBind("[::]:80", "/"), {
    kind: "tcp",
    hostname: "::",
    port: 80,
    text: "[::]:80",
  });
});

Deno.test("parseBind() makes text canonical", () => {
  strictEqual(parseBind("localhost:0080", "/").text, "localhost:80");
  strictEqual(parseBind("unix:run/app.sock", "/srv").text, "unix:/srv/run/app.sock");
  strictEqual(parseBind("unix:///tmp/a.sock", "/srv").text, "unix:/tmp/a.sock");
});

Deno.test("parseBind() reads unix:PATH, resolving a relative path against cwd", () => {
  deepStrictEqual(parseBind("unix:app.sock", "/srv/app"), {
    kind: "unix",
    path: "/srv/app/app.sock",
    text: "unix:/srv/app/app.sock",
  });
  strictEqual(parseBind("unix:/run/a.sock", "/srv").text, "unix:/run/a.sock");
});

Deno.test("parseBind() rejects an empty or too long unix path", () => {
  assertConfigError(() => parseBind("unix:", "/"), "bind:", '"unix:"', "empty socket path");
  assertConfigError(
    () => parseBind(`unix:/${"a".repeat(UNIX_PATH_MAX)}`, "/"),
    "bind:",
    `at most ${UNIX_PATH_MAX} bytes`,
  );
});

Deno.test("parseBind() reads fd://N with N ≥ 3", () => {
  deepStrictEqual(parseBind("fd://3", "/"), { kind: "fd", fd: 3, text: "fd://3" });
  assertConfigError(() => parseBind("fd://2", "/"), "bind:", '"fd://2"', "N an integer from 3");
  // fds are C ints: a bigger N would only fail later, inside an FFI call.
  assertConfigError(() => parseBind("fd://2147483648", "/"), '"fd://2147483648"', "to 2147483647");
  assertConfigError(() => parseBind("fd://x", "/"), '"fd://x"');
  assertConfigError(() => parseBind("fd://", "/"), '"fd://"');
});

Deno.test("parseBind() names the bad value and the accepted forms", () => {
  const error = assertConfigError(() => parseBind("foo", "/"));
  strictEqual(
    error.message,
    'bind: "foo" is not a listen address; expected HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N',
  );
  for (
    const bad of [
      "",
      "localhost:",
      ":8000",
      "localhost:65536",
      "localhost:80x",
      "localhost:-1",
      "999.1.1.1:80",
      "a b:80",
      "under_score:80",
      "[::1]80",
      "[nothere]:80",
      "http://localhost:80",
    ]
  ) {
    assertConfigError(() => parseBind(bad, "/"), "bind:", JSON.stringify(bad), "HOST:PORT");
  }
  assertConfigError(() => parseBind("::1:80", "/"), "needs brackets");
  assertConfigError(() => parseBind("x:99999", "/", "--bind"), "--bind:", '"99999"', "0…65535");
});

Deno.test("parseHostPort() takes TCP addresses only", () => {
  strictEqual(parseHostPort("0.0.0.0:9100", "metrics_bind").port, 9100);
  strictEqual(parseHostPort("[::1]:9100", "metrics_bind").text, "[::1]:9100");
  assertConfigError(
    () => parseHostPort("unix:/tmp/m.sock", "metrics_bind"),
    "metrics_bind:",
    "not a TCP address",
  );
});
