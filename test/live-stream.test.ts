import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { waitFor } from "./helpers/wait.ts";
import { postEvents, startTestWeir, type TestWeir } from "./helpers/weir.ts";
import { readSse } from "./helpers/sse.ts";

describe("live - SSE and the stats topic", () => {
  let w: TestWeir;
  const base = Math.floor(Date.now() / 10_000) * 10_000 - 120_000;
  beforeAll(async () => {
    w = await startTestWeir();
  });
  afterAll(() => w.stop());

  test("sse - hello, then window results of the subscribed topic, as in /ws/live", async () => {
    const res = await fetch(`${w.url}/api/v1/stream?topic=windows:10s:sse.*`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const got: Array<{ event: string; data: unknown }> = [];
    const s = readSse(res, got);
    await waitFor(() => got.length > 0, 5000, "hello");
    expect(got[0]).toEqual({ event: "message", data: { type: "hello", version: "0.1.0", windows: ["10s", "60s/10s"] } });
    await postEvents(w.url, JSON.stringify([{ name: "sse.v", value: 3, ts: base }, { name: "other.v", value: 1, ts: base }, { name: "sse.v", value: 0, ts: base + 20_000 }, { name: "other.v", value: 0, ts: base + 20_000 }]));
    await waitFor(() => got.some((m) => (m.data as { type: string }).type === "window"), 5000, "window over SSE");
    const windows = got.filter((m) => (m.data as { type: string }).type === "window").map((m) => m.data);
    expect(windows).toEqual([expect.objectContaining({ type: "window", series: "sse.v", window: "10s", start: base, count: 1, sum: 3 })]);
    await s.cancel();
    await waitFor(() => w.engine.fanout.size === 0, 5000, "client removed on cancel");
  });

  test("sse - a missing topic is 400, an unknown one ends the stream with an error event", async () => {
    const none = await fetch(`${w.url}/api/v1/stream`);
    expect(none.status).toBe(400);
    expect(await none.json()).toEqual({ error: "topic: required (e.g. topic=windows:10s:*)" });
    const res = await fetch(`${w.url}/api/v1/stream?topic=bogus`);
    const text = await res.text(); // the server closes it
    expect(text).toContain('event: error\ndata: {"error":"topics: \\"bogus\\": unknown topic');
    expect(w.engine.fanout.size).toBe(0);
  });

  test("stats - engine figures each second on the stats topic", async () => {
    const live: Array<Record<string, unknown>> = [];
    const ws = new WebSocket(w.url.replace("http", "ws") + "/ws/live");
    ws.onmessage = (m) => live.push(JSON.parse(String(m.data)));
    await waitFor(() => live.length > 0, 5000, "hello");
    ws.send(JSON.stringify({ op: "subscribe", topics: ["stats"] }));
    await postEvents(w.url, JSON.stringify({ name: "stats.v", value: 1 }));
    await waitFor(() => live.some((m) => m.type === "stats" && Number(m.ingested) >= 5), 5000, "a stats message");
    const s = live.find((m) => m.type === "stats")!;
    expect(Object.keys(s).sort()).toEqual(["clients", "duplicates", "eventsPerSec", "ingested", "late", "queueDepthBytes", "rejected", "rssBytes", "series", "ts", "type", "windows", "windowsPerSec"]);
    expect(s.queueDepthBytes).toEqual([expect.any(Number), expect.any(Number)]);
    ws.close();
  });
});
