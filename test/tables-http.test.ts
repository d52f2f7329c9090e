/**
 * Reference tables against a real weir (engine, store writer thread,
 * SQLite, HTTP): the config file's tables loaded at start, the routes
 * (list, rows, PUT CSV and JSON, PATCH upsert, DELETE), their rejections
 * with the exact error, roles with WEIR_TOKENS, and the admin API's changes
 * kept across a restart over the config file's tables.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RefTable } from "../src/actors/views/table.ts";
import { loadConfig } from "../src/config.ts";
import { limits } from "../src/runtime/limits.ts";
import { startTestWeir, type TestWeir } from "./helpers/weir.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A config directory with users.csv and regions.json, and weir.yaml naming them. */
function configDir(): string {
  const dir = tempDir("weir-tables-cfg-");
  writeFileSync(join(dir, "users.csv"), '\uFEFFuser_id,segment,name\r\nu1,gold,"Smith, Ann"\r\nu2,silver,Bo\r\nu3,gold,"Li ""Lee"""\r\n');
  writeFileSync(join(dir, "regions.json"), JSON.stringify([{ code: "DE", zone: 1 }, { code: "FR", zone: 1 }]));
  writeFileSync(join(dir, "weir.yaml"), "tables:\n  users: {file: users.csv, key: user_id}\n  regions: {file: regions.json, key: code}\n");
  return join(dir, "weir.yaml");
}

async function call(w: TestWeir, method: string, path: string, body?: string, contentType?: string, token?: string) {
  const headers: Record<string, string> = {};
  if (contentType !== undefined) headers["content-type"] = contentType;
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const r = await fetch(`${w.url}${path}`, { method, body, headers });
  const text = await r.text();
  return { status: r.status, body: text.length > 0 ? JSON.parse(text) : null };
}

