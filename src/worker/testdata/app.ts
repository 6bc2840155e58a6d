/**
 * A test app for `src/worker/mod_test.ts`, run under `tests/workers/launch.py`.
 *
 * Routes: `/` hello; `/slow?ms=N` prints `slow start` to stdout and answers
 * `slow done` after N ms; `/echo` (POST) streams the request body back with
 * `x-method` and `x-got-*` headers; `/stream` sends three chunks 150 ms apart;
 * `/cookies` sets two cookies with status 201 "Made"; `/throw` throws.
 * Prints `listening` once serving, `pid <pid> got USR1` on USR1 (`onUsr1`) and
 * `finished` after the drain.
 *
 * @module
 */

import { serve } from "../mod.ts";

function say(line: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
}

const server = serve(async (req) => {
  const url = new URL(req.url);
  switch (url.pathname) {
    case "/":
      return new Response(`hello from worker ${Deno.env.get("ARBITER_WORKER_ID")}\n`);
    case "/slow": {
      say("slow start");
      await new Promise((r) => setTimeout(r, Number(url.searchParams.get("ms") ?? "1000")));
      return new Response("slow done\n");
    }
    case "/echo":
      return new Response(req.body, {
        headers: {
          "x-method": req.method,
          "x-got-type": req.headers.get("content-type") ?? "",
          "x-got-path": url.pathname + url.search,
        },
      });
    case "/stream": {
      let n = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (n > 0) await new Promise((r) => setTimeout(r, 150));
          controller.enqueue(new TextEncoder().encode(`chunk ${n}\n`));
          if (++n === 3) controller.close();
        },
      });
      return new Response(body, { headers: { "content-type": "text/plain" } });
    }
    case "/cookies": {
      const headers = new Headers();
      headers.append("set-cookie", "a=1");
      headers.append("set-cookie", "b=2");
      return new Response(null, { status: 201, statusText: "Made", headers });
    }
    case "/throw":
      throw new Error("boom (expected in a test)");
    default:
      return new Response("not found\n", { status: 404 });
  }
}, {
  onListen: ({ transport }) => say(`listening (${transport})`),
  onUsr1: () => say(`pid ${Deno.pid} got USR1`),
});

await server.finished;
say("finished");
