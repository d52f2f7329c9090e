/**
 * POST /api/v1/rules/test against a real weir: events with past timestamps
 * are posted, their windows awaited at /api/v1/windows, and the back-test's
 * transitions compared with a recount (helpers/rule-reference.ts over
 * windows recounted from the events sent, not read from weir). Also the
 * rejected requests: a bad expression, no or the wrong token, a rule the
 * kept windows cannot answer, and each bound, at it and past it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Hono } from "hono";
import { join } from "node:path";
import { loadConfig } from "../src/config.ts";
import { toHttpError } from "../src/http/errors.ts";
import { rulesTestRoutes } from "../src/http/routes/rules-test.ts";
import { openReader } from "../src/storage/db.ts";
import { mulberry32 } from "./helpers/prng.ts";
import { recountWindow } from "./helpers/recount.ts";
import { type RefRule, type RefSeries, type RefWindow, referenceTransitions } from "./helpers/rule-reference.ts";
import { waitFor } from "./helpers/wait.ts";
import { postEvents, startTestWeir, type TestWeir } from "./helpers/weir.ts";

const tokens = { ingest: "ingest-token-1", read: "read-token-12", admin: "admin-token-1" };
const env = { WEIR_TOKENS: `${tokens.ingest}:ingest,${tokens.read}:read,${tokens.admin}:admin` };
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
type Event = { name: string; tags: Record<string, string>; ts: number; value: number };

/**
 * Events of `hosts` series of `name`: a slot every stepMs from `from`, high and low regimes, a gap longer
 * than the rule's hold now and then; each series ends with one event well after the range, which closes its windows.
 */
function history(name: string, hosts: string[], from: number, slots: number, stepMs: number, levels: [number, number], gapSlots: number): Event[] {
  const rng = mulberry32(from / stepMs);
  const out: Event[] = [];
  hosts.forEach((host, i) => {
    for (let k = 0; k < slots; k++) {
      if ((k + 3 * i) % 20 >= 20 - gapSlots || rng() < 0.1) continue; // a gap every 20 slots, or one slot missing
      const level = (k + 7 * i) % 20 < 9 ? levels[0] : levels[1];
      const n = 1 + Math.floor(rng() * 3);
      for (let e = 0; e < n; e++) out.push({ name, tags: { host }, ts: from + k * stepMs + Math.floor(rng() * stepMs), value: level + Math.floor(rng() * 30) });
    }
    out.push({ name, tags: { host }, ts: from + slots * stepMs + 10 * 60_000, value: 0 });
  });
  return out.sort((a, b) => a.ts - b.ts);
}

/** The recount: each series' windows of stepMs in [from, to) that hold an event. */
function recount(events: Event[], hosts: string[], name: string, from: number, to: number, stepMs: number): RefSeries[] {
  return hosts.map((host) => {
    const mine = events.filter((e) => e.tags.host === host);
    const windows: RefWindow[] = [];
    for (let s = from; s + stepMs <= to; s += stepMs) {
      const w = recountWindow(mine, s, s + stepMs);
      if (w !== null) windows.push(w as unknown as RefWindow);
    }
    return { key: `${name}{host="${host}"}`, tags: { host }, windows };
  });
}

