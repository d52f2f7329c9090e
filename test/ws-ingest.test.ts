/**
 * GET /ws/ingest over real sockets (API.md "Ingest"): a real weir on port 0
 * fed JSON and MessagePack frames answers one ack per frame in order, bad
 * frames acked with their errors on a socket that stays open, and the
 * windows read back exact; role and Origin checked before the upgrade; and,
 * over a stand-in ingest port whose durability the test holds, acks
 * withheld until durable, in order, past the in-flight bound.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import { websocket } from "hono/bun";
import { Hono } from "hono";
import { loadConfig } from "../src/config.ts";
import type { EngineOutcome } from "../src/engine/ports.ts";
import { wsIngestRoutes } from "../src/http/routes/ws-ingest.ts";
import { limits } from "../src/runtime/limits.ts";
import { silentLog } from "../src/runtime/log.ts";
import { startTestWeir, type TestWeir } from "./helpers/weir.ts";
import { waitFor } from "./helpers/wait.ts";

/** A client socket whose messages are collected as parsed JSON. */
async function connect(url: string): Promise<{ ws: WebSocket; got: any[] }> {
  const ws = new WebSocket(url);
  const got: any[] = [];
  ws.onmessage = (e) => got.push(JSON.parse(String(e.data)));
  await new Promise<void>((resolve, reject) => ((ws.onopen = () => resolve()), (ws.onerror = () => reject(new Error(`cannot connect to ${url}`)))));
  return { ws, got };
}

describe("ws ingest against a real weir", () => {
  let w: TestWeir;
  beforeAll(async () => {
    w = await startTestWeir({ WEIR_TOKENS: "ingest-token:ingest,read-token:read", WEIR_CORS_ORIGINS: "https://shop.example" });
  });
  afterAll(async () => {
    await w.stop();
  });

  test("ws ingest - one ack per frame in order, bad frames acked with their errors, exact windows afterwards", async () => {
    const { ws, got } = await connect(`${w.url.replace("http", "ws")}/ws/ingest?token=ingest-token`);
    const t0 = Math.floor(Date.now() / 10_000) * 10_000 - 60_000;
    const ev = (value: number, dt: number) => ({ name: "wsin.check", value, ts: t0 + dt });
    ws.send(JSON.stringify([ev(1, 0), ev(2, 1000), ev(3, 2000)]));
    ws.send(encode([ev(10, 10_000), ev(20, 11_000)]));
    ws.send("{not json");
    ws.send(JSON.stringify([{ name: "wsin.check", value: "high" }, ev(4, 12_000)]));
    ws.send(JSON.stringify(ev(0, 40_000))); // moves the series' watermark past both windows
    await waitFor(() => got.length === 5, 10_000, "five acks");
    expect(got).toEqual([
      { type: "ack", seq: 1, accepted: 3, rejected: 0, errors: [] },
      { type: "ack", seq: 2, accepted: 2, rejected: 0, errors: [] },
      { type: "ack", seq: 3, accepted: 0, rejected: 0, errors: [], error: "body: invalid JSON" },
      { type: "ack", seq: 4, accepted: 1, rejected: 1, errors: [{ index: 0, error: "value: must be a finite number" }] },
      { type: "ack", seq: 5, accepted: 1, rejected: 0, errors: [] },
    ]);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.close();
    const read = async () => (await (await fetch(`${w.url}/api/v1/windows?series=wsin.check&window=10s&token=read-token`)).json()) as { windows: any[] };
    await waitFor(async () => (await read()).windows.length >= 2, 10_000, "two closed windows");
    const windows = (await read()).windows.slice(0, 2).map((x) => ({ start: x.start, count: x.count, sum: x.sum }));
    expect(windows).toEqual([{ start: t0, count: 3, sum: 6 }, { start: t0 + 10_000, count: 3, sum: 34 }]);
  });

  test("ws ingest - the role and the Origin are checked before the upgrade", async () => {
    const at = (q: string, headers: Record<string, string> = {}) =>
      fetch(`${w.url}/ws/ingest${q}`, { headers: { upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", ...headers } });
    const none = await at("");
    expect([none.status, await none.json()]).toEqual([401, { error: "authorization: bearer token required" }]);
    const reader = await at("?token=read-token");
    expect([reader.status, await reader.json()]).toEqual([403, { error: 'authorization: token lacks role "ingest"' }]);
    const elsewhere = await at("?token=ingest-token", { origin: "https://elsewhere.example" });
    expect([elsewhere.status, await elsewhere.json()]).toEqual([403, { error: 'origin: "https://elsewhere.example" is not in WEIR_CORS_ORIGINS' }]);
    const listed = await connect(`${w.url.replace("http", "ws")}/ws/ingest?token=ingest-token`);
    listed.ws.close();
  });
});

describe("ws ingest over a stand-in port", () => {
  test("ws ingest - acks are withheld until durable and come in order past the in-flight bound", async () => {
    const held: Array<() => void> = [];
    const ingest = {
      ingestBytes: async (): Promise<EngineOutcome> => {
        const durable = new Promise<void>((resolve) => held.push(resolve));
        return { accepted: 1, duplicates: 0, rejected: 0, errors: [], reasons: {}, rejects: [], durable };
      },
    };
    const app = new Hono().route("/", wsIngestRoutes({ ingest, cfg: loadConfig({ WEIR_DATA_DIR: "/nonexistent-never-opened" }), log: silentLog }));
    const server = Bun.serve({ port: 0, fetch: app.fetch, websocket });
    try {
      const { ws, got } = await connect(`ws://127.0.0.1:${server.port}/ws/ingest`);
      const frames = limits.wsIngestFramesInFlightMax + 8;
      for (let i = 0; i < frames; i++) ws.send(JSON.stringify({ name: "x", value: i }));
      await waitFor(() => held.length >= limits.wsIngestFramesInFlightMax, 5000, "the in-flight frames taken");
      expect(got).toEqual([]); // nothing is durable yet: no ack
      for (let k = 0; k < frames; k++) {
        await waitFor(() => held.length > k, 5000, `frame ${k + 1} taken`);
        held[k]();
      }
      await waitFor(() => got.length === frames, 5000, "every ack");
      expect(got.map((a) => a.seq)).toEqual(Array.from({ length: frames }, (_, i) => i + 1));
      ws.close();
    } finally {
      await server.stop(true);
    }
  });
});
