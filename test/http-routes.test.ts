/**
 * The routes over stand-in ports (engine/ports.ts): no engine, no worker
 * threads, no SQLite. Each route's validation, status and exact body, for
 * accepted and rejected requests, through app.request().
 */
import { describe, expect, test } from "bun:test";
import { BodyError } from "../src/actors/ingest-body.ts";
import { loadConfig } from "../src/config.ts";
import { OverloadedError } from "../src/engine/errors.ts";
import type { EngineOutcome, IngestPort, LivePort, OpsPort, ReadModel, RulesPort, TablesPort, ViewsPort } from "../src/engine/ports.ts";
import type { WindowRow } from "../src/engine/read-model.ts";
import { createApp } from "../src/http/app.ts";
import { silentLog } from "../src/runtime/log.ts";

const window10s = (start: number, count: number): WindowRow => ({
  start, end: start + 10_000, count, sum: count * 2, min: 1, max: 3, avg: 2, p50: 2, p95: 3, p99: 3, first: 1, last: 3,
});

/** A read model of fixed answers that records what it was asked. */
function fixedReadModel(asked: unknown[]): ReadModel {
  return {
    labels: ["10s", "60s", "1m", "1h"],
    specs: ["10s", "60s"],
    series: (match, limit) => {
      asked.push({ series: ["cpu{host=a}", "cpu", "mem"].map((k) => match.test(k)), limit }); // what the compiled glob takes
      return [{ key: "cpu{host=a}", name: "cpu", tags: { host: "a" }, last: { ts: 5, value: 1 }, trend: "stable", anomaly: null }];
    },
    windows: (q) => {
      asked.push({ windows: q });
      return [window10s(0, 4), window10s(10_000, 6)];
    },
    anomalies: (q) => {
      asked.push({ anomalies: q });
      return [];
    },
    trends: () => [],
    top: (q) => ({ window: q.window, end: 20_000, items: [{ key: "eu", value: 7 }] }),
    deadletters: (since, limit) => {
      asked.push({ deadletters: { since, limit } });
      return [];
    },
    ruleAlerts: (q) => {
      asked.push({ ruleAlerts: q });
      return [];
    },
  };
}

/** Rules that nobody put: every route answers from an empty book. */
const noRules: RulesPort = { list: () => [], get: () => undefined, put: async () => ({ created: true }), delete: async () => false, actionStatus: () => [] };
const noViews: ViewsPort = { list: () => [], get: () => undefined, put: async () => ({ created: true }), delete: async () => false };

/** Tables that nobody put: lists are empty, changes find no table. */
const noTables: TablesPort = { list: () => [], get: () => undefined, put: async () => { throw new Error("no tables here"); }, patch: async () => undefined, delete: async () => false };

const noLive: LivePort = { add: () => -1, remove: () => {}, handleOp: () => {}, subscribe: () => null };

function appWith(ingest: IngestPort, ops: OpsPort = { notReady: () => [], metricsText: () => "# none\n" }, asked: unknown[] = [], env: Record<string, string> = {}) {
  const cfg = loadConfig({ WEIR_DATA_DIR: "/nonexistent-never-opened", ...env });
  return createApp({ ingest, read: fixedReadModel(asked), live: noLive, ops, rules: noRules, views: noViews, tables: noTables, cfg, log: silentLog });
}

const accepted = (n: number): EngineOutcome => ({ accepted: n, duplicates: 0, rejected: 0, errors: [], reasons: {}, rejects: [] });
const json = (body: string) => ({ method: "POST", body, headers: { "content-type": "application/json" } });

