/**
 * A real HTTP receiver on a free port that records every request and
 * answers as the test says: weir's producer end for the emit() client's
 * tests, a webhook for the actions' tests.
 *
 * @example
 *   const r = startReceiver((_req, i) => (i < 2 ? reply(503, {}, { "Retry-After": "1" }) : reply(202, {})));
 *   await fetch(r.url, { method: "POST", body: "x" });
 *   r.received.length; // 1
 *   await r.stop();
 */
export interface Received {
  /** performance.now() when the request's body had arrived. */
  at: number;
  method: string;
  path: string;
  headers: Headers;
  body: string;
}

export type Responder = (req: Received, index: number) => Response | Promise<Response>;

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** Swappable: how the next requests are answered. */
  respond: Responder;
  stop(): Promise<void>;
}

export function startReceiver(respond: Responder): Receiver {
  const r: Receiver = {
    url: "",
    port: 0,
    received: [],
    respond,
    async stop() {
      await server.stop(true);
    },
  };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0, // a test holding an answer decides when it ends, not the server
    async fetch(req) {
      const u = new URL(req.url);
      const rec: Received = { at: 0, method: req.method, path: u.pathname, headers: req.headers, body: await req.text() };
      rec.at = performance.now();
      const index = r.received.push(rec) - 1;
      return r.respond(rec, index);
    },
  });
  r.port = server.port!;
  r.url = `http://127.0.0.1:${server.port}`;
  return r;
}

/** A JSON answer. @example reply(503, { error: "busy" }, { "Retry-After": "1" }) */
export function reply(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

/** A promise and the function that settles it: an answer held until the test lets it go. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** A request that is never answered (until the receiver stops). */
export function never(): Promise<Response> {
  return new Promise(() => {});
}