describe("POST /api/v1/rules/test against a real weir", () => {
  let w: TestWeir;
  const now = Date.now();
  const recent = Math.floor((now - 2 * 3_600_000) / 60_000) * 60_000; // 10 s windows are kept (2 d)
  const old = Math.floor((now - 3 * 86_400_000) / 3_600_000) * 3_600_000; // only the rollups are kept
  const hosts = ["a", "b", "c"];
  const recentEvents = history("bt.lat", hosts, recent, 60, 10_000, [60, 10], 4); // gaps of 40 s: longer than the 30 s the rule reads
  const oldEvents = history("bt.old", hosts.slice(0, 2), old, 45, 60_000, [100, 0], 6); // gaps of 6 min: longer than 5 min
  // The ranges run on past the last slot (not to the closing event): the silence at the end is judged too.
  const recentTo = recent + 900_000;
  const oldTo = old + 52 * 60_000;

  const backtestOf = (body: unknown, token: string | null = tokens.admin) =>
    fetch(`${w.url}/api/v1/rules/test`, {
      method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json", ...(token === null ? {} : bearer(token)) },
    }).then(async (r) => ({ status: r.status, body: await r.json() }));
  const storedWindows = async (key: string, window: string, from: number, to: number) => {
    const r = await fetch(`${w.url}/api/v1/windows?series=${encodeURIComponent(key)}&window=${window}&from=${from}&to=${to}&limit=10000`, { headers: bearer(tokens.read) });
    return ((await r.json()) as { windows: unknown[] }).windows.length;
  };

  beforeAll(async () => {
    w = await startTestWeir(env);
    for (const events of [recentEvents, oldEvents]) {
      expect((await postEvents(w.url, JSON.stringify(events), "application/json", bearer(tokens.ingest))).body).toEqual({ accepted: events.length, rejected: 0, errors: [] });
    }
    const want = [
      ...recount(recentEvents, hosts, "bt.lat", recent, recentTo, 10_000).map((s) => [s.key, "10s", recent, recentTo, s.windows.length] as const),
      ...recount(oldEvents, hosts.slice(0, 2), "bt.old", old, oldTo, 60_000).map((s) => [s.key, "1m", old, oldTo, s.windows.length] as const),
    ];
    await waitFor(async () => {
      for (const [key, window, from, to, n] of want) if ((await storedWindows(key, window, from, to)) !== n) return false;
      return true;
    }, 15_000, "every window of the histories stored and queryable");
  });
  afterAll(() => w.stop());

  const latRule = {
    name: "lat-high", expr: "avg(bt.lat) over 30s > 50", for: "20s", keep_firing_for: "15s", severity: "critical",
    labels: { owner: "ops" }, advice: "{{labels.host}} averages {{value}} ms, over {{threshold}}",
  };
  const latRef: RefRule = {
    name: "lat-high", agg: "avg", op: ">", threshold: 50, forMs: 20_000, keepMs: 15_000, severity: "critical", labels: { owner: "ops" },
    advice: latRule.advice,
  };

  test("rules/test - 10 s windows: the exact transitions of a recount, in event-time order", async () => {
    const want = referenceTransitions(latRef, { overMs: 30_000, stepMs: 10_000 }, recount(recentEvents, hosts, "bt.lat", recent, recentTo, 10_000), recentTo);
    expect(want.length).toBeGreaterThan(20);
    expect(want.filter((t) => t.value === null).length).toBeGreaterThan(3); // gaps are in it
    expect(want.some((t) => t.ts > recent + 600_000)).toBe(true); // and the silence after the last window
    const got = await backtestOf({ rule: latRule, from: new Date(recent).toISOString(), to: recentTo });
    expect(got).toEqual({ status: 200, body: { window: "10s", transitions: want } });
  });

  test("rules/test - past the 10 s windows' retention: the 1m rollups, with the exact transitions of a recount", async () => {
    const rule = { name: "old-sum", expr: "sum(bt.old) over 5m > 600", for: "2m" };
    const ref: RefRule = { name: "old-sum", agg: "sum", op: ">", threshold: 600, forMs: 120_000, keepMs: 0, severity: "warning", labels: {}, advice: null };
    const want = referenceTransitions(ref, { overMs: 300_000, stepMs: 60_000 }, recount(oldEvents, hosts.slice(0, 2), "bt.old", old, oldTo, 60_000), oldTo);
    expect(want.length).toBeGreaterThan(6);
    expect(await backtestOf({ rule, from: old, to: String(oldTo) })).toEqual({ status: 200, body: { window: "1m", transitions: want } });
    expect(await backtestOf({ rule: { name: "old-avg", expr: "avg(bt.old) > 5" }, from: old, to: oldTo })).toEqual({
      status: 400,
      body: { error: 'rule.expr: without "over" it reads the 10s windows, kept for 2d, and "from" is older: give the rule an "over" that the 1m or 1h windows answer, or back-test a later range' },
    });
  });

  test("rules/test - a bad rule or body is a 400 naming the part at fault", async () => {
    const bad = (body: unknown) => backtestOf(body).then((r) => [r.status, r.body.error]);
    expect(await bad({ rule: { ...latRule, expr: "avg(bt.lat) over 30s >> 50" }, from: recent })).toEqual([400, 'rule.expr: at column 23: expected a number after ">"']);
    expect(await bad({ rule: { ...latRule, expr: "anomaly(bt.lat) >= warning" }, from: recent })).toEqual([
      400, "rule.expr: back-testing supports aggregate rules only; anomaly(...) verdicts are not stored window by window",
    ]);
    expect(await bad({ rule: { ...latRule, for: "soon" }, from: recent })).toEqual([400, "rule.for: must be a duration like 30s or 5m"]);
    expect(await bad({ from: recent })).toEqual([400, "rule: required"]);
    expect(await bad({ rule: latRule })).toEqual([400, "from: required"]);
    expect(await bad({ rule: latRule, from: "yesterday" })).toEqual([400, "from: must be epoch milliseconds or an ISO-8601 time"]);
    expect(await bad({ rule: latRule, from: recentTo, to: recent })).toEqual([400, "from: must not be after to"]);
    expect(await bad({ rule: latRule, from: recent, until: recentTo })).toEqual([400, "until: unknown field"]);
    expect(await bad([latRule])).toEqual([400, 'body: must be an object {"rule", "from", "to"}']);
    const raw = async (body: string, type: string) => {
      const r = await fetch(`${w.url}/api/v1/rules/test`, { method: "POST", body, headers: { "content-type": type, ...bearer(tokens.admin) } });
      return [r.status, await r.json()];
    };
    expect(await raw("{", "application/json")).toEqual([400, { error: "body: not JSON" }]);
    expect(await raw(JSON.stringify({ rule: latRule, from: recent }), "text/plain")).toEqual([415, { error: "content-type: a back-test is application/json" }]);
    const big = JSON.stringify({ rule: { ...latRule, advice: "x".repeat(64 * 1024) }, from: recent });
    expect(await raw(big, "application/json")).toEqual([413, { error: "body: over 65536 bytes (ruleBacktestBodyBytesMax)" }]);
  });

  test("rules/test - admin only: 401 without a token, 403 with a read token", async () => {
    const body = { rule: latRule, from: recent, to: recentTo };
    expect(await backtestOf(body, null)).toEqual({ status: 401, body: { error: "authorization: bearer token required" } });
    expect(await backtestOf(body, tokens.read)).toEqual({ status: 403, body: { error: 'authorization: token lacks role "admin"' } });
  });

  test("rules/test - a selector over ruleBacktestSeriesMax series is refused naming the bound; at it, answered", async () => {
    const many = Array.from({ length: 1001 }, (_, i) => ({ name: "bt.many", tags: { i: String(i) }, ts: recent, value: 1 }));
    expect((await postEvents(w.url, JSON.stringify(many), "application/json", bearer(tokens.ingest))).status).toBe(202);
    await waitFor(async () => {
      const r = await fetch(`${w.url}/api/v1/series?match=bt.many*&limit=2000`, { headers: bearer(tokens.read) });
      return ((await r.json()) as { series: unknown[] }).series.length === 1001;
    }, 10_000, "1001 series of bt.many");
    expect(await backtestOf({ rule: { name: "many", expr: "count(bt.many) > 0" }, from: recent, to: recentTo })).toEqual({
      status: 400, body: { error: "rule.expr: the selector matches more than 1000 series, the most one back-test reads (ruleBacktestSeriesMax): narrow it" },
    });
    const atBound = await backtestOf({ rule: { name: "many", expr: 'count(bt.many{i!="0"}) > 0' }, from: recent, to: recentTo });
    expect(atBound.status).toBe(200);
  });

  test("rules/test - over the windows bound (ruleBacktestWindowsMax, smaller here) is refused naming it; at it, answered in full", async () => {
    const cfg = loadConfig({ WEIR_PORT: "0", WEIR_DATA_DIR: w.dataDir, WEIR_PARTITIONS: "2", ...env });
    const read = w.engine.readModel(openReader(join(w.dataDir, "weir.db")));
    const series = recount(recentEvents, hosts, "bt.lat", recent, recentTo, 10_000);
    const n = series.reduce((k, s) => k + s.windows.length, 0);
    const appWith = (windowsMax: number) => {
      const app = new Hono();
      app.route("/", rulesTestRoutes({ read, cfg }, { windowsMax }));
      app.onError((e, c) => {
        const h = toHttpError(e);
        if (h === null) throw e;
        return c.json({ error: h.message }, h.status);
      });
      return app;
    };
    const post = async (windowsMax: number) => {
      const r = await appWith(windowsMax).request("/api/v1/rules/test", {
        method: "POST", body: JSON.stringify({ rule: latRule, from: recent, to: recentTo }), headers: { "content-type": "application/json", ...bearer(tokens.admin) },
      });
      return { status: r.status, body: await r.json() };
    };
    const want = referenceTransitions(latRef, { overMs: 30_000, stepMs: 10_000 }, series, recentTo);
    expect(await post(n)).toEqual({ status: 200, body: { window: "10s", transitions: want } });
    expect(await post(n - 1)).toEqual({
      status: 400,
      body: { error: `from: the range holds more than ${n - 1} windows of 10s for these series, the most one back-test reads (ruleBacktestWindowsMax): narrow the range or the selector` },
    });
  });
});

