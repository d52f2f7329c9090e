/**
 * The demo's views and users table (src/sim/demo-scenario.ts): the table is
 * the simulators' user pool as CSV, the three views are valid and come with
 * WEIR_DEMO unless the config file has views or tables of its own (or in
 * cluster mode), and the demo's table changes keep at most one user off its
 * pool segment, through a real weir's table book.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config.ts";
import { parseView } from "../src/actors/views/view.ts";
import { demoScenario, demoUsersTable, demoViews, segmentMoves, startDemoMoves, usesDemoUsers } from "../src/sim/demo-scenario.ts";
import { createUserPool, usersCsv } from "../src/sim/shop-users.ts";
import { waitFor } from "./helpers/wait.ts";
import { startTestWeir } from "./helpers/weir.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("demo scenario", () => {
  test("demo scenario - the users table is the simulators' pool as CSV: every user once, with its segment and country", () => {
    const pool = createUserPool();
    const csv = usersCsv(pool);
    expect(csv).toBe(usersCsv(createUserPool())); // deterministic
    expect(csv.split("\n")[0]).toBe("user_id,segment,country");
    const t = demoUsersTable();
    expect([t.name, t.file, t.rows.key, t.rows.columns]).toEqual(["users", demoScenario.usersFile, "user_id", ["user_id", "segment", "country"]]);
    expect(t.rows.rows.size).toBe(500);
    for (const u of pool.users) expect(t.rows.rows.get(u.id)).toEqual({ user_id: u.id, segment: u.segment, country: u.country });
  });

  test("demo scenario - the three views are valid: a count by segment and event name, running revenue, a having over 5 minutes", () => {
    const views = demoViews().map((d) => parseView(d));
    expect(views.map((v) => [v.name, v.window.label, v.aggregates, v.emit, v.having?.text ?? null])).toEqual([
      ["events_per_minute_by_segment", "1m", ["count"], "final", null],
      ["revenue_per_minute", "1m", ["sum", "count", "avg"], "changes", null],
      ["high_activity_users", "5m", ["count"], "final", "count > 100"],
    ]);
    expect(views[0].groupBy.map((g) => g.kind)).toEqual(["column", "name"]);
  });

  test("demo scenario - WEIR_DEMO brings them unless the config file has its own, or in cluster mode", () => {
    const demo = loadConfig({ WEIR_DEMO: "1" });
    expect(demo.views.map((v) => (v as { name: string }).name)).toEqual(["events_per_minute_by_segment", "revenue_per_minute", "high_activity_users"]);
    expect(usesDemoUsers(demo.tables)).toBe(true);
    const plain = loadConfig({});
    expect([plain.views, plain.tables]).toEqual([[], []]);
    expect(usesDemoUsers(plain.tables)).toBe(false);
    const dir = mkdtempSync(join(tmpdir(), "weir-demo-scenario-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, "users.csv"), "user_id,segment\nu1,gold\n");
    writeFileSync(join(dir, "own.json"), JSON.stringify({ views: [{ name: "mine", from: "x", window: "1m" }], tables: { users: { file: "users.csv", key: "user_id" } } }));
    const own = loadConfig({ WEIR_DEMO: "1", WEIR_CONFIG: join(dir, "own.json") });
    expect(own.views).toEqual([{ name: "mine", from: "x", window: "1m" }]);
    expect(usesDemoUsers(own.tables)).toBe(false);
    writeFileSync(join(dir, "none.json"), JSON.stringify({ views: [] }));
    const none = loadConfig({ WEIR_DEMO: "1", WEIR_CONFIG: join(dir, "none.json") });
    expect([none.views, usesDemoUsers(none.tables)]).toEqual([[], true]); // views: [] says none; the table still comes
    const cluster = loadConfig({ WEIR_DEMO: "1", WEIR_NATS_URL: "nats://127.0.0.1:4222", WEIR_NATS_CLUSTER: "1" });
    expect([cluster.views, cluster.tables]).toEqual([[], []]);
  });

  test("demo scenario - segment moves: each move puts the user moved before back, so at most one user is ever off its pool segment", () => {
    const pool = createUserPool();
    const next = segmentMoves(pool, 7);
    const table = new Map<string, { user_id: string; segment: string; country: string }>(pool.users.map((u) => [u.id, { user_id: u.id, segment: u.segment, country: u.country }]));
    const bySegment = new Map(pool.users.map((u) => [u.id, u.segment]));
    const movedUsers = new Set<string>();
    for (let i = 0; i < 2_000; i++) {
      const rows = next();
      expect(new Set(rows.map((r) => r.user_id)).size).toBe(rows.length); // a key once per PATCH body
      const moved = rows.at(-1)!;
      expect(moved.segment).not.toBe(bySegment.get(moved.user_id));
      for (const r of rows) table.set(r.user_id, { user_id: r.user_id, segment: r.segment, country: r.country });
      const off = [...table.values()].filter((r) => r.segment !== bySegment.get(r.user_id));
      expect(off.map((r) => r.user_id)).toEqual([moved.user_id]);
      expect(table.get(moved.user_id)!.country).toBe(pool.users.find((u) => u.id === moved.user_id)!.country);
      movedUsers.add(moved.user_id);
    }
    expect(movedUsers.size).toBeGreaterThan(400); // spread over the pool
    expect(segmentMoves(pool, 7)()).toEqual(segmentMoves(pool, 7)());
  });

  test("demo scenario - a real demo weir: the moves go through its table book while events flow", async () => {
    const w = await startTestWeir({ WEIR_DEMO: "1", WEIR_DEMO_RATE: "50", WEIR_DEMO_BACKFILL: "0s" });
    cleanups.push(() => w.stop());
    const errors: Error[] = [];
    const before = w.engine.tables.list().find((t) => t.name === "users")!;
    expect([before.count, before.source]).toEqual([500, "config"]);
    // The server's own mover waits moveIntervalMs between moves; this one moves every 20 ms through the same book.
    const moves = startDemoMoves({
      patch: (rows) => w.engine.tables.patch("users", { text: JSON.stringify(rows), format: "json" }, undefined),
      onError: (e) => errors.push(e), intervalMs: 20,
    });
    cleanups.push(() => moves.stop());
    await waitFor(() => (w.engine.tables.list().find((t) => t.name === "users")?.version ?? 0) >= before.version + 5, 10_000, "five moves");
    moves.stop();
    await waitFor(async () => {
      const t = await (await fetch(`${w.url}/api/v1/tables/users?limit=1000`)).json();
      return t.source === "api" && t.count === 500;
    }, 5_000, "the moved table listed as the API's");
    const t = await (await fetch(`${w.url}/api/v1/tables/users?limit=1000`)).json();
    const pool = new Map(createUserPool().users.map((u) => [u.id, u.segment]));
    const off = (t.rows as Array<{ user_id: string; segment: string }>).filter((r) => r.segment !== pool.get(r.user_id));
    expect(off.length).toBeLessThanOrEqual(1);
    expect(errors).toEqual([]);
  }, 30_000);
});
