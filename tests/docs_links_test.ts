/**
 * The documentation holds together: README stays a five-minute read, every
 * relative link in README.md, BENCHMARKS.md and docs/ reaches an existing
 * file (and an existing heading when it names one, by GitHub's slug rules),
 * every key of the config schema is documented in docs/configuration.md, and
 * no page cites a document outside the repository or an issue number.
 *
 * Pure file reads, no processes: it runs in well under a second.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { configSchema } from "../src/config/schema.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const README_MAX_LINES = 300;

/** The markdown pages whose links are checked: README.md, BENCHMARKS.md, docs/**.md. */
function pages(): string[] {
  const found = [join(ROOT, "README.md"), join(ROOT, "BENCHMARKS.md")];
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) walk(path);
      else if (entry.isFile && entry.name.endsWith(".md")) found.push(path);
    }
  };
  walk(join(ROOT, "docs"));
  return found.sort();
}

/** The text with fenced code blocks blanked (line numbers kept). */
function withoutFences(text: string): string {
  let fence: string | undefined;
  return text.split("\n").map((line) => {
    const open = /^\s*(`{3,}|~{3,})/.exec(line);
    if (fence === undefined && open) {
      fence = open[1][0].repeat(open[1].length);
      return "";
    }
    if (fence !== undefined) {
      if (line.trim().startsWith(fence)) fence = undefined;
      return "";
    }
    // An indented code block (four spaces after a blank line) is rare here
    // and holds no links, so it needs no special case.
    return line;
  }).join("\n");
}

/** The text with inline code spans removed (they may wrap onto the next line). */
function withoutCodeSpans(text: string): string {
  return text.replace(/(`+)[\s\S]*?\1/g, (span) => span.replace(/[^\n]/g, " "));
}

/**
 * GitHub's anchor for a heading (github-slugger): the rendered text, lower
 * case, without anything but letters, marks, digits, connector punctuation
 * (`_`), spaces and hyphens, spaces turned into hyphens; a repeated slug
 * gets `-1`, `-2`, ….
 */
export function slugs(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of withoutFences(markdown).split("\n")) {
    const heading = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const rendered = heading[1]
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // links and images: their text
      .replace(/<[^>]+>/g, "") // inline HTML
      .replace(/[`*]/g, ""); // code and emphasis marks
    const base = rendered.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "").replace(
      / /g,
      "-",
    );
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Every inline link or image target of a page, with its line number. */
function links(markdown: string): { target: string; line: number }[] {
  const text = withoutCodeSpans(withoutFences(markdown));
  const found: { target: string; line: number }[] = [];
  const pattern = /\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g;
  for (const match of text.matchAll(pattern)) {
    const line = text.slice(0, match.index).split("\n").length;
    found.push({ target: match[1], line });
  }
  return found;
}

const slugCache = new Map<string, Set<string>>();
function slugsOf(path: string): Set<string> {
  let set = slugCache.get(path);
  if (set === undefined) {
    set = slugs(Deno.readTextFileSync(path));
    slugCache.set(path, set);
  }
  return set;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("slugs() follows GitHub's rules for the headings these docs use", () => {
  const md = [
    "# Deno — `examples/deno/`",
    "## log_file and logrotate",
    "## USR1 and Deno's inspector",
    "## Without CAP_NET_ADMIN",
    "## 6. Saturation: autoscaling",
    "## `/readyz`",
    "## A numeric `user` with no entry in /etc/passwd needs `group`",
    "## Setting up",
    "## Setting up",
    "```sh",
    "# not a heading",
    "```",
  ].join("\n");
  assertEquals([...slugs(md)], [
    "deno--examplesdeno",
    "log_file-and-logrotate",
    "usr1-and-denos-inspector",
    "without-cap_net_admin",
    "6-saturation-autoscaling",
    "readyz",
    "a-numeric-user-with-no-entry-in-etcpasswd-needs-group",
    "setting-up",
    "setting-up-1",
  ]);
});

Deno.test(`README.md is at most ${README_MAX_LINES} lines`, () => {
  const lines = Deno.readTextFileSync(join(ROOT, "README.md")).split("\n").length;
  assert(lines <= README_MAX_LINES, `README.md has ${lines} lines; move detail into docs/`);
});

Deno.test("every relative link in README.md, BENCHMARKS.md and docs/ resolves, anchors included", () => {
  const broken: string[] = [];
  let checked = 0;
  for (const page of pages()) {
    const shown = relative(ROOT, page);
    for (const { target, line } of links(Deno.readTextFileSync(page))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, …
      checked++;
      const hash = target.indexOf("#");
      const pathPart = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
      const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
      const file = pathPart === "" ? page : resolve(dirname(page), pathPart);
      if (!file.startsWith(ROOT + "/") && file !== ROOT) {
        broken.push(`${shown}:${line}: ${target} points outside the repository`);
      } else if (!exists(file)) {
        broken.push(`${shown}:${line}: ${target}: no such file`);
      } else if (anchor !== undefined && file.endsWith(".md") && !slugsOf(file).has(anchor)) {
        broken.push(
          `${shown}:${line}: ${target}: no heading "#${anchor}" in ${relative(ROOT, file)}`,
        );
      }
    }
  }
  assert(checked > 100, `only ${checked} links found: is the link pattern still right?`);
  assertEquals(broken, []);
});

Deno.test("docs/configuration.md documents every key of the config schema", () => {
  const text = withoutFences(Deno.readTextFileSync(join(ROOT, "docs/configuration.md")));
  const documented = new Set<string>();
  for (const line of text.split("\n")) {
    // A table row's first cell, or a heading: every `key` named there.
    const cell = /^\|([^|]*)\|/.exec(line)?.[1] ?? /^#{1,6}\s+(.*)$/.exec(line)?.[1];
    if (cell === undefined) continue;
    for (const name of cell.matchAll(/`([a-z0-9_]+)`/g)) documented.add(name[1]);
  }
  const keys = Object.keys(configSchema.shape);
  assert(keys.length > 40, `only ${keys.length} keys in the schema?`);
  assertEquals(keys.filter((key) => !documented.has(key)), []);
});

Deno.test("no page cites a document outside the repository or an issue number", () => {
  const files = [...pages()];
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) walk(path);
      else if (entry.isFile && !/\.(svg|png|jpg)$/.test(entry.name)) files.push(path);
    }
  };
  walk(join(ROOT, "examples"));
  const found: string[] = [];
  for (const file of files) {
    // BENCHMARKS.md numbers its own sections (§4); elsewhere "§ N" cites another document.
    const ownSections = file.endsWith("/BENCHMARKS.md");
    Deno.readTextFileSync(file).split("\n").forEach((line, i) => {
      const cites = /\bSPEC\b/.test(line) || /\bissues? #?\d+/i.test(line) ||
        (!ownSections && /§\s*\d/.test(line));
      if (cites) found.push(`${relative(ROOT, file)}:${i + 1}: ${line.trim()}`);
    });
  }
  assertEquals(found, []);
});
