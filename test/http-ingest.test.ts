import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import { deflateRawSync, deflateSync, gzipSync } from "node:zlib";
import { waitFor } from "./helpers/wait.ts";
import { postEvents, startTestWeir, type TestWeir } from "./helpers/weir.ts";
import { limits } from "../src/runtime/limits.ts";

const ingestToken = "ingest-token-1";
const readToken = "read-token-1";
const auth = (t: string) => ({ authorization: `Bearer ${t}` });

describe("http - POST /api/v1/events statuses", () => {
  let w: TestWeir;
  beforeAll(async () => {
    w = await startTestWeir({ WEIR_TOKENS: `${ingestToken}:ingest,${readToken}:read`, WEIR_MAX_BODY: "2048", WEIR_RING_BYTES: "4MiB", WEIR_FAILPOINTS: "1" });
  });
  afterAll(() => w.stop());

  test("http - 202 one event", async () => {
    const r = await postEvents(w.url, JSON.stringify({ name: "a.b", value: 2 }), "application/json", auth(ingestToken));
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ accepted: 1, rejected: 0, errors: [] });
  });

  test("http - 202 partial: valid events kept, invalid listed by index", async () => {
    const body = JSON.stringify([{ name: "a.b" }, { name: "9bad" }, { name: "a.b", value: "x" }, { name: "a.b", extra: 1 }]);
    const r = await postEvents(w.url, body, "application/json", auth(ingestToken));
    expect(r.status).toBe(202);
    expect(r.body).toEqual({
      accepted: 1,
      rejected: 3,
      errors: [
        { index: 1, error: "name: must match ^[A-Za-z_][A-Za-z0-9_.:-]*$" },
        { index: 2, error: "value: must be a finite number" },
        { index: 3, error: '"extra": unknown field' },
      ],
    });
  });

  test("http - 400 unparseable, empty, and no event valid", async () => {
    expect(await postEvents(w.url, "{nope", "application/json", auth(ingestToken))).toMatchObject({ status: 400, body: { error: "body: invalid JSON" } });
    expect(await postEvents(w.url, "", "application/json", auth(ingestToken))).toMatchObject({ status: 400, body: { error: "body: empty" } });
    expect(await postEvents(w.url, "[]", "application/json", auth(ingestToken))).toMatchObject({ status: 400, body: { error: "body: empty array" } });
    expect(await postEvents(w.url, '{"name":"a"}\n{x', "application/x-ndjson", auth(ingestToken))).toMatchObject({ status: 400, body: { error: "line 2: invalid JSON" } });
    const r = await postEvents(w.url, JSON.stringify([{ name: "" }, { value: 1 }]), "application/json", auth(ingestToken));
    expect(r.status).toBe(400);
    expect(r.body).toEqual({
      error: "no event valid",
      errors: [{ index: 0, error: "name: must be 1–128 characters" }, { index: 1, error: "name: required string" }],
    });
  });

  test("http - 401 without or with an unknown token, 403 with the wrong role", async () => {
    const body = JSON.stringify({ name: "a" });
    const none = await postEvents(w.url, body);
    expect(none.status).toBe(401);
    expect(none.body).toEqual({ error: "authorization: bearer token required" });
    expect(none.headers.get("www-authenticate")).toBe("Bearer");
    expect(await postEvents(w.url, body, "application/json", auth("nobody-knows-me"))).toMatchObject({ status: 401, body: { error: "authorization: unknown token" } });
    expect(await postEvents(w.url, body, "application/json", auth(readToken))).toMatchObject({ status: 403, body: { error: 'authorization: token lacks role "ingest"' } });
  });

  test("http - 413 over WEIR_MAX_BODY and over 100,000 events", async () => {
    const big = JSON.stringify(Array.from({ length: 100 }, () => ({ name: "a.b", value: 1 })));
    const r = await postEvents(w.url, big, "application/json", auth(ingestToken));
    expect(r.status).toBe(413);
    expect(r.body).toEqual({ error: "body: over WEIR_MAX_BODY (2048 bytes)" });
    // Far over the bound, and without a Content-Length: the same JSON error (Bun's own bound would answer an empty 413).
    const huge = await postEvents(w.url, "x".repeat(1_000_000), "application/json", auth(ingestToken));
    expect([huge.status, huge.body]).toEqual([413, { error: "body: over WEIR_MAX_BODY (2048 bytes)" }]);
    const chunks = new ReadableStream({
      start(c) {
        for (let i = 0; i < 100; i++) c.enqueue(new TextEncoder().encode("y".repeat(1_000)));
        c.close();
      },
    });
    const chunked = await fetch(`${w.url}/api/v1/events`, { method: "POST", body: chunks, headers: { "content-type": "application/json", ...auth(ingestToken) } });
    expect([chunked.status, await chunked.json()]).toEqual([413, { error: "body: over WEIR_MAX_BODY (2048 bytes)" }]);
  });

  test("http - gzip and deflate bodies are taken as their content; a decompression bomb is 413, a broken stream 400, another encoding 415, each a JSON error", async () => {
    const events = JSON.stringify([{ name: "zip.a", value: 1 }, { name: "zip.a", value: 2 }, { name: "9bad", value: 1 }]);
    const send = (body: Uint8Array | string, encoding: string) =>
      postEvents(w.url, body as BodyInit, "application/json", { ...auth(ingestToken), "content-encoding": encoding });
    for (const [encoding, body] of [["gzip", gzipSync(events)], ["deflate", deflateSync(events)], ["deflate", deflateRawSync(events)], ["GZIP", gzipSync(events)]] as const) {
      const r = await send(body, encoding);
      expect([encoding, r.status, r.body]).toEqual([encoding, 202, { accepted: 2, rejected: 1, errors: [{ index: 2, error: "name: must match ^[A-Za-z_][A-Za-z0-9_.:-]*$" }] }]);
    }
    const bomb = gzipSync(Buffer.alloc(10_000_000, 0x20)); // 10 MB of spaces: ~10 KB compressed, over the limit already as sent
    const smallBomb = gzipSync(Buffer.alloc(1_000_000, 0x20));
    expect(smallBomb.byteLength).toBeLessThan(2048); // under the limit as sent, far over it once decompressed
    expect(await send(smallBomb, "gzip")).toMatchObject({ status: 413, body: { error: "body: over WEIR_MAX_BODY (2048 bytes) once decompressed" } });
    expect(bomb.byteLength).toBeGreaterThan(2048);
    expect(await send(bomb, "gzip")).toMatchObject({ status: 413, body: { error: "body: over WEIR_MAX_BODY (2048 bytes)" } });
    const broken = await send(new TextEncoder().encode("not gzip at all"), "gzip");
    expect([broken.status, broken.body.error]).toEqual([400, "body: not valid gzip (incorrect header check)"]);
    expect(await send(events, "br")).toMatchObject({ status: 415, body: { error: 'content-encoding: use gzip or deflate, or none (got "br")' } });
  });

  test("http - 415 other content types", async () => {
    const r = await postEvents(w.url, "name=a", "application/x-www-form-urlencoded", auth(ingestToken));
    expect(r.status).toBe(415);
    expect(r.body).toEqual({ error: "content-type: use application/json, application/x-ndjson, application/msgpack or text/plain" });
  });

  test("http - 503 with Retry-After when a partition's ring is full; nothing accepted; accepted again once drained", async () => {
    for (const s of w.engine.supervisor.status()) w.engine.supervisor.post(s.id, { type: "fault", mode: "pause" });
    const before = w.engine.metrics.ingested.get();
    const batch = encode(Array.from({ length: 60 }, (_, i) => ({ name: `fill.s${i % 7}` })));
    let refused: Awaited<ReturnType<typeof postEvents>> | undefined;
    for (let i = 0; i < 20_000 && !refused; i++) {
      const r = await postEvents(w.url, batch, "application/msgpack", auth(ingestToken));
      if (r.status === 503) refused = r;
      else expect(r.status).toBe(202);
    }
    expect(refused?.body.error).toMatch(/^overloaded: partition \d queue full; nothing of this request was accepted$/);
    expect(refused?.headers.get("retry-after")).toBe("1");
    const accepted = w.engine.metrics.ingested.get();
    expect((accepted - before) % 60).toBe(0); // whole requests only
    // A refused request remembers none of its ids: its retry is counted, not taken for a duplicate.
    const withIds = encode(Array.from({ length: 60 }, (_, i) => ({ name: `fill.s${i % 7}`, id: `retry-${i}` })));
    expect((await postEvents(w.url, withIds, "application/msgpack", auth(ingestToken))).status).toBe(503);
    // A refused request registers no series and moves no series' listed last value (issue 19's second finding).
    const seriesBefore = w.engine.registry.size;
    const lastBefore = ((await (await fetch(`${w.url}/api/v1/series`, { headers: auth(readToken) })).json()) as { series: Array<{ key: string; last?: unknown }> }).series.find((x) => x.key === "fill.s0");
    const newOnes = encode([...Array.from({ length: 50 }, (_, i) => ({ name: `brand.new${i}`, value: 7 })), ...Array.from({ length: 10 }, () => ({ name: "fill.s0", value: 12345 }))]);
    expect((await postEvents(w.url, newOnes, "application/msgpack", auth(ingestToken))).status).toBe(503);
    const listed = ((await (await fetch(`${w.url}/api/v1/series`, { headers: auth(readToken) })).json()) as { series: Array<{ key: string; last?: unknown }> }).series;
    expect([w.engine.registry.size, listed.some((x) => x.key.startsWith("brand.new")), listed.find((x) => x.key === "fill.s0")]).toEqual([seriesBefore, false, lastBefore]);
    for (const s of w.engine.supervisor.status()) w.engine.supervisor.post(s.id, { type: "fault", mode: "resume" });
    await waitFor(() => w.engine.queueDepthBytes(0) === 0 && w.engine.queueDepthBytes(1) === 0, 10_000, "rings drained");
    expect((await postEvents(w.url, batch, "application/msgpack", auth(ingestToken))).status).toBe(202);
    const duplicates = w.engine.metrics.duplicate.get();
    expect((await postEvents(w.url, withIds, "application/msgpack", auth(ingestToken))).body).toEqual({ accepted: 60, rejected: 0, errors: [] });
    expect(w.engine.metrics.ingested.get()).toBe(accepted + 120);
    expect(w.engine.metrics.duplicate.get()).toBe(duplicates);
  }, 60_000);
});

