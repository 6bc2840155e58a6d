import { deepStrictEqual, throws } from "node:assert/strict";
import { ConfigError } from "../errors.ts";
import { MAX_INHERITED, takeInheritedSockets } from "./inherited.ts";

/** An environment of our own, so the test never touches the real one. */
function fakeEnv(vars: Record<string, string>): Deno.Env {
  const map = new Map(Object.entries(vars));
  return {
    get: (key: string) => map.get(key),
    set: (key: string, value: string) => void map.set(key, value),
    delete: (key: string) => void map.delete(key),
    has: (key: string) => map.has(key),
    toObject: () => Object.fromEntries(map),
  };
}

Deno.test("takeInheritedSockets: names by fd, only for our pid; the variables are removed", () => {
  const env = fakeEnv({ LISTEN_FDS: "2", LISTEN_PID: String(Deno.pid), LISTEN_FDNAMES: "web" });
  deepStrictEqual([...takeInheritedSockets(env)], [[3, "web"], [4, "fd4"]]);
  deepStrictEqual(env.toObject(), {});
  const other = fakeEnv({ LISTEN_FDS: "2", LISTEN_PID: "1" });
  deepStrictEqual(takeInheritedSockets(other).size, 0);
});

Deno.test("takeInheritedSockets: a huge LISTEN_FDS is refused, not looped over", () => {
  const env = fakeEnv({ LISTEN_FDS: "1000000000", LISTEN_PID: String(Deno.pid) });
  throws(
    () => takeInheritedSockets(env),
    (e) => e instanceof ConfigError && /LISTEN_FDS/.test(e.message),
  );
  deepStrictEqual(env.toObject(), {}, "removed even so");
  const top = fakeEnv({ LISTEN_FDS: String(MAX_INHERITED), LISTEN_PID: String(Deno.pid) });
  deepStrictEqual(takeInheritedSockets(top).size, MAX_INHERITED);
});
