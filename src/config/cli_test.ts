import { deepStrictEqual, ok } from "node:assert/strict";
import { assertConfigError } from "./_testing.ts";
import { helpText, parseCli } from "./cli.ts";
import { checkOptionValues } from "./cli_values.ts";

/** parseCli, then the option values checked as loadConfig checks them first. */
function checked(argv: string[]) {
  const request = parseCli(argv);
  if (request.kind === "run") checkOptionValues(request.overrides);
  return request;
}

const run = (overrides = {}, extra = {}) => ({
  kind: "run",
  configPath: undefined,
  command: undefined,
  checkConfig: false,
  overrides,
  ...extra,
});

Deno.test("parseCli() reads every option", () => {
  deepStrictEqual(
    parseCli([
      "-c",
      "app.toml",
      "-w",
      "4",
      "-b",
      "0.0.0.0:8000",
      "--bind=unix:app.sock",
      "-t",
      "0",
      "--graceful-timeout",
      "2.5",
      "--boot-timeout=10",
      "-p",
      "app.pid",
      "--log-level",
      "warn",
      "--log-format",
      "json",
      "--log-file",
      "app.log",
      "--ready",
      "notify",
      "--reload",
      "--check-config",
    ]),
    run({
      workers: 4,
      bind: ["0.0.0.0:8000", "unix:app.sock"],
      timeout: 0,
      graceful_timeout: 2.5,
      boot_timeout: 10,
      pidfile: "app.pid",
      log_level: "warn",
      log_format: "json",
      log_file: "app.log",
      ready: "notify",
      reload: true,
    }, { configPath: "app.toml", checkConfig: true }),
  );
});

Deno.test("parseCli() takes the worker command after --", () => {
  deepStrictEqual(
    parseCli(["-w", "4", "-b", "0.0.0.0:8000", "--", "node", "server.js"]),
    run({ workers: 4, bind: ["0.0.0.0:8000"] }, { command: ["node", "server.js"] }),
  );
  deepStrictEqual(parseCli(["--", "-w", "3"]), run({}, { command: ["-w", "3"] }));
  deepStrictEqual(parseCli(["-c", "app.toml", "--"]), run({}, { configPath: "app.toml" }));
});

Deno.test("parseCli() starts the worker command at the first non-option word", () => {
  deepStrictEqual(
    parseCli(["-w", "2", "python3", "app.py", "--port", "1", "-w", "9"]),
    run({ workers: 2 }, { command: ["python3", "app.py", "--port", "1", "-w", "9"] }),
  );
  deepStrictEqual(parseCli(["-w2", "./app"]), run({ workers: 2 }, { command: ["./app"] }));
});

Deno.test("parseCli() reads help and version", () => {
  deepStrictEqual(parseCli(["-h"]), { kind: "help" });
  deepStrictEqual(parseCli(["--help", "-w", "2"]), { kind: "help" });
  deepStrictEqual(parseCli(["-V"]), { kind: "version" });
  deepStrictEqual(parseCli(["-hw", "2"]), { kind: "help" });
  deepStrictEqual(parseCli(["ctl", "--help"]), { kind: "help" });
});

Deno.test("parseCli() and checkOptionValues() check numbers", () => {
  assertConfigError(
    () => checked(["--workers", "abc"]),
    '--workers: expected an integer from 1 to 10000, got "abc"',
  );
  assertConfigError(
    () => checked(["-w", "0"]),
    "--workers: expected an integer from 1 to 10000, got 0",
  );
  assertConfigError(() => checked(["-w", "1.5"]), "--workers:", "got 1.5");
  assertConfigError(() => checked(["-w", ""]), "--workers:", 'got ""');
  assertConfigError(
    () => checked(["--timeout", "-1"]),
    "--timeout:",
    "from 0 to 31536000",
    "got -1",
  );
  assertConfigError(() => checked(["--boot-timeout=1e3"]), "--boot-timeout:", 'got "1e3"');
  // The same upper bounds as the config file.
  assertConfigError(() => checked(["-w", "10001"]), "--workers:", "from 1 to 10000", "got 10001");
  assertConfigError(() => checked(["-t", "31536001"]), "--timeout:", "to 31536000", "got");
  assertConfigError(() => checked(["--graceful-timeout", "99999999999"]), "--graceful-timeout:");
  assertConfigError(() => checked(["--boot-timeout", "1" + "0".repeat(400)]), "--boot-timeout:");
});

Deno.test("parseCli() and checkOptionValues() check choices and paths", () => {
  assertConfigError(() => checked(["--log-level", "loud"]), "--log-level:", 'got "loud"');
  assertConfigError(() => checked(["--log-format", "xml"]), '"text", "json"', 'got "xml"');
  assertConfigError(() => checked(["--ready", "now"]), "--ready:", '"spawn", "notify"');
  assertConfigError(() => checked(["-p", ""]), "--pidfile: expected a path");
});

Deno.test("parseCli() rejects unknown options, pointing to --help", () => {
  assertConfigError(
    () => parseCli(["--wokers", "2"]),
    'unknown option "--wokers" (did you mean "--workers"?); see arbiter --help',
  );
  assertConfigError(() => parseCli(["-x"]), 'unknown option "-x"', "--help");
  assertConfigError(() => checked(["-wx", "1"]), "--workers:", 'got "x"');
  assertConfigError(() => parseCli(["-Vx"]), 'unknown option "-x"');
});

