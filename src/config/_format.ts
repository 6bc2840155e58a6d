/**
 * Small private helpers shared by the config modules for writing error
 * messages: quoting a value, naming a key path, suggesting a near key.
 *
 * @module
 */

/** Longest quoted value shown in an error message, in characters. */
const MAX_SHOWN = 60;

/**
 * A value as JSON for an error message, truncated to about
 * {@link MAX_SHOWN} characters.
 */
export function showValue(value: unknown): string {
  // TOML spells these inf and nan; JSON has no spelling for them.
  if (typeof value === "number" && !Number.isFinite(value)) {
    return Number.isNaN(value) ? "nan" : value > 0 ? "inf" : "-inf";
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(value, (_k, v) => typeof v === "bigint" ? Number(v) : v);
  } catch {
    json = undefined;
  }
  json ??= String(value);
  return json.length > MAX_SHOWN ? `${json.slice(0, MAX_SHOWN - 3)}...` : json;
}

/** A key path as people write it: `workers`, `env.FOO`, `env["A B"]`, `on_reload[1]`. */
export function keyPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(String(part))) {
      out += out === "" ? String(part) : `.${String(part)}`;
    } else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

/**
 * The candidate closest to `word` by edit distance (case-insensitive, `-`
 * read as `_`), or undefined when none is close enough to be a likely typo.
 */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase().replaceAll("-", "_");
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(w, candidate.toLowerCase().replaceAll("-", "_"));
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  const limit = Math.max(1, Math.min(3, Math.floor(w.length / 3)));
  return bestDistance <= limit ? best : undefined;
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost);
    }
    prev = row;
  }
  return prev[b.length];
}
