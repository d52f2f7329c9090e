/**
 * Sensitive fields end to end (issue 17 "Done when"): a real weir with
 * `pii:` configured receives an e-mail in a listed prop, a card number in a
 * tag, an IP in a prop and a phone number in a tag, over JSON and line
 * protocol, plus invalid events that are dead-lettered; the live stream is
 * captured, the log is captured, weir checkpoints and compacts into
 * Parquet and stops. Then every byte of its data directory, its log and
 * the live output is scanned for each raw string: none. The tokens are
 * there, the same for the same input; the lake's roles mask them.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config.ts";
import { createLog } from "../src/runtime/log.ts";
import { startWeir, type Weir } from "../src/server.ts";
import { piiToken, scanForRaw, walk } from "./helpers/pii-scan.ts";
import { waitFor } from "./helpers/wait.ts";

const piiKey = "scan-test-key-0123456789";
const tokens = { ingest: "ingest-token-1", read: "read-token-1", pii: "readpii-token-1", admin: "admin-token-1" };
const email = "alice.secret@example.com";
const card = "4111 1111 1111 1111";
const ip = "203.0.113.77";
const phone = "+4915112345678";
/** Every form a raw value could be written in. */
const raw = [email, card, card.replaceAll(" ", ""), card.replaceAll(" ", "\\ "), ip, phone, "bob.hidden@example.org", "5555555555554444"];
const tokenOf = (v: string) => piiToken(piiKey, v);

let dir: string;
let w: Weir;
const logLines: string[] = [];
let live = "";
let liveAbort: AbortController;
const now = Date.now();
const t0 = Math.floor((now - 120_000) / 10_000) * 10_000;

const headers = (t: string, ct = "application/json") => ({ authorization: `Bearer ${t}`, "content-type": ct });
const post = (path: string, body: string, ct = "application/json") => fetch(`${w.url}${path}`, { method: "POST", headers: headers(tokens.ingest, ct), body });
async function sql(q: string, token: string) {
  const res = await fetch(`${w.url}/api/v1/query`, { method: "POST", headers: headers(token), body: JSON.stringify({ sql: q }) });
  return { status: res.status, body: await res.json() as { columns: string[]; rows: unknown[][]; error?: string } };
}

function signup(ts: number) {
  return { name: "shop.signup", ts, value: 1, tags: { card, phone, page: "/join" }, props: { email, client_ip: ip, note: "hi" } };
}

