/**
 * The check refuses what the kernel would: inputs that pass every type and
 * range check yet make each spawn fail (or, worse, quietly change meaning)
 * are found before anything is bound or written, naming the key.
 *
 * - A NUL byte in the command, a hook's argv, or an `env` key or value: exec
 *   takes C strings, so everything after the NUL would be cut off silently.
 * - Sizes: each argument and each `KEY=value` string may be at most
 *   `MAX_ARG_STRLEN` bytes (32 pages); the whole argv + environment, with
 *   one pointer per string, must fit in `ARG_MAX` (a quarter of the stack
 *   limit). The worker's argv and environment also travel to the exec shim
 *   in one environment string, so together they must fit in `MAX_ARG_STRLEN`
 *   too — in practice the tighter bound.
 * - Binds that name the same address and port in different words
 *   (`127.0.0.1:P` and `localhost:P`, or a wildcard and a specific address
 *   of the same family): found by resolving the names and comparing.
 *
 * @module
 */

import { lookup } from "node:dns/promises";
import type { Config } from "./types.ts";
import { HOOK_NAMES } from "../hooks/run.ts";
import { PRIVATE_ENV } from "../spawn/private_env.ts";
import { sysconf } from "../sys/libc.ts";

/** The longest single argument or environment string, with its NUL (32 pages of 4 KiB). */
export const MAX_ARG_STRLEN = 32 * 4096;
/** `_SC_ARG_MAX` for sysconf(3). */
const SC_ARG_MAX = 0;
/** What the master adds per worker (ids, notify and listen variables, the shim's own): room kept. */
const SPAWN_OVERHEAD_BYTES = 8192;

const encoder = new TextEncoder();
const bytes = (s: string) => encoder.encode(s).length;

/** The kernel's `ARG_MAX` for this process (2 MiB with the usual 8 MiB stack). */
export function argMax(): number {
  try {
    const n = sysconf(SC_ARG_MAX);
    if (n > 0) return n;
  } catch { /* no libc binding: assume the usual */ }
  return 2 * 1024 * 1024;
}

/**
 * Every NUL byte and every size the kernel would refuse, one message per
 * problem, naming the key. `env`: the master's environment (workers inherit it).
 */
export function kernelLimitProblems(
  config: Config,
  env: Record<string, string>,
  limit: number = argMax(),
): string[] {
  const problems: string[] = [];
  const nul = (key: string, value: string) => {
    if (value.includes("\0")) problems.push(`${key}: contains a NUL byte, which exec cannot pass`);
  };
  config.command.forEach((arg, i) => nul(`command[${i}]`, arg));
  for (const name of HOOK_NAMES) config[name]?.forEach((arg, i) => nul(`${name}[${i}]`, arg));
  for (const [key, value] of Object.entries(config.env)) {
    nul(`env key ${JSON.stringify(key.replaceAll("\0", "\\0"))}`, key);
    nul(`env.${key}`, value);
  }

  const workerEnv: Record<string, string> = { ...env, ...config.env };
  for (const key of PRIVATE_ENV) delete workerEnv[key];
  const strings = [
    ...config.command.map((arg, i) => ({ key: `command[${i}]`, size: bytes(arg) + 1 })),
    ...Object.entries(workerEnv).map(([k, v]) => ({
      key: k in config.env ? `env.${k}` : `the environment variable ${k}`,
      size: bytes(k) + bytes(v) + 2,
    })),
  ];
  const before = problems.length;
  for (const { key, size } of strings) {
    if (size > MAX_ARG_STRLEN) {
      problems.push(
        `${key}: ${size} bytes; one argument or KEY=value may be at most ${MAX_ARG_STRLEN} ` +
          "bytes (the kernel's MAX_ARG_STRLEN)",
      );
    }
  }
  const largest = strings.reduce((a, b) => (b.size > a.size ? b : a), { key: "", size: 0 });
  const total = strings.reduce((sum, s) => sum + s.size + 8, 0) + SPAWN_OVERHEAD_BYTES;
  if (total > limit) {
    problems.push(
      `command and env: about ${total} bytes of arguments and environment; the kernel takes at ` +
        `most ${limit} (ARG_MAX); the largest is ${largest.key} (${largest.size} bytes)`,
    );
  }
  // The exec shim gets them as one JSON string in its environment.
  const handedOver = bytes(JSON.stringify({ argv: config.command, env: workerEnv })) +
    SPAWN_OVERHEAD_BYTES / 8;
  if (handedOver > MAX_ARG_STRLEN && total <= limit && problems.length === before) {
    problems.push(
      `command and env: about ${handedOver} bytes together; a worker's arguments and ` +
        `environment may be at most ${MAX_ARG_STRLEN} bytes in all (they reach the exec shim ` +
        `as one string, which MAX_ARG_STRLEN bounds); the largest is ${largest.key} ` +
        `(${largest.size} bytes)`,
    );
  }
  return problems;
}

/**
 * Binds that would take the same TCP address and port twice: names are
 * resolved (as the listener will resolve them) and compared, and a wildcard
 * clashes with every address of its family on the same port.
 */
export async function bindClashes(config: Config): Promise<string[]> {
  const seen = new Map<string, string>(); // "family port address" -> bind text
  const problems: string[] = [];
  for (const spec of config.bind) {
    if (spec.kind !== "tcp" || spec.port === 0) continue;
    let addresses: { address: string; family: number }[];
    try {
      addresses = await lookup(spec.hostname, { all: true });
    } catch {
      continue; // an unresolvable name is the bind step's error to report
    }
    // The listener takes the first address, IPv4 first (as seen: `localhost` binds 127.0.0.1).
    addresses.sort((a, b) => a.family - b.family);
    const { address, family } = addresses[0] ?? { address: spec.hostname, family: 4 };
    const wildcard = address === "0.0.0.0" || address === "::";
    for (const [key, other] of seen) {
      const [f, p, a] = key.split(" ");
      if (Number(f) !== family || Number(p) !== spec.port) continue;
      if (a === address || wildcard || a === "0.0.0.0" || a === "::") {
        problems.push(
          `bind: ${JSON.stringify(spec.text)} and ${JSON.stringify(other)} both take ` +
            `${family === 6 ? `[${address}]` : address}:${spec.port}` +
            (a === address ? "" : " (a wildcard address takes every address of its family)") +
            "; the second would fail with 'address already in use'",
        );
      }
    }
    seen.set(`${family} ${spec.port} ${address}`, spec.text);
  }
  return problems;
}
