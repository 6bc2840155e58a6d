/**
 * Test-only: a bounded server with no effective connection cap, run by
 * `bounded_server_test.ts` under a low `ulimit -n` so that `accept()` really
 * fails with EMFILE. Prints its port on stdout; logs to stderr; serves until
 * SIGTERM.
 *
 * @module
 */

import { setupLogging } from "../logging/log.ts";
import { serveBounded } from "./bounded_server.ts";

// The master registers its signals before it serves; so does this. (Deno
// creates its signal thread's socket pair on the first registration, and
// panics if that fails for want of a descriptor.)
const stopped = new Promise<void>((resolve) => Deno.addSignalListener("SIGTERM", resolve));
const logging = await setupLogging({ level: "info", format: "text" });
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const server = serveBounded({
  name: "fixture",
  listener,
  handler: () => new Response("ok\n"),
  limits: { maxConnections: 100_000 },
});
console.log(listener.addr.port);
await stopped;
await server.close();
await logging.close();
