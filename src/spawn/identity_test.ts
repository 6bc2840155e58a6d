import { deepStrictEqual, ok as assert, strictEqual } from "node:assert/strict";
import { assertConfigError } from "../config/_testing.ts";
import { identityProblem, resolveIdentity } from "./identity.ts";

/** A uid and gid no test machine has in /etc/passwd or /etc/group. */
const UNLISTED = "54321";

Deno.test("resolveIdentity: names and listed ids resolve; a user gets its primary group", () => {
  deepStrictEqual(resolveIdentity(), {});
  deepStrictEqual(resolveIdentity("root"), { uid: 0, gid: 0 });
  deepStrictEqual(resolveIdentity("0"), { uid: 0, gid: 0 });
  deepStrictEqual(resolveIdentity(undefined, "root"), { gid: 0 });
  deepStrictEqual(resolveIdentity("root", UNLISTED), { uid: 0, gid: 54321 });
});

Deno.test("resolveIdentity: a numeric user without a passwd entry needs group (never gid 0)", () => {
  assertConfigError(
    () => resolveIdentity(UNLISTED),
    `user: uid ${UNLISTED} has no entry in /etc/passwd`,
    "set `group` as well",
  );
  deepStrictEqual(resolveIdentity(UNLISTED, UNLISTED), { uid: 54321, gid: 54321 });
});

Deno.test("resolveIdentity: unknown names and ids out of range name the key", () => {
  assertConfigError(
    () => resolveIdentity("no-such-user-x"),
    'user: no user named "no-such-user-x"',
  );
  assertConfigError(() => resolveIdentity("root", "no-such-group-x"), "group: no group named");
  assertConfigError(() => resolveIdentity("4294967295", "0"), "user: expected a uid from 0 to");
  assertConfigError(() => resolveIdentity("0", "99999999999"), "group: expected a gid from 0 to");
});

Deno.test("identityProblem: switching identity needs CAP_SETGID, and CAP_SETUID for another uid", () => {
  const all = (1n << 8n) - 1n;
  const setgid = 1n << 6n;
  strictEqual(identityProblem({}, 0n, 1000), undefined);
  strictEqual(identityProblem({ uid: 1001, gid: 1001 }, all, 1000), undefined);
  strictEqual(identityProblem({ uid: 1000, gid: 1001 }, setgid, 1000), undefined);
  const both = identityProblem({ uid: 1001, gid: 1001 }, 0n, 1000);
  assert(both?.startsWith("user: ") && both.includes("CAP_SETGID and CAP_SETUID"), both);
  const group = identityProblem({ gid: 1001 }, 0n, 1000);
  assert(group?.startsWith("group: ") && group.includes("uid 1000"), group);
});
