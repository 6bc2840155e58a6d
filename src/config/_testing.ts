/**
 * Test helpers for the config tests: assert that a call fails with a
 * `ConfigError` whose message contains given fragments, showing the actual
 * message when it does not.
 *
 * @module
 */

import { AssertionError } from "node:assert";
import { ConfigError } from "../errors.ts";

/** Assert that `fn` throws a `ConfigError` whose message contains every fragment. */
export function assertConfigError(fn: () => unknown, ...fragments: string[]): ConfigError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  return check(thrown, fragments);
}

/** Assert that `promise` rejects with a `ConfigError` whose message contains every fragment. */
export async function assertConfigErrorAsync(
  promise: Promise<unknown>,
  ...fragments: string[]
): Promise<ConfigError> {
  let thrown: unknown;
  try {
    await promise;
  } catch (error) {
    thrown = error;
  }
  return check(thrown, fragments);
}

function check(thrown: unknown, fragments: string[]): ConfigError {
  if (!(thrown instanceof ConfigError)) {
    throw new AssertionError({
      message: `expected a ConfigError, got ${thrown === undefined ? "no error" : String(thrown)}`,
    });
  }
  for (const fragment of fragments) {
    if (!thrown.message.includes(fragment)) {
      throw new AssertionError({
        message: `ConfigError message lacks ${JSON.stringify(fragment)}:\n${thrown.message}`,
      });
    }
  }
  if (thrown.exitCode !== 2) throw new AssertionError({ message: "exit code is not 2" });
  return thrown;
}