Deno.test("parseCli() rejects a missing value or a value on a flag", () => {
  assertConfigError(() => parseCli(["-w"]), "--workers: missing value");
  assertConfigError(() => parseCli(["--config"]), "--config: missing value");
  assertConfigError(() => parseCli(["--reload=yes"]), "--reload", "--help");
});

Deno.test("parseCli() reads ctl requests", () => {
  const ctl = (verb: string, extra = {}) => ({
    kind: "ctl",
    socket: undefined,
    configPath: undefined,
    verb,
    json: false,
    count: undefined,
    ...extra,
  });
  deepStrictEqual(parseCli(["ctl", "status"]), ctl("status"));
  deepStrictEqual(
    parseCli(["ctl", "--socket", "/run/a.sock", "status", "--json"]),
    ctl("status", { socket: "/run/a.sock", json: true }),
  );
  deepStrictEqual(parseCli(["ctl", "-c", "app.toml", "scale", "3"]), {
    ...ctl("scale", { configPath: "app.toml", count: 3 }),
  });
  // The top of the range `workers` shares.
  deepStrictEqual(parseCli(["ctl", "scale", "10000"]), ctl("scale", { count: 10000 }));
  for (const verb of ["reload", "stop", "quick-stop", "upgrade"]) {
    deepStrictEqual(parseCli(["ctl", verb]), ctl(verb));
  }
});

Deno.test("parseCli() rejects bad ctl requests", () => {
  assertConfigError(() => parseCli(["ctl"]), "ctl: missing request", "status, reload");
  assertConfigError(() => parseCli(["ctl", "stats"]), '"stats" (did you mean "status"?)');
  assertConfigError(() => parseCli(["ctl", "scale"]), "ctl scale:", "got nothing");
  assertConfigError(() => parseCli(["ctl", "scale", "0"]), "ctl scale:", 'got "0"');
  assertConfigError(() => parseCli(["ctl", "scale", "+0"]), "ctl scale:", 'got "+0"');
  assertConfigError(() => parseCli(["ctl", "scale", "-10001"]), "ctl scale:", "+N/-N");
  assertConfigError(() => parseCli(["ctl", "scale", "two"]), "ctl scale:", 'got "two"');
  assertConfigError(() => parseCli(["ctl", "scale", "10001"]), "from 1 to 10000", 'got "10001"');
  assertConfigError(() => parseCli(["ctl", "stop", "now"]), 'unexpected argument "now"');
  assertConfigError(() => parseCli(["ctl", "reload", "--json"]), "--json");
  assertConfigError(() => parseCli(["ctl", "--sock", "x", "status"]), 'unknown option "--sock"');
});

Deno.test("helpText() documents every option, ctl, signals and examples", () => {
  const text = helpText();
  for (
    const needle of [
      "arbiter [options] [--] [command [args...]]",
      "arbiter ctl",
      ...[
        "--config",
        "--workers",
        "--bind",
        "--timeout",
        "--graceful-timeout",
        "--boot-timeout",
        "--pidfile",
        "--log-level",
        "--log-format",
        "--log-file",
        "--ready",
        "--reload",
        "--check-config",
        "--help",
        "--version",
      ],
      ...["status [--json]", "reload", "scale N", "stop", "quick-stop", "upgrade"],
      ...["reload [--wait]", "--timeout S", "scale N | +N | -N", "restart ID", "signal SIG [ID]"],
      ...["logs [-f] [-n N] [ID]", "q or Ctrl-C", "3 when --wait timed out"],
      ...["HUP", "TERM", "INT, QUIT", "TTIN/TTOU", "USR1", "USR2", "WINCH"],
      "arbiter --config app.toml",
      "arbiter -w 4 -b 0.0.0.0:8000 -- node server.js",
    ]
  ) {
    ok(text.includes(needle), `help mentions ${needle}`);
  }
  for (const line of text.split("\n")) ok(line.length <= 80, `short line: ${line}`);
});

Deno.test("parseCli() reads verify requests", () => {
  const verify = (extra = {}) => ({
    kind: "verify",
    configPath: undefined,
    command: undefined,
    json: false,
    path: "/",
    reloads: 3,
    ...extra,
  });
  deepStrictEqual(parseCli(["verify", "-c", "app.toml"]), verify({ configPath: "app.toml" }));
  deepStrictEqual(
    parseCli(["verify", "--json", "--path", "/healthz", "--reloads", "1", "--", "node", "s.js"]),
    verify({ json: true, path: "/healthz", reloads: 1, command: ["node", "s.js"] }),
  );
  deepStrictEqual(
    parseCli(["verify", "python3", "app.py", "-w"]),
    verify({ command: ["python3", "app.py", "-w"] }),
  );
  deepStrictEqual(parseCli(["verify", "--help"]), { kind: "help" });
});

Deno.test("parseCli() rejects bad verify options", () => {
  assertConfigError(() => parseCli(["verify", "--reloads", "0"]), "--reloads", "1 to 20", '"0"');
  assertConfigError(() => parseCli(["verify", "--reloads", "2.5"]), "--reloads");
  assertConfigError(() => parseCli(["verify", "--path", "healthz"]), "--path", '"healthz"');
  assertConfigError(() => parseCli(["verify", "--path", "/a b"]), "--path");
  assertConfigError(() => parseCli(["verify", "-w", "2"]), 'unknown option "-w"');
});
