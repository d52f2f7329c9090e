/**
 * GET /api/v1/openapi.json: an OpenAPI 3.1 document made from the routes'
 * own zod schemas. Every registered route is in it and everything in it is
 * a registered route (Hono's app.routes), each operation well formed; and
 * a parameter the routes' schema validates shows in the document.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Hono } from "hono";
import { join } from "node:path";
import { createApp } from "../src/http/app.ts";
import { silentLog } from "../src/runtime/log.ts";
import { openReader } from "../src/storage/db.ts";
import { startTestWeir, type TestWeir } from "./helpers/weir.ts";

let w: TestWeir;
let app: Hono;
let doc: { openapi: string; info: { version: string }; paths: Record<string, Record<string, Record<string, unknown>>> };

beforeAll(async () => {
  w = await startTestWeir({});
  const e = w.engine;
  app = createApp({
    ingest: e, read: e.readModel(openReader(join(w.dataDir, "weir.db"))), live: e.fanout, ops: e, rules: e.rules, views: e.views, tables: e.tables,
    cfg: e.cfg, log: silentLog, lake: w.lake,
  });
  const res = await app.request("/api/v1/openapi.json");
  expect(res.status).toBe(200);
  doc = await res.json();
});

afterAll(async () => {
  await w.stop();
});

/** The page's static files and the catch-all 404 are not API operations. */
const notOperations = (key: string) => /^GET \/(.*\.(js|css|html))?$/.test(key) || key === "GET /api/v1/*";

describe("openapi", () => {
  test("openapi - every registered route is documented, and every documented operation is a registered route", () => {
    const registered = [...new Set(app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${r.path}`))].filter((k) => !notOperations(k));
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ":$1")}`));
    expect(registered.filter((k) => !documented.includes(k))).toEqual([]);
    expect(documented.filter((k) => !registered.includes(k))).toEqual([]);
    expect(registered.length).toBeGreaterThan(40);
  });

  test("openapi - a 3.1 document: every operation with a summary, a unique id, responses, and 4xx/5xx answers as the JSON error", () => {
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info.version).toMatch(/^\d+\.\d+\.\d+$/);
    const ids = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths)) {
      expect(path.startsWith("/")).toBe(true);
      for (const [method, op] of Object.entries(ops)) {
        expect(["get", "post", "put", "patch", "delete"]).toContain(method);
        expect(typeof op.summary).toBe("string");
        expect(ids.has(op.operationId as string)).toBe(false);
        ids.add(op.operationId as string);
        const responses = op.responses as Record<string, { description: string; content?: Record<string, { schema: unknown }> }>;
        expect(Object.keys(responses).length).toBeGreaterThan(0);
        for (const [status, r] of Object.entries(responses)) {
          expect(typeof r.description).toBe("string");
          if (Number(status) >= 400) expect(r.content?.["application/json"]?.schema).toEqual({ $ref: "#/components/schemas/Error" });
        }
        for (const p of (op.parameters as Array<{ name: string; in: string; schema: unknown }> | undefined) ?? []) {
          expect(["path", "query"]).toContain(p.in);
          expect(typeof p.schema).toBe("object");
          if (p.in === "path") expect(path).toContain(`{${p.name}}`);
        }
      }
    }
  });

  test("openapi - what the routes validate is what the document says: windows' parameters, the event schema, a rule's body", () => {
    const windows = doc.paths["/api/v1/windows"].get.parameters as Array<{ name: string; required: boolean }>;
    expect(windows.map((p) => [p.name, p.required])).toEqual(expect.arrayContaining([["series", true], ["window", false], ["limit", false], ["from", false], ["to", false], ["format", false]]));
    const events = doc.paths["/api/v1/events"].post.requestBody as { content: Record<string, { schema: { anyOf: Array<Record<string, unknown>> } }> };
    const one = events.content["application/json"].schema.anyOf[0] as { required: string[]; properties: Record<string, unknown>; additionalProperties: boolean };
    expect([one.required, Object.keys(one.properties).sort(), one.additionalProperties]).toEqual([["name"], ["id", "name", "props", "tags", "ts", "value"], false]);
    const rule = doc.paths["/api/v1/rules/{name}"].put.requestBody as { content: Record<string, { schema: { properties: Record<string, unknown>; required?: string[] } }> };
    expect(Object.keys(rule.content["application/json"].schema.properties)).toEqual(expect.arrayContaining(["expr", "for", "severity", "actions"]));
    expect(doc.paths["/api/v1/rules/{name}"].put["x-weir-role"]).toBe("admin");
    expect(doc.paths["/health"].get.security).toEqual([]);
  });
});
