/**
 * The authorization matrix, generated from the route list (Hono's
 * app.routes): every registered method and path is asked with no token,
 * and with an ingest, a read and an admin token, and each answer's class
 * (401, 403, or past authorization) must match the role the route needs.
 * A route added without an entry in `needs` fails here, and so does an
 * entry for a route that is gone: no route escapes the check.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Hono } from "hono";
import { join } from "node:path";
import { createApp } from "../src/http/app.ts";
import { silentLog } from "../src/runtime/log.ts";
import { openReader } from "../src/storage/db.ts";
import { startTestWeir, type TestWeir } from "./helpers/weir.ts";

/** "any": a known token of whatever role. */
type Need = "none" | "any" | "ingest" | "read" | "admin";

/** What each route needs (API.md "Security": all but /health and the page's files need a token; admin alone changes definitions). */
const needs: Record<string, Need> = {
  "GET /": "none", "GET /index.html": "none", "GET /app.js": "none", "GET /style.css": "none", "GET /dashboard.js": "none",
  "GET /charts.js": "none", "GET /views.js": "none", "GET /beacon.js": "none", "GET /busiest.js": "none", "GET /link.js": "none", "GET /picker.js": "none", "GET /select.js": "none", "GET /vendor/uPlot.esm.js": "none", "GET /vendor/uPlot.min.css": "none",
  "GET /health": "none", "GET /ready": "read", "GET /metrics": "read",
  "POST /api/v1/events": "ingest", "POST /write": "ingest", "POST /api/v1/write": "ingest", "GET /ws/ingest": "ingest",
  "GET /ws/live": "read", "GET /api/v1/stream": "read",
  "GET /api/v1/deadletters": "read", "GET /api/v1/anomalies": "read", "GET /api/v1/alerts": "read", "GET /api/v1/trends": "read",
  "GET /api/v1/top": "read", "GET /api/v1/series": "read", "GET /api/v1/windows": "read",
  "GET /api/v1/*": "any", // the 404 of an unknown path: 401 to a stranger first, so the API's shape is not disclosed
  "GET /api/v1/openapi.json": "read",
  // Added by the dashboard/demo work running beside this (expectations per API.md "Security": reads need `read`).
  "GET /api/v1/dashboard": "read", "GET /api/v1/metrics/iot/latest": "read", "GET /api/v1/metrics/iot/history": "read",
  "GET /api/v1/metrics/activity/latest": "read", "GET /api/v1/metrics/activity/leaderboard": "read",
  "POST /api/v1/query": "read", "GET /api/v1/catalog": "read", "GET /api/v1/export": "read",
  "GET /api/v1/rules": "admin", "GET /api/v1/rules/:name": "admin", "PUT /api/v1/rules/:name": "admin", "DELETE /api/v1/rules/:name": "admin",
  "POST /api/v1/rules/test": "admin",
  // The views' definitions are admin's to read, like the rules'.
  "GET /api/v1/views": "admin", "GET /api/v1/views/:name": "admin", "PUT /api/v1/views/:name": "admin", "DELETE /api/v1/views/:name": "admin",
  "GET /api/v1/tables": "read", "GET /api/v1/tables/:name": "read", "PUT /api/v1/tables/:name": "admin", "PATCH /api/v1/tables/:name": "admin",
  "DELETE /api/v1/tables/:name": "admin",
  "GET /api/v1/metric-views": "read", "GET /api/v1/metric-views/:name": "read", "PUT /api/v1/metric-views/:name": "admin",
  "DELETE /api/v1/metric-views/:name": "admin",
};

const tokens = { ingest: "ingest-token-1", read: "read-token-1", admin: "admin-token-1" };
const callers = ["none", "ingest", "read", "admin"] as const;

/** The status class a caller must get from a route needing `need`: 401, 403, or "ok" (anything else: past authorization). */
function expected(need: Need, caller: (typeof callers)[number]): "401" | "403" | "ok" {
  if (need === "none" || caller === "admin") return "ok";
  if (caller === "none") return "401";
  if (need === "any") return "ok";
  return caller === need ? "ok" : "403";
}

const classOf = (status: number) => status === 401 ? "401" : status === 403 ? "403" : "ok";

let w: TestWeir;
let app: Hono;

beforeAll(async () => {
  w = await startTestWeir({ WEIR_TOKENS: `${tokens.ingest}:ingest,${tokens.read}:read,${tokens.admin}:admin` });
  const e = w.engine;
  app = createApp({
    ingest: e, read: e.readModel(openReader(join(w.dataDir, "weir.db"))), live: e.fanout, ops: e, rules: e.rules, views: e.views, tables: e.tables,
    cfg: e.cfg, log: silentLog, lake: w.lake,
  });
});

afterAll(async () => {
  await w.stop();
});

/** Every route as "METHOD path", middleware (ALL) left out. */
function routeKeys(): string[] {
  return [...new Set(app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${r.path}`))];
}

describe("http authorization", () => {
  test("http authorization - every route has an expectation, and every expectation a route", () => {
    const keys = routeKeys();
    expect(keys.filter((k) => !(k in needs))).toEqual([]);
    expect(Object.keys(needs).filter((k) => !keys.includes(k))).toEqual([]);
  });

  test("http authorization - each route answers no token, ingest, read and admin tokens as its role says", async () => {
    const wrong: string[] = [];
    for (const key of routeKeys()) {
      const [method, pattern] = key.split(" ");
      // A name that exists nowhere: a change is refused as a bad body or a 404, never made.
      const path = pattern.replace(/:[A-Za-z_]+/g, "authz_probe").replace("*", "authz_probe");
      for (const caller of callers) {
        const headers: Record<string, string> = caller === "none" ? {} : { authorization: `Bearer ${tokens[caller]}` };
        const res = await app.request(path, { method, headers });
        await res.arrayBuffer();
        const want = expected(needs[key] ?? "admin", caller);
        if (classOf(res.status) !== want) wrong.push(`${key} as ${caller}: ${res.status}, expected ${want}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  test("http authorization - a refusal is the JSON error API.md promises", async () => {
    const none = await app.request("/api/v1/rules", { method: "GET" });
    expect([none.status, await none.json()]).toEqual([401, { error: "authorization: bearer token required" }]);
    const read = await app.request("/api/v1/rules/x", { method: "PUT", headers: { authorization: `Bearer ${tokens.read}` } });
    expect([read.status, await read.json()]).toEqual([403, { error: 'authorization: token lacks role "admin"' }]);
  });
});
