/**
 * A webhook receiver for the complaints example: prints each alert weir
 * posts (one JSON line) and answers 200. `PORT` (default 9000).
 *
 *   bun examples/complaints/hook.ts
 */
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 9000),
  async fetch(req) {
    const alert = await req.json().catch(() => null);
    console.log(JSON.stringify({ key: req.headers.get("idempotency-key"), alert }));
    return Response.json({ ok: true });
  },
});
console.log(`webhook listening on http://127.0.0.1:${server.port}/hook`);
