/**
 * Writes `schema/arbiter.schema.json`, the JSON Schema of the config file,
 * from `configJsonSchema()` (the zod schema the loader validates with), so
 * editors can complete and check `app.toml` (Taplo, Even Better TOML).
 * `tests/schema_test.ts` fails when the committed file is out of date.
 *
 *     deno run --allow-write=schema scripts/gen_schema.ts           # write it
 *     deno run --allow-read=schema scripts/gen_schema.ts --check    # exit 1 if stale
 *
 * @module
 */

import { configJsonSchema } from "../src/config/schema.ts";

/** Where the schema is written, relative to the repository root. */
export const SCHEMA_PATH = "schema/arbiter.schema.json";

/** Object keys in sorted order, recursively, so the output does not depend on insertion order. */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value).sort().map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/**
 * The schema file's text: pretty-printed with two spaces, keys sorted
 * (except `properties`, kept in the order of the config reference), one
 * trailing newline.
 *
 * @returns The exact text of `schema/arbiter.schema.json`.
 */
export function schemaText(): string {
  const schema = configJsonSchema() as Record<string, unknown> & {
    properties?: Record<string, unknown>;
  };
  const sorted = sortKeys(schema) as Record<string, unknown>;
  if (schema.properties) {
    // Property order is what editors show: keep the config reference order.
    sorted.properties = Object.fromEntries(
      Object.entries(schema.properties).map(([k, v]) => [k, sortKeys(v)]),
    );
  }
  const ordered: Record<string, unknown> = {
    $schema: sorted.$schema,
    title: sorted.title,
    ...sorted,
  };
  if (ordered.$schema === undefined) delete ordered.$schema;
  return JSON.stringify(ordered, null, 2) + "\n";
}

if (import.meta.main) {
  const root = new URL("..", import.meta.url).pathname;
  const path = `${root}${SCHEMA_PATH}`;
  const text = schemaText();
  if (Deno.args.includes("--check")) {
    const current = await Deno.readTextFile(path).catch(() => "");
    if (current !== text) {
      console.error(`${SCHEMA_PATH} is out of date: run deno run -A scripts/gen_schema.ts`);
      Deno.exit(1);
    }
    console.log(`${SCHEMA_PATH} is up to date`);
  } else {
    await Deno.mkdir(`${root}schema`, { recursive: true });
    await Deno.writeTextFile(path, text);
    console.log(`wrote ${SCHEMA_PATH}`);
  }
}
