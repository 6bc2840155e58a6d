/**
 * Turns zod issues into plain "expected …, got …" sentences tied to a key
 * path. The schema gives each check its own "expected …" message; this
 * module adds the offending value, names unknown keys (with a suggestion)
 * and looks inside unions for the branch the value was meant for.
 *
 * @module
 */

import type { z } from "zod";
import { showValue, suggest } from "./_format.ts";

/** One problem with one value. */
export interface Problem {
  /** Key path of the value, e.g. `["env", "FOO"]` or `["on_reload", 1]`. */
  path: PropertyKey[];
  /** What is wrong, e.g. `expected an integer ≥ 1, got 0`. */
  text: string;
}

/**
 * Describe every issue of a failed parse of `input`.
 *
 * @param issues The issues of a zod parse error.
 * @param input The value that was parsed (to show the offending values).
 * @param knownKeys The keys the object accepts, for "did you mean" hints.
 */
export function describeIssues(
  issues: readonly z.core.$ZodIssue[],
  input: unknown,
  knownKeys: readonly string[] = [],
): Problem[] {
  const seen = new Set<string>();
  return issues.flatMap((issue) => describe(issue, [], input, knownKeys)).filter((problem) => {
    // Several checks of one value may fail with the same message (a regex
    // and a refinement); say it once.
    const id = JSON.stringify([problem.path.map(String), problem.text]);
    return seen.has(id) ? false : (seen.add(id), true);
  });
}

function describe(
  issue: z.core.$ZodIssue,
  base: PropertyKey[],
  input: unknown,
  knownKeys: readonly string[],
): Problem[] {
  const path = [...base, ...issue.path];
  switch (issue.code) {
    case "unrecognized_keys":
      return issue.keys.map((key) => {
        const near = suggest(key, knownKeys);
        const hint = near === undefined ? "" : ` (did you mean "${near}"?)`;
        return { path, text: `unknown key ${JSON.stringify(key)}${hint}` };
      });
    case "invalid_union": {
      // A value of the right type that fails deeper (an array with one bad
      // element) is reported from the branch it was meant for.
      const meant = issue.errors.filter((branch) =>
        !branch.some((sub) => sub.code === "invalid_type" && sub.path.length === 0)
      );
      if (meant.length === 1) {
        return meant[0].flatMap((sub) => describe(sub, path, input, knownKeys));
      }
      break;
    }
    case "invalid_key":
      return [{ path, text: issue.issues[0]?.message ?? issue.message }];
  }
  const value = valueAt(input, path);
  const got = value === undefined ? "nothing" : showValue(value);
  return [{ path, text: `${issue.message}, got ${got}` }];
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const part of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}