describe("tables over HTTP against a real weir", () => {
  test("tables - the config file's tables listed; rows paged; PUT CSV and JSON, PATCH upsert, DELETE; kept across a restart over the file's", async () => {
    const config = configDir();
    const data = tempDir("weir-tables-data-");
    let w = await startTestWeir({ WEIR_CONFIG: config }, data);
    cleanups.push(() => w.stop());
    const changes: Array<[string, number | null]> = [];
    w.engine.tables.onChange((name, t) => changes.push([name, t?.rows.size ?? null]));

    expect(await call(w, "GET", "/api/v1/tables")).toEqual({ status: 200, body: { tables: [
      { name: "users", key: "user_id", columns: ["user_id", "segment", "name"], count: 3, version: 1, source: "config" },
      { name: "regions", key: "code", columns: ["code", "zone"], count: 2, version: 2, source: "config" },
    ] } });
    const page = await call(w, "GET", "/api/v1/tables/users?limit=2");
    expect(page.body.rows).toEqual([{ user_id: "u1", segment: "gold", name: "Smith, Ann" }, { user_id: "u2", segment: "silver", name: "Bo" }]);
    expect([page.body.offset, page.body.more, page.body.count]).toEqual([0, true, 3]);
    const rest = await call(w, "GET", "/api/v1/tables/users?offset=2");
    expect([rest.body.rows, rest.body.more]).toEqual([[{ user_id: "u3", segment: "gold", name: 'Li "Lee"' }], false]);
    expect(await call(w, "GET", "/api/v1/tables/nope")).toEqual({ status: 404, body: { error: 'name: no table "nope"' } });

    const made = await call(w, "PUT", "/api/v1/tables/plans?key=plan", "plan,price\r\nbasic,10\r\npro,30\r\n", "text/csv");
    expect(made).toEqual({ status: 201, body: { name: "plans", key: "plan", columns: ["plan", "price"], count: 2, version: 3, source: "api" } });
    const replaced = await call(w, "PUT", "/api/v1/tables/plans", JSON.stringify([{ plan: "team", price: 99, seats: 5 }]), "application/json");
    expect(replaced).toEqual({ status: 200, body: { name: "plans", key: "plan", columns: ["plan", "price", "seats"], count: 1, version: 4, source: "api" } });
    expect((await call(w, "GET", "/api/v1/tables/plans")).body.rows).toEqual([{ plan: "team", price: "99", seats: "5" }]);

    const patched = await call(w, "PATCH", "/api/v1/tables/users", JSON.stringify([{ user_id: "u2", segment: "platinum" }, { user_id: "u9", segment: "new" }]), "application/json");
    expect(patched).toEqual({ status: 200, body: { name: "users", key: "user_id", columns: ["user_id", "segment", "name"], count: 4, version: 5, source: "api", inserted: 1, updated: 1 } });
    const nd = await call(w, "PATCH", "/api/v1/tables/users?key=user_id", '{"user_id": "u3", "segment": "silver", "name": "Li"}\n', "application/x-ndjson");
    expect([nd.status, nd.body.inserted, nd.body.updated, nd.body.version]).toEqual([200, 0, 1, 6]);
    expect((await call(w, "DELETE", "/api/v1/tables/regions")).status).toBe(204);
    expect((await call(w, "DELETE", "/api/v1/tables/regions")).status).toBe(404);
    expect((await call(w, "DELETE", "/api/v1/tables/plans")).status).toBe(204);
    expect(changes).toEqual([["plans", 2], ["plans", 1], ["users", 4], ["users", 4], ["regions", null], ["plans", null]]);

    await w.stop();
    w = await startTestWeir({ WEIR_CONFIG: config }, data);
    const after = await call(w, "GET", "/api/v1/tables");
    expect(after.body.tables).toEqual([{ name: "users", key: "user_id", columns: ["user_id", "segment", "name"], count: 4, version: 6, source: "api" }]);
    expect((await call(w, "GET", "/api/v1/tables/users")).body.rows).toEqual([
      { user_id: "u1", segment: "gold", name: "Smith, Ann" }, { user_id: "u2", segment: "platinum" },
      { user_id: "u3", segment: "silver", name: "Li" }, { user_id: "u9", segment: "new" },
    ]);
    const users = w.engine.tables.table("users") as RefTable;
    expect([users.rows.get("u2")?.segment, users.rows.get("u4")]).toEqual(["platinum", undefined]);
    // Versions never repeat: the stored ones went to 8 (the deletions took 7 and 8), the file's tables took 9 and 10 at this start.
    expect((await call(w, "PUT", "/api/v1/tables/plans?key=plan", "plan\nbasic\n", "text/csv")).body.version).toBe(11);
  });

  test("tables - rejected with the exact error: bad rows naming the line, past a bound naming it, a wrong content type, a bad name, key or query", async () => {
    const w = await startTestWeir({});
    cleanups.push(() => w.stop());
    const put = (path: string, body: string, type = "text/csv") => call(w, "PUT", path, body, type);
    expect(await put("/api/v1/tables/users?key=user_id", "user_id,segment\nu1,gold\nu2\n"))
      .toEqual({ status: 400, body: { error: "body line 3: 1 fields where the header has 2" } });
    expect(await put("/api/v1/tables/users?key=user_id", '[{"user_id": "u1", "segment": {"a": 1}}]', "application/json"))
      .toEqual({ status: 400, body: { error: "body rows[0].segment: must be a string, number, boolean or null" } });
    expect(await put("/api/v1/tables/users?key=id", "user_id,segment\nu1,gold\n"))
      .toEqual({ status: 400, body: { error: 'body: the key column "id" is not among the columns (user_id, segment)' } });
    expect(await put("/api/v1/tables/users", "user_id\nu1\n"))
      .toEqual({ status: 400, body: { error: "key: a new table needs its key column named (?key=<column>)" } });
    expect(await put("/api/v1/tables/users?key=user%20id", "user_id\nu1\n"))
      .toEqual({ status: 400, body: { error: "key: must be a column name (letters, digits and _, not starting with a digit)" } });
    expect(await put("/api/v1/tables/users?key=user_id&color=red", "user_id\nu1\n")).toEqual({ status: 400, body: { error: "color: unknown field" } });
    expect(await put("/api/v1/tables/9users?key=id", "id\nu1\n"))
      .toEqual({ status: 400, body: { error: "name: not a table name (letters, digits and _, not starting with a digit, at most 64 characters)" } });
    const many = "id\n" + Array.from({ length: limits.tableRowsMax + 1 }, (_, i) => `u${i}`).join("\n");
    expect(await put("/api/v1/tables/users?key=id", many))
      .toEqual({ status: 413, body: { error: `body line ${limits.tableRowsMax + 2}: more than ${limits.tableRowsMax} rows (tableRowsMax)` } });
    expect(await put("/api/v1/tables/users?key=id", "x".repeat(limits.tableBodyBytesMax + 1)))
      .toEqual({ status: 413, body: { error: `body: a table is at most ${limits.tableBodyBytesMax} bytes (tableBodyBytesMax)` } });
    expect(await put("/api/v1/tables/users?key=id", "id\nu1\n", "text/plain"))
      .toEqual({ status: 415, body: { error: "content-type: a table is text/csv, application/json or application/x-ndjson" } });
    expect(await call(w, "PATCH", "/api/v1/tables/users", "id\nu1\n", "text/csv")).toEqual({ status: 404, body: { error: 'name: no table "users" (PUT makes one)' } });
    expect(await call(w, "GET", "/api/v1/tables")).toEqual({ status: 200, body: { tables: [] } }); // nothing of the above was taken

    expect((await put("/api/v1/tables/users?key=id", "id,seg\nu1,gold\n")).status).toBe(201);
    expect(await call(w, "PATCH", "/api/v1/tables/users", "id,seg\nu2,a\nu2,b\n", "text/csv"))
      .toEqual({ status: 400, body: { error: 'body line 3, column id: key "u2" again (first at line 2)' } });
    expect(await call(w, "PATCH", "/api/v1/tables/users?key=seg", "seg\na\n", "text/csv"))
      .toEqual({ status: 400, body: { error: "key: the table's key column is id, not seg" } });
    const full = "id\n" + Array.from({ length: limits.tableRowsMax }, (_, i) => `k${i}`).join("\n");
    expect(await call(w, "PATCH", "/api/v1/tables/users", full, "text/csv"))
      .toEqual({ status: 413, body: { error: `table users: ${limits.tableRowsMax + 1} rows after the upsert, at most ${limits.tableRowsMax} (tableRowsMax)` } });
    expect(await call(w, "GET", "/api/v1/tables/users?limit=0")).toEqual({ status: 400, body: { error: "limit: must be ≥ 1" } });
    expect((await call(w, "GET", "/api/v1/tables/users")).body).toMatchObject({ count: 1, version: 1, rows: [{ id: "u1", seg: "gold" }] });
  });

  test("tables - with WEIR_TOKENS: changes need the admin role (401 without a token, 403 with a read one); reading needs read", async () => {
    const w = await startTestWeir({ WEIR_TOKENS: "reader-token:read,admin-token:admin" });
    cleanups.push(() => w.stop());
    const csv = "id,seg\nu1,gold\n";
    expect(await call(w, "PUT", "/api/v1/tables/users?key=id", csv, "text/csv")).toEqual({ status: 401, body: { error: "authorization: bearer token required" } });
    expect(await call(w, "PUT", "/api/v1/tables/users?key=id", csv, "text/csv", "reader-token")).toEqual({ status: 403, body: { error: 'authorization: token lacks role "admin"' } });
    expect((await call(w, "PUT", "/api/v1/tables/users?key=id", csv, "text/csv", "admin-token")).status).toBe(201);
    expect((await call(w, "PATCH", "/api/v1/tables/users", csv, "text/csv", "reader-token")).status).toBe(403);
    expect((await call(w, "DELETE", "/api/v1/tables/users", undefined, undefined, "reader-token")).status).toBe(403);
    expect((await call(w, "GET", "/api/v1/tables")).status).toBe(401);
    expect((await call(w, "GET", "/api/v1/tables", undefined, undefined, "reader-token")).body.tables.map((t: { name: string }) => t.name)).toEqual(["users"]);
    expect((await call(w, "GET", "/api/v1/tables/users?token=reader-token")).body.rows).toEqual([{ id: "u1", seg: "gold" }]);
  });

  test("tables - a config file's bad table stops start-up naming its path", () => {
    const dir = tempDir("weir-tables-bad-");
    const file = join(dir, "weir.yaml");
    const withTables = (yaml: string, files: Record<string, string> = {}) => {
      for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
      writeFileSync(file, `tables:\n${yaml}`);
      return () => loadConfig({ WEIR_CONFIG: file });
    };
    expect(withTables("  users: {file: users.csv, key: user_id}\n", { "users.csv": "user_id,segment\nu1,gold\nu2\n" }))
      .toThrow("config tables.users.file: users.csv line 3: 1 fields where the header has 2");
    expect(withTables("  users: {file: users.csv, key: id}\n"))
      .toThrow('config tables.users.file: users.csv: the key column "id" is not among the columns (user_id, segment)');
    expect(withTables("  users: {file: users.txt, key: id}\n")).toThrow('config tables.users.file: "users.txt" must end in .csv, .json, .ndjson or .jsonl');
    expect(withTables("  users: {file: gone.csv, key: id}\n")).toThrow('config tables.users.file: cannot read "gone.csv": ');
    expect(withTables("  users: {file: users.csv}\n")).toThrow("config tables.users.key: required");
    expect(withTables("  users: {file: users.csv, key: id, sep: ';'}\n")).toThrow("config tables.users.sep: unknown field");
    expect(withTables("  9users: {file: users.csv, key: id}\n")).toThrow("config tables.9users: not a table name");
    expect(withTables("  - users.csv\n")).toThrow("config tables: must map each table's name to {file, key}");
    const ok = withTables("  users: {file: sub/../users.csv, key: user_id}\n", { "users.csv": "user_id,segment\nu1,gold\n" })();
    expect(ok.tables.map((t) => [t.name, t.file, t.rows.rows.size])).toEqual([["users", "sub/../users.csv", 1]]);
  });
});
