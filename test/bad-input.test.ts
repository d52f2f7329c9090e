/**
 * The bad-input catalogue (issue 19 item 1): one table of inputs a client
 * can send, across every input route, each with the status it must get and
 * the words its JSON error must hold (the field or the limit). For every
 * row, against one real weir: that status and a JSON error; for events,
 * weir_events_rejected_total up by exactly the events refused and each in
 * the dead-letter list; after all rows nothing of them in any aggregate or
 * listing, and the server healthy. Config rows run loadConfig directly.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import { gzipSync } from "node:zlib";
import { loadConfig } from "../src/config.ts";
import { limits } from "../src/runtime/limits.ts";
import { startTestWeir, type TestWeir } from "./helpers/weir.ts";

const maxBody = 256 * 1024;
const now = Date.now();
const json = "application/json";
const long = (n: number) => "x".repeat(n);

interface Row {
  what: string;
  method?: string;
  path: string;
  type?: string | null;
  headers?: Record<string, string>;
  body?: BodyInit;
  status: number;
  /** What the error must say (a substring, or a pattern). */
  error: string | RegExp;
  /** Events refused and dead-lettered by this row (0: the request was refused whole). */
  rejected?: number;
}

const ev = (o: Record<string, unknown>) => JSON.stringify({ name: "bad.ok", value: 1, ...o });
const events = (path = "/api/v1/events") => path;

