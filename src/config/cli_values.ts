/**
 * The command-line option values checked against the same schema fields as
 * the config file (docs/contract.md, "Command line"). `parseCli` only reads
 * them (src/config/cli.ts); `loadConfig` calls {@link checkOptionValues}
 * first, so the running master, which validates configs in a child process
 * (src/config/validate_child.ts), never loads the schema.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import { keyPath } from "./_format.ts";
import { describeIssues } from "./_issues.ts";
import { CHECKED_OPTIONS, type CliOverrides } from "./cli.ts";
import { configSchema } from "./schema.ts";

/**
 * Checks each option value of `overrides` against its key's schema field.
 *
 * @param overrides The option values from `parseCli`.
 * @throws {ConfigError} naming the first bad option (`--workers: expected …, got …`).
 */
export function checkOptionValues(overrides: CliOverrides): void {
  const given = overrides as Record<string, unknown>;
  for (const [option, key] of CHECKED_OPTIONS) {
    const value = given[key];
    if (value === undefined) continue;
    const result = configSchema.shape[key].safeParse(value);
    if (!result.success) {
      const problems = describeIssues(result.error.issues, value);
      throw new ConfigError(
        problems.map((p) => `--${option}${keyPath(p.path)}: ${p.text}`).join("\n"),
      );
    }
  }
}
