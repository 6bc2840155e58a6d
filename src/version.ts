/**
 * What this program is built from (docs/operations.md, "Versions"): arbiter's
 * version (deno.json), the Deno, V8 and TypeScript versions of the runtime
 * it runs on, and the git commit when the executable was stamped with one
 * by scripts/compile.ts. Git is never read at run time: under `deno run`
 * from a checkout the commit is unknown.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import { COMMIT } from "./_commit.ts";
import type { BuildInfo } from "./control/metrics_snapshot.ts";

/** The arbiter's version. */
export const VERSION: string = denoJson.version;

/** The versions and commit, as `arbiter_build_info` labels them. */
export function buildInfo(commit: string | undefined = COMMIT): BuildInfo {
  return {
    version: VERSION,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    ...(commit === undefined ? {} : { commit }),
  };
}

/**
 * What `arbiter --version` prints: the first line as tools expect
 * (`arbiter 0.1.0`), then the commit and the runtime, one per line.
 *
 * @example Usage
 * ```ts
 * import { versionText } from "./version.ts";
 * versionText().split("\n")[0]; // "arbiter 0.1.0"
 * ```
 */
export function versionText(info: BuildInfo = buildInfo()): string {
  return [
    `arbiter ${info.version}`,
    `commit ${info.commit ?? "unknown"}`,
    `deno ${info.deno}`,
    `v8 ${info.v8}`,
    `typescript ${info.typescript}`,
  ].join("\n");
}
