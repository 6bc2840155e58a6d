/**
 * The committed JSON Schema of the config file (`schema/arbiter.schema.json`)
 * is exactly what `scripts/gen_schema.ts` generates now, covers every key the
 * config validator knows, and the shipped config files pass the validator.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { CONFIG_KEYS } from "../src/config/schema.ts";
import { loadConfig } from "../src/config/load.ts";
import { SCHEMA_PATH, schemaText } from "../scripts/gen_schema.ts";
import { REPO_ROOT } from "./_harness.ts";

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

const committed = await Deno.readTextFile(`${REPO_ROOT}/${SCHEMA_PATH}`);

Deno.test("schema: the committed file equals a fresh generation", () => {
  assert(
    committed === schemaText(),
    `${SCHEMA_PATH} is out of date: run ./scripts/deno run -A scripts/gen_schema.ts`,
  );
  // Stable: two generations give the same text.
  assertEquals(schemaText(), schemaText());
});

Deno.test("schema: every config key is a property, and nothing else", () => {
  const schema = JSON.parse(committed) as {
    properties: Record<string, { description?: string }>;
    additionalProperties: boolean;
    type: string;
  };
  assertEquals(schema.type, "object");
  assertEquals(schema.additionalProperties, false);
  assertEquals(Object.keys(schema.properties).sort(), [...CONFIG_KEYS].sort());
  for (const [key, value] of Object.entries(schema.properties)) {
    assert(value.description, `${key} has no description`);
  }
});

Deno.test("schema: every example config file is valid", async () => {
  const files = [
    "app.toml",
    ...["node", "python", "go", "ruby", "deno"].map((l) => `${l}/app.toml`),
  ]
    .map((f) => `${REPO_ROOT}/examples/${f}`);
  for (const path of files) assert(exists(path), path);
  for (const path of files) {
    const config = await loadConfig({ configPath: path, overrides: {} }, {}, REPO_ROOT);
    assert(config.command.length > 0, path);
  }
});
