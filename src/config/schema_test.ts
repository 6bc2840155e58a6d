import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { CONFIG_KEYS, configJsonSchema, configSchema, HOOK_KEYS, parseUmask } from "./schema.ts";

const CONTRACT_KEYS = [
  "command",
  "workers",
  "bind",
  "backlog",
  "timeout",
  "graceful_timeout",
  "boot_timeout",
  "shutdown_delay",
  "quick_stop_signal",
  "ready",
  "pidfile",
  "env",
  "chdir",
  "user",
  "group",
  "umask",
  "control_socket",
  "runtime_dir",
  "metrics_bind",
  "worker_output",
  "worker_usr1",
  "log_level",
  "log_format",
  "log_file",
  "max_surge",
  "max_worker_lifetime",
  "max_worker_lifetime_jitter",
  // saturation (docs/saturation.md)
  "max_worker_memory",
  "max_worker_memory_window",
  "autoscale",
  "workers_min",
  "workers_max",
  "autoscale_interval",
  "autoscale_quiet_period",
  ...HOOK_KEYS,
  "hook_timeout",
  "reload",
  "reload_paths",
  "reload_extensions",
];

Deno.test("configSchema has exactly the keys of the contract's Configuration section", () => {
  deepStrictEqual([...CONFIG_KEYS].sort(), [...CONTRACT_KEYS].sort());
});

Deno.test("configJsonSchema() lists every key and rejects others", () => {
  const schema = configJsonSchema();
  const properties = schema.properties as Record<string, { description?: string }>;
  deepStrictEqual(Object.keys(properties).sort(), [...CONTRACT_KEYS].sort());
  strictEqual(schema.additionalProperties, false);
  strictEqual(schema.required, undefined, "no key is required in the file itself");
  for (const key of CONTRACT_KEYS) ok(properties[key].description, `${key} has a description`);
});

Deno.test("configSchema applies the static defaults of the contract's Configuration section", () => {
  deepStrictEqual(configSchema.parse({}), {
    workers: 1,
    backlog: 2048,
    timeout: 30,
    graceful_timeout: 30,
    boot_timeout: 30,
    shutdown_delay: 0,
    quick_stop_signal: "INT",
    ready: "spawn",
    env: {},
    worker_output: "inherit",
    worker_usr1: "send",
    log_level: "info",
    log_format: "text",
    max_worker_lifetime: 0,
    max_worker_lifetime_jitter: 0,
    max_worker_memory: 0,
    max_worker_memory_window: 10,
    autoscale: false,
    autoscale_interval: 1,
    autoscale_quiet_period: 30,
    hook_timeout: 30,
    reload: false,
    reload_paths: [],
    reload_extensions: [],
  });
});

Deno.test("configSchema takes user/group as name or id, and fractional seconds", () => {
  const v = configSchema.parse({ user: "www", group: 33, timeout: 0.5, log_level: "warn" });
  strictEqual(v.user, "www");
  strictEqual(v.group, 33);
  strictEqual(v.timeout, 0.5);
  strictEqual(v.log_level, "warn");
});

Deno.test("umask: an integer up to 0o777 or an octal string", () => {
  for (const [value, mask] of [[0o22, 0o22], ["0o022", 0o22], ["022", 0o22], ["0022", 0o22]]) {
    strictEqual(configSchema.safeParse({ umask: value }).success, true, String(value));
    strictEqual(parseUmask(value), mask);
  }
  strictEqual(parseUmask("0"), 0);
  for (const bad of [0o1000, -1, "22", "0o", "0999", "07777", "u=rwx"]) {
    strictEqual(configSchema.safeParse({ umask: bad }).success, false, String(bad));
  }
});

Deno.test("shutdown_delay and quick_stop_signal: bad values name what was expected", () => {
  const delay = configSchema.safeParse({ shutdown_delay: -1 });
  ok(!delay.success && delay.error.issues[0].message.includes("seconds from 0 to"));
  ok(!configSchema.safeParse({ shutdown_delay: 365 * 86400 + 1 }).success);
  const signal = configSchema.safeParse({ quick_stop_signal: "KILL" });
  ok(!signal.success && signal.error.issues[0].message.includes('"INT", "QUIT", "TERM"'));
  strictEqual(configSchema.parse({ quick_stop_signal: "QUIT" }).quick_stop_signal, "QUIT");
});

Deno.test("every path key refuses a NUL byte, naming what was expected", () => {
  const keys = ["pidfile", "chdir", "control_socket", "runtime_dir", "log_file"] as const;
  for (const key of keys) {
    const result = configSchema.safeParse({ [key]: "/tmp/a\0b" });
    ok(!result.success, key);
    strictEqual(result.error.issues[0].message, "expected a path without NUL bytes", key);
    strictEqual(result.error.issues[0].path.join("."), key);
  }
  const paths = configSchema.safeParse({ reload_paths: ["/etc/app", "/tmp/\0"] });
  ok(!paths.success && paths.error.issues[0].path.join(".") === "reload_paths.1");
  strictEqual(configSchema.parse({ pidfile: "/run/app.pid" }).pidfile, "/run/app.pid");
});
