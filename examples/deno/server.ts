// A Deno worker for arbiter: the helper serves with Deno.serve's own listener
// on the socket at fd 3 (node:http when it cannot, with a warning), sends
// READY=1 and WATCHDOG=1 when arbiter asks for them, and drains on TERM.
import { serve } from "../../src/worker/mod.ts";

const id = Deno.env.get("ARBITER_WORKER_ID") ?? "?";
serve(() => new Response(`hello from deno worker ${id}\n`));
