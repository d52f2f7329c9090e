import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createClient, type ClientEvent } from "../src/client/emit.ts";
import { waitFor } from "./helpers/wait.ts";
import { startTestWeir, type TestWeir } from "./helpers/weir.ts";
import { reply, startReceiver } from "./helpers/receiver.ts";

const ingestToken = "ingest-token-client";
const readToken = "read-token-client";
const readAuth = { authorization: `Bearer ${readToken}` };

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { headers: readAuth })).text();
  const m = new RegExp(`^${name} (\\d+)$`, "m").exec(text);
  if (!m) throw new Error(`${name} not in /metrics`);
  return Number(m[1]);
}

async function getJson(url: string): Promise<any> {
  const res = await fetch(url, { headers: readAuth });
  expect(res.status).toBe(200);
  return res.json();
}

describe("client - against a real weir", () => {
  let w: TestWeir;
  beforeAll(async () => {
    w = await startTestWeir({ WEIR_PARTITIONS: "2", WEIR_LATENESS: "0", WEIR_TOKENS: `${ingestToken}:ingest,${readToken}:read` });
  });
  afterAll(() => w.stop());

  test("client - every event arrives exactly once: windows, last values and weir_events_ingested_total", async () => {
    const ingested0 = await metric(w.url, "weir_events_ingested_total");
    const c = createClient({ url: w.url, token: ingestToken, batchEventsMax: 30, flushOnExit: false });
    // One closed 10 s window per page, a minute back: 25 events in it, then one past its end closes it (lateness 0).
    const start = Math.floor((Date.now() - 60_000) / 10_000) * 10_000;
    const pages = ["a", "b", "c", "d"];
    for (let i = 0; i < 25; i++) for (const page of pages) c.emit("client.load", i, { page }, { ts: start + i * 100 });
    for (const page of pages) c.emit("client.load", 1000, { page }, { ts: start + 10_000 });
    expect(await c.flush()).toEqual({ accepted: 104, rejected: 0, failed: 0, buffered: 0 });
    expect(c.stats()).toMatchObject({ requests: 4, retries: 0, dropped: 0 });
    expect(await metric(w.url, "weir_events_ingested_total")).toBe(ingested0 + 104);

    const series = await getJson(`${w.url}/api/v1/series?match=client.load*`);
    expect(series.series.map((s: any) => [s.key, s.last])).toEqual(
      pages.map((p) => [`client.load{page="${p}"}`, { ts: start + 10_000, value: 1000 }]),
    );
    for (const page of pages) {
      const q = `${w.url}/api/v1/windows?series=${encodeURIComponent(`client.load{page="${page}"}`)}&window=10s&from=${start}&to=${start + 10_000}`;
      await waitFor(async () => (await getJson(q)).windows.length === 1, 5000, `page ${page}'s window closed`);
      expect((await getJson(q)).windows[0]).toMatchObject({ start, end: start + 10_000, count: 25, sum: 300, min: 0, max: 24, first: 0, last: 24 });
    }
    await c.close();
  });

  test("client - a batch re-sent after its answer was lost counts once (ids de-duplicated by weir)", async () => {
    const [ingested0, duplicate0] = [await metric(w.url, "weir_events_ingested_total"), await metric(w.url, "weir_events_duplicate_total")];
    // A proxy that passes the first request to weir and then loses its answer (a 503 in its place).
    const forwarded: string[] = [];
    const proxy = startReceiver(async (req, i) => {
      forwarded.push(req.body);
      const res = await fetch(`${w.url}/api/v1/events`, { method: "POST", body: req.body, headers: { "content-type": "application/json", authorization: req.headers.get("authorization")! } });
      expect(res.status).toBe(202);
      return i === 0 ? reply(503, { error: "answer lost" }) : new Response(await res.text(), { status: res.status });
    });
    const c = createClient({ url: proxy.url, token: ingestToken, flushOnExit: false });
    for (let i = 0; i < 50; i++) c.emit("client.dedupe", i);
    expect(await c.flush()).toEqual({ accepted: 50, rejected: 0, failed: 0, buffered: 0 });
    expect(forwarded).toHaveLength(2);
    expect(forwarded[1]).toBe(forwarded[0]);
    expect(await metric(w.url, "weir_events_ingested_total")).toBe(ingested0 + 50);
    expect(await metric(w.url, "weir_events_duplicate_total")).toBe(duplicate0 + 50);
    await c.close();
    await proxy.stop();
  });

  test("client - a 202 with rejected events counts them, with weir's reason and the event's id", async () => {
    const c = createClient({ url: w.url, token: ingestToken, flushOnExit: false });
    c.emit("client.ok", 1);
    c.emit("9bad", 1, undefined, { id: "bad-1" });
    c.emit("client.ok", 2, { "bad key": "x" }, { id: "bad-2" });
    expect(await c.flush()).toEqual({ accepted: 1, rejected: 2, failed: 0, buffered: 0 });
    expect(c.stats().rejections).toEqual([
      { status: 202, error: "name: must match ^[A-Za-z_][A-Za-z0-9_.:-]*$", events: 1, id: "bad-1", name: "9bad" },
      { status: 202, error: "tags.bad key: key must match ^[A-Za-z_][A-Za-z0-9_]*$ and be ≤ 64 characters", events: 1, id: "bad-2", name: "client.ok" },
    ]);
    const dead = await getJson(`${w.url}/api/v1/deadletters`);
    expect(dead.deadletters.map((d: { event: ClientEvent }) => d.event.id).sort()).toEqual(["bad-1", "bad-2"]);
    await c.close();
  });

  test("client - a wrong token is refused once, not retried, and counted with weir's words", async () => {
    const ingested0 = await metric(w.url, "weir_events_ingested_total");
    const c = createClient({ url: w.url, token: "nobody-knows-me", flushOnExit: false });
    c.emit("client.denied", 1);
    c.emit("client.denied", 2);
    expect(await c.flush()).toEqual({ accepted: 0, rejected: 2, failed: 0, buffered: 0 });
    expect(c.stats()).toMatchObject({ requests: 1, retries: 0, lastError: "HTTP 401: authorization: unknown token" });
    expect(c.stats().rejections[0]).toMatchObject({ status: 401, error: "authorization: unknown token", events: 2 });
    expect(await metric(w.url, "weir_events_ingested_total")).toBe(ingested0);
    await c.close();
  });
});