describe("http - limits that need a roomy body", () => {
  test("http - 413 for more than 100,000 events in one body", async () => {
    const w = await startTestWeir();
    try {
      const body = encode(Array.from({ length: 100_001 }, () => ({ name: "a" })));
      const r = await postEvents(w.url, body, "application/msgpack");
      expect(r.status).toBe(413);
      expect(r.body).toEqual({ error: "body: over 100000 events" });
    } finally {
      await w.stop();
    }
  }, 30_000);

  test("http - 503 while shutting down", async () => {
    const w = await startTestWeir();
    const stopping = w.engine.stop();
    const r = await postEvents(w.url, JSON.stringify({ name: "a" }));
    expect(r.status).toBe(503);
    expect(r.body).toEqual({ error: "overloaded: shutting down; nothing of this request was accepted" });
    expect(r.headers.get("retry-after")).toBe(String(limits.retryAfterSeconds));
    await stopping;
    await w.stop();
  }, 30_000);
});

describe("http - shedding before the body is read", () => {
  test("http - over WEIR_MEMORY_MAX every ingest route answers 503 with Retry-After 5 and takes nothing; reads still answer", async () => {
    const w = await startTestWeir({ WEIR_MEMORY_MAX: "64MiB" }); // a test process is always past 64 MiB
    try {
      const before = w.engine.metrics.ingested.get();
      const r = await postEvents(w.url, JSON.stringify([{ name: "shed.a", value: 1 }]));
      expect([r.status, r.headers.get("retry-after")]).toEqual([503, "5"]);
      expect(r.body.error).toMatch(/^overloaded: memory \d+ MiB over WEIR_MEMORY_MAX \(64 MiB\); nothing of this request was accepted$/);
      const lp = await fetch(`${w.url}/write`, { method: "POST", body: "shed_b v=1" });
      expect(lp.status).toBe(503);
      expect(w.engine.metrics.ingested.get()).toBe(before);
      expect((await fetch(`${w.url}/api/v1/series`)).status).toBe(200);
    } finally {
      await w.stop();
    }
  });
});

describe("http - series listing pages", () => {
  test("http - /api/v1/series pages through every series with after=<next>, each once, in registration order; the last page has no next", async () => {
    const w = await startTestWeir();
    try {
      const names = Array.from({ length: 25 }, (_, i) => ({ name: `page.s${String(i).padStart(2, "0")}`, value: i }));
      expect((await postEvents(w.url, JSON.stringify([...names, { name: "other.x" }]))).status).toBe(202);
      const seen: string[] = [];
      let after = -1;
      const pages: number[] = [];
      for (let i = 0; i < 10; i++) {
        const page = (await (await fetch(`${w.url}/api/v1/series?match=page.*&limit=10&after=${after}`)).json()) as { series: Array<{ key: string }>; next?: number };
        seen.push(...page.series.map((s) => s.key));
        pages.push(page.series.length);
        if (page.next === undefined) break;
        after = page.next;
      }
      expect(seen).toEqual(names.map((n) => n.name));
      expect(pages).toEqual([10, 10, 5]);
      const bad = await fetch(`${w.url}/api/v1/series?after=-2`);
      expect([bad.status, ((await bad.json()) as { error: string }).error]).toEqual([400, "after: must be ≥ -1"]);
    } finally {
      await w.stop();
    }
  });
});