const rows: Row[] = [
  // Bodies, before any event is read.
  { what: "truncated JSON", path: events(), body: '{"name":"bad.a","value":', status: 400, error: "body: invalid JSON" },
  { what: "empty body", path: events(), body: "", status: 400, error: "body: empty" },
  { what: "invalid UTF-8", path: events(), body: new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), status: 400, error: "body: not valid UTF-8" },
  { what: "a bare number", path: events(), body: "42", status: 400, error: "body: must be an event object or an array of events" },
  { what: "an empty array", path: events(), body: "[]", status: 400, error: "body: empty array" },
  { what: "deep nesting (20,000 arrays)", path: events(), body: "[".repeat(20_000) + "]".repeat(20_000), status: 400, error: /body: invalid JSON|must be a JSON object/, rejected: -1 },
  { what: "NDJSON, line 2 broken", path: events(), type: "application/x-ndjson", body: `${ev({})}\n{"name":\n`, status: 400, error: "line 2: invalid JSON" },
  { what: "NDJSON, blank lines only", path: events(), type: "application/x-ndjson", body: "\n\n  \n", status: 400, error: "body: no events" },
  { what: "MessagePack, invalid bytes", path: events(), type: "application/msgpack", body: new Uint8Array([0xc1, 0x00]), status: 400, error: "body: invalid MessagePack" },
  { what: "MessagePack, an event without name", path: events(), type: "application/msgpack", body: encode({ value: 3 }), status: 400, error: "name: required string", rejected: 1 },
  { what: "text/plain that is not JSON", path: events(), type: "text/plain", body: "hello", status: 400, error: "body: invalid JSON" },
  { what: "a wrong content type", path: events(), type: "text/html", body: ev({}), status: 415, error: "content-type" },
  { what: "no content type", path: events(), type: null, body: new Uint8Array(new TextEncoder().encode(ev({}))), status: 415, error: "content-type" },
  { what: "a broken gzip stream", path: events(), headers: { "content-encoding": "gzip" }, body: new Uint8Array([0x1f, 0x8b, 0x08, 0, 1, 2, 3]), status: 400, error: /gzip/ },
  { what: "an unknown content encoding", path: events(), headers: { "content-encoding": "br" }, body: ev({}), status: 415, error: /encoding/ },
  { what: "a gzip bomb (4 MiB of zeros inflated)", path: events(), headers: { "content-encoding": "gzip" }, body: gzipSync(new Uint8Array(4 * 2 ** 20)), status: 413, error: /WEIR_MAX_BODY/ },
  { what: "a body over WEIR_MAX_BODY", path: events(), body: `[${Array.from({ length: 4_000 }, () => ev({ tags: { k: long(60) } })).join(",")}]`, status: 413, error: `body: over WEIR_MAX_BODY (${maxBody} bytes)` },
  { what: "over 100,000 events", path: events(), type: "application/msgpack", body: encode(Array.from({ length: limits.eventsPerRequestMax + 1 }, () => 0)), status: 413, error: "body: over 100000 events" },
  // Events, one field at a time (each refused alone: rejected 1, dead-lettered).
  { what: "no name", path: events(), body: JSON.stringify({ value: 1 }), status: 400, error: "name: required string", rejected: 1 },
  { what: "an empty name", path: events(), body: ev({ name: "" }), status: 400, error: "name: must be 1–128 characters", rejected: 1 },
  { what: "a name of 129 characters", path: events(), body: ev({ name: `bad.${long(125)}` }), status: 400, error: "name: must be 1–128 characters", rejected: 1 },
  { what: "a name with markup", path: events(), body: ev({ name: "<script>alert(1)</script>" }), status: 400, error: "name: must match", rejected: 1 },
  { what: "a name starting with a digit", path: events(), body: ev({ name: "1bad" }), status: 400, error: "name: must match", rejected: 1 },
  { what: "a name that is a number", path: events(), body: ev({ name: 7 }), status: 400, error: "name: required string", rejected: 1 },
  { what: "value \"NaN\"", path: events(), body: ev({ value: "NaN" }), status: 400, error: "value: must be a finite number", rejected: 1 },
  { what: "value \"abc\"", path: events(), body: ev({ value: "abc" }), status: 400, error: "value: must be a finite number", rejected: 1 },
  { what: "value 1e999 (Infinity)", path: events(), body: '{"name":"bad.inf","value":1e999}', status: 400, error: "value: must be a finite number", rejected: 1 },
  { what: "value null", path: events(), body: ev({ value: null }), status: 400, error: "value: must be a finite number", rejected: 1 },
  { what: "value true", path: events(), body: ev({ value: true }), status: 400, error: "value: must be a finite number", rejected: 1 },
  { what: "ts 30 days old", path: events(), body: ev({ ts: now - 30 * 86_400_000 }), status: 400, error: "ts: older than WEIR_MAX_EVENT_AGE", rejected: 1 },
  { what: "ts an hour ahead", path: events(), body: ev({ ts: now + 3_600_000 }), status: 400, error: "ts: further ahead than WEIR_MAX_FUTURE_SKEW", rejected: 1 },
  { what: "ts \"yesterday\"", path: events(), body: ev({ ts: "yesterday" }), status: 400, error: "ts:", rejected: 1 },
  { what: "ts negative", path: events(), body: ev({ ts: -5 }), status: 400, error: "ts:", rejected: 1 },
  { what: "ts an object", path: events(), body: ev({ ts: { at: 1 } }), status: 400, error: "ts:", rejected: 1 },
  { what: "an unknown field", path: events(), body: ev({ colour: "red" }), status: 400, error: '"colour": unknown field', rejected: 1 },
  { what: "a __proto__ key", path: events(), body: '{"name":"bad.p","__proto__":{"polluted":1}}', status: 400, error: '"__proto__": unknown field', rejected: 1 },
  { what: "a constructor key", path: events(), body: ev({ constructor: "x" }), status: 400, error: '"constructor": unknown field', rejected: 1 },
  { what: "tags a string", path: events(), body: ev({ tags: "a=b" }), status: 400, error: "tags:", rejected: 1 },
  { what: "17 tags", path: events(), body: ev({ tags: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])) }), status: 400, error: "tags:", rejected: 1 },
  { what: "a tag key with a dash", path: events(), body: ev({ tags: { "bad-key": "v" } }), status: 400, error: "tags.bad-key", rejected: 1 },
  { what: "a tag key of 65 characters", path: events(), body: ev({ tags: { [`k${long(64)}`]: "v" } }), status: 400, error: "tags.", rejected: 1 },
  { what: "a tag value of 257 characters", path: events(), body: ev({ tags: { k: long(257) } }), status: 400, error: "tags.k", rejected: 1 },
  { what: "a tag value that is a number", path: events(), body: ev({ tags: { k: 5 } }), status: 400, error: "tags.k", rejected: 1 },
  { what: "a tag key __proto__", path: events(), body: '{"name":"bad.t","tags":{"__proto__":"x"}}', status: 400, error: "tags.__proto__: a reserved key", rejected: 1 },
  { what: "a tag key constructor", path: events(), body: ev({ name: "bad.c", tags: { constructor: "x" } }), status: 400, error: "tags.constructor: a reserved key", rejected: 1 },
  { what: "an id of 129 characters", path: events(), body: ev({ id: long(129) }), status: 400, error: "id: must be a string of 1–128 characters", rejected: 1 },
  { what: "an empty id", path: events(), body: ev({ id: "" }), status: 400, error: "id: must be a string", rejected: 1 },
  { what: "an id that is a number", path: events(), body: ev({ id: 12 }), status: 400, error: "id: must be a string", rejected: 1 },
  { what: "props an array", path: events(), body: ev({ props: [1, 2] }), status: 400, error: "props: must be an object", rejected: 1 },
  { what: "props over 4 KiB", path: events(), body: ev({ props: { blob: long(5_000) } }), status: 400, error: "props: over 4096 bytes", rejected: 1 },
  { what: "props nested 3,000 deep", path: events(), body: `{"name":"bad.deep","props":${'{"a":'.repeat(3_000)}1${"}".repeat(3_000)}}`, status: 400, error: /props: over 4096 bytes|invalid JSON/, rejected: -1 },
  { what: "one bad event among good ones: 202, the bad one named by index", path: events(), body: `[${ev({ name: "bad.mixed" })},${ev({ value: "x" })}]`, status: 202, error: "", rejected: 1 },
  // Line protocol.
  { what: "line protocol: a field that is not a number", path: "/write", type: "text/plain", body: "bad_lp v=oops", status: 400, error: 'line 1: field "v": not a number, boolean or string', rejected: 1 },
  { what: "line protocol: no fields", path: "/write", type: "text/plain", body: "bad_lp,t=a", status: 400, error: "line 1: missing fields", rejected: 1 },
  { what: "line protocol: a timestamp that is not an integer", path: "/write", type: "text/plain", body: "bad_lp v=1 12:00", status: 400, error: "line 1: timestamp: not an integer", rejected: 1 },
  { what: "line protocol: an unterminated string", path: "/write", type: "text/plain", body: 'bad_lp s="open', status: 400, error: 'line 1: field "s": unterminated string', rejected: 1 },
  { what: "line protocol: a tag key with a dash", path: "/write?precision=ms", type: "text/plain", body: `bad_lp,bad-key=x v=1 ${now}`, status: 400, error: "line 1: tags.bad-key", rejected: 1 },
  { what: "line protocol: precision=h", path: "/write?precision=h", type: "text/plain", body: "bad_lp v=1", status: 400, error: "precision: must be one of" },
  { what: "line protocol: an unknown parameter", path: "/write?bucket=x", type: "text/plain", body: "bad_lp v=1", status: 400, error: "bucket" },
  { what: "line protocol: an empty body", path: "/write", type: "text/plain", body: "", status: 400, error: "body: empty" },
  // Query parameters.
  { what: "windows: an unknown window spec", method: "GET", path: "/api/v1/windows?series=a&window=7q", status: 400, error: "window" },
  { what: "windows: limit=-1", method: "GET", path: "/api/v1/windows?series=a&window=10s&limit=-1", status: 400, error: "limit" },
  { what: "windows: limit=abc", method: "GET", path: "/api/v1/windows?series=a&window=10s&limit=abc", status: 400, error: "limit: must be a whole number" },
  { what: "windows: from after to", method: "GET", path: "/api/v1/windows?series=a&window=10s&from=2000&to=1000", status: 400, error: "from" },
  { what: "windows: no series", method: "GET", path: "/api/v1/windows?window=10s", status: 400, error: "series" },
  { what: "windows: a garbage time", method: "GET", path: "/api/v1/windows?series=a&window=10s&from=soon", status: 400, error: "from: must be epoch milliseconds or an ISO-8601 time" },
  { what: "series: limit=0", method: "GET", path: "/api/v1/series?limit=0", status: 400, error: "limit" },
  { what: "anomalies: an unknown severity", method: "GET", path: "/api/v1/anomalies?severity=apocalyptic", status: 400, error: "severity" },
  { what: "top: an unknown agg", method: "GET", path: "/api/v1/top?name=a&by=k&agg=median", status: 400, error: "agg" },
  { what: "deadletters: limit=1e9", method: "GET", path: "/api/v1/deadletters?limit=1000000000", status: 400, error: "limit" },
  // SQL.
  { what: "SQL: a write", path: "/api/v1/query", body: JSON.stringify({ sql: "DELETE FROM events" }), status: 400, error: /SELECT/ },
  { what: "SQL: two statements", path: "/api/v1/query", body: JSON.stringify({ sql: "SELECT 1; SELECT 2" }), status: 400, error: /one statement|statement/ },
  { what: "SQL: ATTACH", path: "/api/v1/query", body: JSON.stringify({ sql: "ATTACH 'x.db'" }), status: 400, error: /SELECT|ATTACH/ },
  { what: "SQL: a file outside the lake", path: "/api/v1/query", body: JSON.stringify({ sql: "SELECT * FROM read_csv('/etc/passwd')" }), status: 400, error: /./ },
  { what: "SQL: not JSON", path: "/api/v1/query", body: "SELECT 1", status: 400, error: /JSON|body/ },
  { what: "SQL: no sql field", path: "/api/v1/query", body: JSON.stringify({ query: "SELECT 1" }), status: 400, error: "sql" },
  // Rules, views, tables.
  { what: "rule: a bad expression", method: "PUT", path: "/api/v1/rules/r1", body: JSON.stringify({ expr: "avg(cpu >", for: "1m" }), status: 400, error: "rule.expr" },
  { what: "rule: not JSON", method: "PUT", path: "/api/v1/rules/r1", body: "{", status: 400, error: /JSON|body/ },
  { what: "rule: a bad for", method: "PUT", path: "/api/v1/rules/r1", body: JSON.stringify({ expr: "avg(cpu) > 1", for: "soon" }), status: 400, error: "rule.for" },
  { what: "view: a bad window", method: "PUT", path: "/api/v1/views/v1", body: JSON.stringify({ from: "a.*", window: "7q", aggregates: ["count"] }), status: 400, error: "view.window" },
  { what: "view: an unknown aggregate", method: "PUT", path: "/api/v1/views/v1", body: JSON.stringify({ from: "a.*", window: "1m", aggregates: ["median"] }), status: 400, error: "view.aggregates" },
  { what: "table: a ragged CSV", method: "PUT", path: "/api/v1/tables/t1?key=id", type: "text/csv", body: "id,seg\nu1,a,extra\n", status: 400, error: "body line 2" },
  { what: "table: no key named", method: "PUT", path: "/api/v1/tables/t2", type: "text/csv", body: "id,seg\nu1,a\n", status: 400, error: "key" },
  // Static files.
  { what: "static: path traversal, encoded", method: "GET", path: "/%2e%2e/%2e%2e/etc/passwd", status: 404, error: /no such|not found|path/ },
  { what: "static: path traversal under an asset", method: "GET", path: "/vendor/..%2f..%2fpackage.json", status: 404, error: /no such|not found|path/ },
];