describe("POST /api/v1/rules/test over windows staged, not yet written", () => {
  test("rules/test - windows published but not yet in the file are back-tested like stored ones", async () => {
    // A checkpoint every ten minutes: nothing is written while the test reads.
    const w = await startTestWeir({ ...env, WEIR_CHECKPOINT_INTERVAL: "600000" });
    const reader = openReader(join(w.dataDir, "weir.db"));
    try {
      const from = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;
      const to = from + 300_000;
      const events = history("bt.staged", ["a", "b"], from, 30, 10_000, [60, 10], 4);
      expect((await postEvents(w.url, JSON.stringify(events), "application/json", bearer(tokens.ingest))).status).toBe(202);
      const series = recount(events, ["a", "b"], "bt.staged", from, to, 10_000);
      await waitFor(async () => {
        for (const s of series) {
          const r = await fetch(`${w.url}/api/v1/windows?series=${encodeURIComponent(s.key)}&window=10s&from=${from}&to=${to}`, { headers: bearer(tokens.read) });
          if (((await r.json()) as { windows: unknown[] }).windows.length !== s.windows.length) return false;
        }
        return true;
      }, 15_000, "the windows published");
      expect(reader.query(`SELECT count(*) AS n FROM windows WHERE series LIKE 'bt.staged%'`).get()).toEqual({ n: 0 });
      const rule = { name: "staged", expr: "max(bt.staged) > 70", keep_firing_for: "10s" };
      const ref: RefRule = { name: "staged", agg: "max", op: ">", threshold: 70, forMs: 0, keepMs: 10_000, severity: "warning", labels: {}, advice: null };
      const want = referenceTransitions(ref, { overMs: null, stepMs: 10_000 }, series, to);
      expect(want.length).toBeGreaterThan(5);
      const r = await fetch(`${w.url}/api/v1/rules/test`, {
        method: "POST", body: JSON.stringify({ rule, from, to }), headers: { "content-type": "application/json", ...bearer(tokens.admin) },
      });
      expect({ status: r.status, body: await r.json() }).toEqual({ status: 200, body: { window: "10s", transitions: want } });
    } finally {
      reader.close();
      await w.stop();
    }
  });
});
