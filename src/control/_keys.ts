/**
 * `q` for `arbiter ctl top`: when stdin is a terminal, it is put in raw
 * mode (keys arrive one by one, unechoed) and `q`, `Q`, Ctrl-C or Ctrl-D
 * end the view. The terminal is restored on every way out: the key, the
 * end of the refreshes, an error (the caller's `finally`), and TERM or HUP
 * (which would otherwise end the process with the terminal still raw).
 * When stdin is not a terminal nothing changes: Ctrl-C ends it as usual.
 *
 * @module
 */

const QUIT_KEYS = new Set([0x71, 0x51, 0x03, 0x04]); // q Q ^C ^D
const END_SIGNALS: Deno.Signal[] = ["SIGTERM", "SIGHUP"];

/** Calls `onQuit` once a quit key (or TERM/HUP) comes; `restore()` gives the terminal back. */
export function watchQuitKeys(onQuit: () => void): { restore(): void } {
  const stdin = Deno.stdin;
  if (!stdin.isTerminal()) return { restore() {} };
  try {
    stdin.setRaw(true);
  } catch {
    return { restore() {} }; // not a terminal after all: Ctrl-C still works
  }
  let restored = false;
  const quit = () => onQuit();
  for (const signal of END_SIGNALS) Deno.addSignalListener(signal, quit);
  const restore = () => {
    if (restored) return;
    restored = true;
    for (const signal of END_SIGNALS) Deno.removeSignalListener(signal, quit);
    try {
      stdin.setRaw(false);
    } catch { /* the terminal is gone */ }
  };
  (async () => {
    const buffer = new Uint8Array(64);
    while (!restored) {
      const n = await stdin.read(buffer).catch(() => null);
      if (n === null) return quit(); // end of input
      if (buffer.subarray(0, n).some((b) => QUIT_KEYS.has(b))) return quit();
    }
  })();
  return { restore };
}