describe("bad input - the catalogue", () => {
  let w: TestWeir;
  let deadBefore = 0;
  beforeAll(async () => {
    w = await startTestWeir({ WEIR_MAX_BODY: String(maxBody) });
  });
  afterAll(async () => {
    await w?.stop();
  });
  const rejectedTotal = async () => {
    const text = await (await fetch(`${w.url}/metrics`)).text();
    return text.split("\n").filter((l) => l.startsWith("weir_events_rejected_total")).reduce((n, l) => n + Number(l.split(" ").pop()), 0);
  };
  const deadletters = async () => ((await (await fetch(`${w.url}/api/v1/deadletters?limit=10000`)).json()) as { deadletters: unknown[] }).deadletters.length;

  test(`bad input - the catalogue has at least 60 rows (${rows.length})`, () => {
    expect(rows.length).toBeGreaterThanOrEqual(60);
  });

  for (const row of rows) {
    test(`bad input - ${row.method ?? "POST"} ${row.path.slice(0, 40)}: ${row.what} → ${row.status}`, async () => {
      const before = await rejectedTotal();
      deadBefore = await deadletters();
      const headers: Record<string, string> = { ...(row.type === null ? {} : { "content-type": row.type ?? json }), ...row.headers };
      const res = await fetch(`${w.url}${row.path}`, { method: row.method ?? "POST", body: row.body, headers });
      const text = await res.text();
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        throw new Error(`${row.what}: ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`);
      }
      expect(res.status).toBe(row.status);
      if (row.status >= 400) {
        const said = [body.error, ...((body.errors as Array<{ error: string }> | undefined) ?? []).map((e) => e.error)].join(" | ");
        if (typeof row.error === "string") expect(said).toContain(row.error);
        else expect(said).toMatch(row.error);
      } else {
        expect(body).toMatchObject({ rejected: row.rejected });
      }
      const rejected = (await rejectedTotal()) - before;
      if (row.rejected === -1) expect(rejected).toBeLessThanOrEqual(1); // the parser's answer decides: refused whole, or one event
      else expect(rejected).toBe(row.rejected ?? 0);
      if ((row.rejected ?? 0) > 0) expect(await deadletters()).toBe(deadBefore + row.rejected!);
    });
  }

  test("bad input - afterwards: nothing refused is listed or aggregated, the one valid event of the mixed body is, and the server is healthy", async () => {
    const listed = ((await (await fetch(`${w.url}/api/v1/series?limit=10000`)).json()) as { series: Array<{ key: string }> }).series.map((s) => s.key);
    expect(listed.filter((k) => k.startsWith("bad") && k !== "bad.mixed")).toEqual([]);
    expect(listed).toContain("bad.mixed");
    expect((await fetch(`${w.url}/health`)).status).toBe(200);
    expect((await fetch(`${w.url}/ready`)).status).toBe(200);
    const ok = await fetch(`${w.url}/api/v1/events`, { method: "POST", body: ev({ name: "good.after" }), headers: { "content-type": json } });
    expect(ok.status).toBe(202);
  });
});

describe("bad input - configuration", () => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ WEIR_PARTITIONS: "0" }, "WEIR_PARTITIONS"],
    [{ WEIR_WINDOWS: "10q" }, "WEIR_WINDOWS"],
    [{ WEIR_MAX_BODY: "lots" }, "WEIR_MAX_BODY"],
    [{ WEIR_HOST: "0.0.0.0" }, "WEIR_TOKENS"],
    [{ WEIR_LATENESS: "-1s" }, "WEIR_LATENESS"],
  ];
  for (const [env, names] of cases) {
    test(`bad input - config ${JSON.stringify(env)} stops start-up naming ${names}`, () => {
      expect(() => loadConfig({ WEIR_DATA_DIR: "/tmp/never-used", ...env })).toThrow(names);
    });
  }
});