/** Reads the live stream into `live` until aborted. */
async function subscribe(): Promise<void> {
  liveAbort = new AbortController();
  const res = await fetch(`${w.url}/api/v1/stream?topic=${encodeURIComponent("windows:10s:*")}&token=${tokens.read}`, { signal: liveAbort.signal });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        live += dec.decode(value, { stream: true });
      }
    } catch { /* aborted */ }
  })();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "weir-pii-"));
  const configPath = join(dir, "weir.yaml");
  writeFileSync(configPath, "pii:\n  keys: [email, user_email]\n  detect: [email, card, ip, phone]\n  mode: hash\n");
  const cfg = loadConfig({
    WEIR_PORT: "0", WEIR_DATA_DIR: join(dir, "data"), WEIR_PARTITIONS: "2", WEIR_CONFIG: configPath, WEIR_PII_KEY: piiKey,
    WEIR_TOKENS: `${tokens.ingest}:ingest,${tokens.read}:read,${tokens.pii}:read+pii,${tokens.admin}:admin`,
    WEIR_WINDOWS: "10s", WEIR_LATENESS: "0", WEIR_CHECKPOINT_INTERVAL: "100ms", WEIR_RAW_SEGMENT: "1s",
    WEIR_LAKE_INTERVAL: "1h", WEIR_LAKE_CURATED_INTERVAL: "1h", WEIR_LOG_LEVEL: "debug",
  });
  w = await startWeir(cfg, createLog("debug", {}, (line) => logLines.push(line)));
  await subscribe();
  // JSON: two events with the same values (the same tokens), one invalid event carrying them all.
  const body = [signup(t0), signup(t0 + 1000), { name: "shop.signup", value: "bad", tags: { card: "5555555555554444" }, props: { user_email: "bob.hidden@example.org", ip } }];
  const firstAt = Date.now();
  const r1 = await post("/api/v1/events", JSON.stringify(body));
  expect(r1.status).toBe(202);
  // Line protocol: a phone and a card in tags (the card's spaces escaped), and a bad line carrying an e-mail.
  const ns = (ms: number) => `${ms}000000`;
  const lines = [`shop.call,phone=${phone},card=${card.replaceAll(" ", "\\ ")} value=2 ${ns(t0 + 500)}`, `shop.call,email=${email} value= ${ns(t0)}`].join("\n");
  const r2 = await post("/write?precision=ns", lines, "text/plain");
  expect(r2.status).toBe(400); // a partial write: the good line is written
  // Windows close: each series moves past its first window; a second raw-log segment begins.
  await waitFor(() => Date.now() - firstAt > 1100, 5000, "the first raw segment to close");
  const closers = [{ ...signup(t0 + 30_000) }, { name: "shop.call", ts: t0 + 30_000, value: 1, tags: { phone, card } }];
  expect((await post("/api/v1/events", JSON.stringify(closers))).status).toBe(202);
  await waitFor(() => live.includes("shop.signup") && live.includes("shop.call"), 10_000, "both series' windows on the live stream");
  await waitFor(async () => {
    await w.lake.flush();
    const files = walk(join(dir, "data", "lake", "raw")).filter((f) => f.endsWith(".parquet") && !f.includes("_empty"));
    const r = await sql("SELECT count(*) FROM windows", tokens.pii);
    return files.length > 0 && Number(r.body.rows[0][0]) >= 2;
  }, 15_000, "a compacted raw segment and the windows' snapshot");
}, 40_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("pii - end to end", () => {
  test("pii - the hashed form is kept, the same for the same input (SQL with the pii grant)", async () => {
    const r = await sql("SELECT DISTINCT props->>'email' AS e, props->>'client_ip' AS ip, tags['card'] AS card, tags['phone'] AS phone FROM events WHERE name = 'shop.signup'", tokens.pii);
    expect(r.status).toBe(200);
    expect(r.body.rows).toEqual([[tokenOf(email), tokenOf(ip), tokenOf(card), tokenOf(phone)]]);
    const n = await sql("SELECT count(*) FROM events WHERE name = 'shop.signup'", tokens.pii);
    expect(n.body.rows).toEqual([[3]]);
  });

  test("pii - a token without the grant reads the tokens masked, in SQL and export; it cannot read around the masked views", async () => {
    const r = await sql("SELECT DISTINCT props->>'email', tags['card'], tags['page'], series FROM events WHERE name = 'shop.signup'", tokens.read);
    expect(r.status).toBe(200);
    expect(r.body.rows).toEqual([["***", "***", "/join", 'shop.signup{card="***",page="/join",phone="***"}']]);
    for (const q of ["SELECT * FROM main.events", "SELECT * FROM memory.main.events", `SELECT * FROM read_parquet('${join(dir, "data", "lake", "raw")}/*/*/*.parquet')`, "SELECT * FROM query('SELECT 1')"]) {
      const refused = await sql(q, tokens.read);
      expect([refused.status, refused.body.error?.startsWith("sql: ")]).toEqual([400, true]);
    }
    expect((await sql("SELECT count(*) FROM range(3)", tokens.read)).body.rows).toEqual([[3]]);
    const exp = await fetch(`${w.url}/api/v1/export?table=events&format=ndjson`, { headers: headers(tokens.read) });
    expect(exp.status).toBe(200);
    const text = await exp.text();
    expect(text).not.toContain("pii:");
    expect(text).toContain('"email":"***"');
    const full = await fetch(`${w.url}/api/v1/export?table=events&format=ndjson`, { headers: headers(tokens.admin) });
    expect(await full.text()).toContain(tokenOf(email));
  });

  test("pii - a materialised metric view's runs are masked for a token without the grant, tagged in the catalog", async () => {
    const def = { sql: "SELECT props->>'email' AS e, count(*) AS n FROM events WHERE name = 'shop.signup' GROUP BY 1", materialize: { every: "1h" } };
    const put = await fetch(`${w.url}/api/v1/metric-views/signups_by_email`, { method: "PUT", headers: headers(tokens.admin), body: JSON.stringify(def) });
    expect(put.status).toBe(201);
    await w.lake.materialize(Date.now() + 3600_000); // a run now, whatever the schedule did
    const q = "SELECT e, n FROM signups_by_email_materialized WHERE n IS NOT NULL ORDER BY materialized_at DESC LIMIT 1";
    expect((await sql(q, tokens.pii)).body.rows).toEqual([[tokenOf(email), 3]]);
    expect((await sql(q, tokens.read)).body.rows).toEqual([["***", 3]]);
    const res = await fetch(`${w.url}/api/v1/catalog`, { headers: headers(tokens.read) });
    const { tables } = await res.json() as { tables: Array<{ name: string; columns: Array<{ name: string; sensitivity: string[] }> }> };
    expect(tables.find((t) => t.name === "signups_by_email_materialized")!.columns.map((c) => [c.name, c.sensitivity])).toEqual([["e", ["pii"]], ["n", []], ["materialized_at", []]]);
    expect((await fetch(`${w.url}/api/v1/metric-views/signups_by_email`, { method: "DELETE", headers: headers(tokens.admin) })).status).toBe(204);
  });

  test("pii - the catalog tags the columns that hold scrubbed values", async () => {
    const res = await fetch(`${w.url}/api/v1/catalog`, { headers: headers(tokens.read) });
    const { tables } = await res.json() as { tables: Array<{ name: string; columns: Array<{ name: string; sensitivity: string[] }> }> };
    const tagged = (t: string) => tables.find((x) => x.name === t)!.columns.filter((c) => c.sensitivity.includes("pii")).map((c) => c.name);
    expect(tagged("events")).toEqual(["series", "tags", "props"]);
    expect(tagged("windows")).toEqual(["series"]);
    expect(tagged("series")).toEqual(["key", "tags"]);
    expect(tagged("deadletters")).toEqual(["reason", "event"]);
  });

  test("pii - dead letters keep the refused events with their values replaced", async () => {
    const res = await fetch(`${w.url}/api/v1/deadletters`, { headers: headers(tokens.read) });
    const text = await res.text();
    expect(text).toContain(tokenOf("bob.hidden@example.org"));
    expect(text).toContain(tokenOf("5555555555554444"));
    expect(text).toContain(`email=${tokenOf(email)}`);
  });

  test("pii - no raw value in any byte of the data directory, the log or the live output", async () => {
    liveAbort.abort();
    await w.stop();
    expect(live).toContain(tokenOf(phone)); // the live output carries the series keyed on the tokens
    const files = walk(join(dir, "data"));
    expect(files.some((f) => f.endsWith("weir.db"))).toBe(true);
    expect(files.some((f) => f.includes("/raw/") && !f.includes("lake"))).toBe(true);
    expect(await scanForRaw({ data: join(dir, "data") }, { log: Buffer.from(logLines.join("\n")), live: Buffer.from(live) }, raw)).toEqual([]);
    expect(logLines.length).toBeGreaterThan(0);
    expect(files.reduce((n, f) => n + (readFileSync(f).includes(Buffer.from(tokenOf(email))) ? 1 : 0), 0)).toBeGreaterThan(0);
  }, 30_000);
});