describe("http routes over stand-in ports (no threads, no SQLite)", () => {
  test("routes - POST /api/v1/events hands the body to the ingest port and answers 202 with its outcome", async () => {
    const seen: Array<[string, string]> = [];
    const app = appWith({ ingestBytes: async (bytes, format) => (seen.push([new TextDecoder().decode(bytes), format]), accepted(1)) });
    const r = await app.request("/api/v1/events", json('{"name":"a"}'));
    expect([r.status, await r.json()]).toEqual([202, { accepted: 1, rejected: 0, errors: [] }]);
    expect(seen).toEqual([['{"name":"a"}', "json"]]);
  });

  test("routes - POST /api/v1/events: the port's BodyError is 400, OverloadedError 503 with Retry-After, a bad content type 415 before the port", async () => {
    let calls = 0;
    const bad = appWith({ ingestBytes: async () => { calls++; throw new BodyError("body: invalid JSON"); } });
    const r400 = await bad.request("/api/v1/events", json("{nope"));
    expect([r400.status, await r400.json()]).toEqual([400, { error: "body: invalid JSON" }]);
    const full = appWith({ ingestBytes: async () => { calls++; throw new OverloadedError("partition 1 queue full", 503, 2); } });
    const r503 = await full.request("/api/v1/events", json("[]"));
    expect([r503.status, r503.headers.get("retry-after"), await r503.json()])
      .toEqual([503, "2", { error: "overloaded: partition 1 queue full; nothing of this request was accepted" }]);
    const r415 = await full.request("/api/v1/events", { method: "POST", body: "x", headers: { "content-type": "text/csv" } });
    expect(r415.status).toBe(415);
    expect(calls).toBe(2);
  });

  test("routes - GET /api/v1/windows passes the validated range to the read model; rows and columns", async () => {
    const asked: unknown[] = [];
    const app = appWith({ ingestBytes: async () => accepted(0) }, undefined, asked);
    const rows = await app.request("/api/v1/windows?series=cpu%7Bhost%3Da%7D&from=0&to=20000&limit=5");
    expect([rows.status, await rows.json()]).toEqual([200, { series: "cpu{host=a}", window: "10s", windows: [window10s(0, 4), window10s(10_000, 6)] }]);
    expect(asked).toEqual([{ windows: { series: "cpu{host=a}", window: "10s", from: 0, to: 20_000, limit: 5 } }]);
    const cols = await (await app.request("/api/v1/windows?series=s&window=1h&format=columns")).json();
    expect([cols.start, cols.end, cols.count]).toEqual([[0, 10_000], [10_000, 20_000], [4, 6]]);
  });

  test("routes - GET /api/v1/windows rejected: an unknown window, from after to, a missing series, an unknown field (400 naming it; the read model not asked)", async () => {
    const asked: unknown[] = [];
    const app = appWith({ ingestBytes: async () => accepted(0) }, undefined, asked);
    const cases: Array<[string, string]> = [
      ["/api/v1/windows?series=s&window=5s", "window: must be one of 10s, 60s, 1m, 1h, or a view's window"],
      ["/api/v1/windows?series=s&from=10&to=5", "from: must not be after to"],
      ["/api/v1/windows", "series: required"],
      ["/api/v1/windows?series=s&color=red", "color: unknown field"],
    ];
    for (const [url, error] of cases) {
      const r = await app.request(url);
      expect([url, r.status, (await r.json()).error]).toEqual([url, 400, error]);
    }
    expect(asked).toEqual([]);
  });

  test("routes - series, top and dead letters answer what the read model gives; /ready and /metrics what the ops port says", async () => {
    const asked: unknown[] = [];
    let problems: string[] = [];
    const app = appWith({ ingestBytes: async () => accepted(0) }, { notReady: () => problems, metricsText: () => "weir_x 1\n" }, asked);
    expect((await (await app.request("/api/v1/series?match=cpu*&limit=3")).json()).series.map((s: { key: string }) => s.key)).toEqual(["cpu{host=a}"]);
    expect(await (await app.request("/api/v1/top?name=cpu&by=region")).json()).toEqual({ window: "10s", end: 20_000, items: [{ key: "eu", value: 7 }] });
    expect((await app.request("/api/v1/top?name=cpu&by=region&window=1h")).status).toBe(400); // top reads the configured specs only
    expect(await (await app.request("/api/v1/deadletters?since=7&limit=2")).json()).toEqual({ deadletters: [] });
    expect(asked).toEqual([{ series: [true, true, false], limit: 3 }, { deadletters: { since: 7, limit: 2 } }]);
    expect([(await app.request("/ready")).status, await (await app.request("/metrics")).text()]).toEqual([200, "weir_x 1\n"]);
    problems = ["partition-1 is restarting"];
    const r = await app.request("/ready");
    expect([r.status, await r.json()]).toEqual([503, { error: "not ready: partition-1 is restarting", problems }]);
  });

  test("routes - cross-origin: none allowed by default (403 JSON before the route), no Origin and weir's own origin pass, a listed origin gets its headers and its preflight", async () => {
    let taken = 0;
    const port: IngestPort = { ingestBytes: async () => (taken++, accepted(1)) };
    const post = (origin?: string) => ({ method: "POST", body: '{"name":"a"}', headers: { "content-type": "text/plain", ...(origin ? { origin } : {}) } });
    const shut = appWith(port);
    const refused = await shut.request("http://weir.local/api/v1/events", post("https://elsewhere.example"));
    expect([refused.status, await refused.json(), taken]).toEqual([403, { error: 'origin: "https://elsewhere.example" is not in WEIR_CORS_ORIGINS' }, 0]);
    expect((await shut.request("http://weir.local/api/v1/events", post())).status).toBe(202); // curl, the SDK: no Origin
    expect((await shut.request("http://weir.local/api/v1/events", post("http://weir.local"))).status).toBe(202); // the dashboard itself
    expect((await shut.request("http://weir.local/api/v1/events", post("https://weir.local"))).status).toBe(202); // itself behind a proxy that ends TLS
    expect((await shut.request("http://weir.local/api/v1/events", post("null"))).status).toBe(403); // a sandboxed page
    expect((await shut.request("http://weir.local/ws/live", { headers: { origin: "https://elsewhere.example", upgrade: "websocket" } })).status).toBe(403);
    const open = appWith(port, undefined, [], { WEIR_CORS_ORIGINS: "https://shop.example, http://localhost:3000" });
    const ok = await open.request("http://weir.local/api/v1/events", post("https://shop.example"));
    expect([ok.status, ok.headers.get("access-control-allow-origin"), ok.headers.get("vary"), ok.headers.get("access-control-expose-headers")])
      .toEqual([202, "https://shop.example", "Origin", "Retry-After"]);
    const pre = await open.request("http://weir.local/api/v1/events", { method: "OPTIONS", headers: { origin: "http://localhost:3000", "access-control-request-method": "POST" } });
    expect([pre.status, pre.headers.get("access-control-allow-origin"), pre.headers.get("access-control-allow-methods"), pre.headers.get("access-control-allow-headers")])
      .toEqual([204, "http://localhost:3000", "GET, POST, PUT, PATCH, DELETE, OPTIONS", "authorization, content-type, content-encoding, idempotency-key"]);
    expect((await open.request("http://weir.local/api/v1/events", post("https://shop.example.evil"))).status).toBe(403); // exact, not a prefix
    expect(taken).toBe(4); // no Origin, its own twice, and the listed one
  });
});
