/**
 * Continuous views end to end against a real weir (2 partitions, worker
 * threads, SQLite): a view's groups gather series from both partitions,
 * every view window (tumbling and sliding) equals a recount of the posted
 * events, the results are series (listed, read at /api/v1/windows),
 * `having` hits are alerts of kind view, and the admin API puts, lists and
 * deletes views (a bad one a 400 naming the part at fault).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { limits } from "../src/runtime/limits.ts";
import { partitionOf, seriesKey } from "../src/runtime/series.ts";
import { mulberry32 } from "./helpers/prng.ts";
import { waitFor } from "./helpers/wait.ts";
import { postEvents, startTestWeir, type TestWeir } from "./helpers/weir.ts";
import { readSse } from "./helpers/sse.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function weirWith(config: object): Promise<TestWeir> {
  const dir = mkdtempSync(join(tmpdir(), "weir-views-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "weir.json"), JSON.stringify(config));
  const w = await startTestWeir({ WEIR_CONFIG: join(dir, "weir.json"), WEIR_LATENESS: "0", WEIR_CHECKPOINT_INTERVAL: "200ms" });
  cleanups.push(() => w.stop());
  return w;
}

const getJson = async (url: string) => (await fetch(url)).json();

interface Ev { name: string; tags: { page: string; user: string }; value: number; ts: number }

/** count, sum, min, max per (group key, window start) of the events a view with `from: shop.*`, `group_by: [page]` takes. */
function recount(events: Ev[], view: string, sizeMs: number, slideMs: number) {
  const out = new Map<string, { count: number; sum: number; min: number; max: number }>();
  for (const e of events) {
    const key = seriesKey(`view.${view}`, { page: e.tags.page });
    for (let start = Math.floor(e.ts / slideMs) * slideMs; start > e.ts - sizeMs; start -= slideMs) {
      const k = `${key}|${start}`;
      const w = out.get(k) ?? { count: 0, sum: 0, min: Infinity, max: -Infinity };
      w.count++;
      w.sum += e.value;
      w.min = Math.min(w.min, e.value);
      w.max = Math.max(w.max, e.value);
      out.set(k, w);
    }
  }
  return out;
}

describe("views - end to end", () => {
  test("views - groups gather series of both partitions; every window, tumbling and sliding, equals a recount; results are series; having hits are alerts", async () => {
    const w = await weirWith({
      views: [
        { name: "per_page", from: "shop.*", group_by: ["page"], window: "1m", aggregates: ["count", "sum", "min", "max"], having: "count > 20" },
        { name: "per_page_sliding", from: "shop.*", group_by: ["page"], window: "2m/1m", aggregates: ["count", "sum", "min", "max"] },
      ],
    });
    const rand = mulberry32(20261205);
    const t0 = Math.floor((Date.now() - 900_000) / 60_000) * 60_000;
    const events: Ev[] = [];
    for (let i = 0; i < 600; i++) {
      const tags = { page: ["/", "/cart", "/checkout"][Math.floor(rand() * 3)], user: `u${Math.floor(rand() * 12)}` };
      events.push({ name: ["shop.view", "shop.click", "shop.purchase"][Math.floor(rand() * 3)], tags, value: Math.floor(rand() * 100), ts: t0 + i * 1000 });
    }
    // The groups really span partitions: a page's series (one per user and event name) land on both.
    const parts = new Set(events.filter((e) => e.tags.page === "/").map((e) => partitionOf(seriesKey(e.name, e.tags), 2)));
    expect([...parts].sort()).toEqual([0, 1]);
    for (let i = 0; i < events.length; i += 100) expect((await postEvents(w.url, JSON.stringify(events.slice(i, i + 100)))).status).toBe(202);
    // Closed windows: by event time, all but the series' last.
    const lastEnd = t0 + 540_000;
    for (const [view, sizeMs, slideMs, label] of [["per_page", 60_000, 60_000, "1m"], ["per_page_sliding", 120_000, 60_000, "2m/1m"]] as const) {
      const want = recount(events, view, sizeMs, slideMs);
      const keys = [...want.keys()].filter((k) => Number(k.slice(k.lastIndexOf("|") + 1)) + sizeMs <= lastEnd);
      const read = async () => {
        const got = new Map<string, object>();
        for (const page of ["/", "/cart", "/checkout"]) {
          const series = seriesKey(`view.${view}`, { page });
          const body = await getJson(`${w.url}/api/v1/windows?series=${encodeURIComponent(series)}&window=${encodeURIComponent(label)}&limit=1000`);
          for (const r of body.windows) got.set(`${series}|${r.start}`, { count: r.count, sum: r.sum, min: r.min, max: r.max });
        }
        return got;
      };
      await waitFor(async () => {
        const got = await read();
        return keys.every((k) => JSON.stringify(got.get(k)) === JSON.stringify(want.get(k)));
      }, 15_000, `${view}'s windows equal to the recount`);
      const got = await read();
      for (const k of keys) expect({ k, ...got.get(k) }).toEqual({ k, ...want.get(k)! });
      expect(keys.length).toBeGreaterThan(20);
    }
    const listed = (await getJson(`${w.url}/api/v1/series?match=${encodeURIComponent("view.per_page{*")}`)).series.map((s: { key: string }) => s.key).sort();
    expect(listed).toEqual(['view.per_page{page="/"}', 'view.per_page{page="/cart"}', 'view.per_page{page="/checkout"}']);
    // having count > 20: each closed (group, minute) over 20 is one alert, once.
    const over = [...recount(events, "per_page", 60_000, 60_000).entries()].filter(([k, v]) => v.count > 20 && Number(k.slice(k.lastIndexOf("|") + 1)) + 60_000 <= lastEnd);
    expect(over.length).toBeGreaterThan(0);
    await waitFor(async () => (await getJson(`${w.url}/api/v1/alerts?kind=view&limit=1000`)).alerts.length >= over.length, 10_000, "the view's having alerts");
    const alerts = (await getJson(`${w.url}/api/v1/alerts?kind=view&limit=1000`)).alerts as Array<{ kind: string; rule: string; series: string; ts: number; value: number }>;
    const hit = (a: { series: string; ts: number }) => `${a.series}|${a.ts}`;
    for (const [k, v] of over) expect(alerts.find((a) => hit(a) === k)).toMatchObject({ kind: "view", rule: "per_page", value: v.count, threshold: 20 });
    expect(new Set(alerts.map(hit)).size).toBe(alerts.length);
  });

  test("views - a join with a reference table loaded from CSV: groups by the joined column, a missing row under unknown, and a PATCH mid-stream regroups the events handled after it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "weir-views-join-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, "users.csv"), "user_id,segment,country\nu1,new,DE\nu2,vip,DE\nu3,vip,FR\n");
    writeFileSync(join(dir, "weir.json"), JSON.stringify({
      tables: { users: { file: "users.csv", key: "user_id" } },
      views: [{ name: "by_segment", from: "shop.*", where: { "users.country": "!=FR" }, join: { table: "users", on: "user" }, group_by: ["users.segment"], window: "1m", aggregates: ["count", "sum"] }],
    }));
    const w = await startTestWeir({ WEIR_CONFIG: join(dir, "weir.json"), WEIR_LATENESS: "0", WEIR_CHECKPOINT_INTERVAL: "200ms" });
    cleanups.push(() => w.stop());
    const t0 = Math.floor((Date.now() - 600_000) / 60_000) * 60_000;
    const ev = (user: string, value: number, ts: number) => ({ name: "shop.purchase", tags: { user }, value, ts });
    // Minute 0: u1 (new), u2 (vip), u3 (FR: left out), u4 (no row: unknown).
    expect((await postEvents(w.url, JSON.stringify([ev("u1", 10, t0 + 1000), ev("u2", 20, t0 + 2000), ev("u3", 30, t0 + 3000), ev("u4", 40, t0 + 4000)]))).status).toBe(202);
    const patch = await fetch(`${w.url}/api/v1/tables/users`, { method: "PATCH", body: "user_id,segment,country\nu1,vip,DE\n", headers: { "content-type": "text/csv" } });
    expect(patch.status).toBe(200);
    // The worker takes the change before the next batch; minute 1: u1 is vip now. Minute 2 closes minute 1.
    const sent = await postEvents(w.url, JSON.stringify([ev("u1", 1, t0 + 61_000), ev("u2", 2, t0 + 62_000), ev("u4", 4, t0 + 63_000), ev("u2", 0, t0 + 125_000), ev("u1", 0, t0 + 125_000), ev("u4", 0, t0 + 125_000)]));
    expect(sent.status).toBe(202);
    const window = async (segment: string, start: number) => {
      const body = await getJson(`${w.url}/api/v1/windows?series=${encodeURIComponent(seriesKey("view.by_segment", { segment }))}&window=1m`);
      const r = (body.windows as Array<{ start: number; count: number; sum: number }>).find((x) => x.start === start);
      return r === undefined ? null : [r.count, r.sum];
    };
    const all = async () => JSON.stringify([
      await window("new", t0), await window("vip", t0), await window("unknown", t0), await window("new", t0 + 60_000), await window("vip", t0 + 60_000), await window("unknown", t0 + 60_000),
    ]);
    const want = JSON.stringify([[1, 10], [1, 20], [1, 40], null, [2, 3], [1, 4]]);
    // Each partition's part lands with its own checkpoint: wait for all of them, then compare exactly.
    await waitFor(async () => (await all()) === want, 10_000, "both minutes' groups");
    expect(await all()).toBe(want);
  }, 30_000);

  test("views - table changes wait for a full partition queue up to tableMarkersWaitingMax, then are 503 with Retry-After and change nothing; once drained they go through", async () => {
    const dir = mkdtempSync(join(tmpdir(), "weir-views-markers-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, "weir.json"), JSON.stringify({ views: [{ name: "by_user", from: "fill.*", group_by: ["user"], window: "1m", aggregates: ["count"] }] }));
    const w = await startTestWeir({ WEIR_CONFIG: join(dir, "weir.json"), WEIR_RING_BYTES: "4MiB", WEIR_FAILPOINTS: "1" });
    cleanups.push(() => w.stop());
    const put = (method: string, row: string) =>
      fetch(`${w.url}/api/v1/tables/users?key=user_id`, { method, body: `user_id,segment\n${row}\n`, headers: { "content-type": "text/csv" } });
    expect((await put("PUT", "u0,new")).status).toBe(201);
    for (const s of w.engine.supervisor.status()) w.engine.supervisor.post(s.id, { type: "fault", mode: "pause" });
    const batch = JSON.stringify(Array.from({ length: 200 }, (_, i) => ({ name: `fill.s${i % 7}`, tags: { user: `u${i % 5}` }, value: i })));
    let full = false;
    // Straight into the engine: HTTP sheds at 90 % of a ring (before reading a body), and a marker needs the ring full.
    const bytes = new TextEncoder().encode(batch);
    for (let i = 0; i < 20_000 && !full; i++) {
      full = await w.engine.ingestBytes(bytes, "json").then(() => false, (e: Error) => e.name === "OverloadedError");
    }
    expect(full).toBe(true);
    // A marker is a few bytes: the first changes may still fit in the rings' last room; from then on they queue.
    const statuses: number[] = [];
    for (let i = 1; i <= 10 * limits.tableMarkersWaitingMax && statuses.at(-1) !== 503; i++) statuses.push((await put("PATCH", `u${i},vip`)).status);
    const taken = statuses.length - 1;
    expect([taken >= limits.tableMarkersWaitingMax, statuses.slice(0, taken).every((s) => s === 200), statuses.at(-1)]).toEqual([true, true, 503]);
    const refused = await put("PATCH", "late,vip");
    expect([refused.status, refused.headers.get("retry-after"), await refused.json()]).toEqual([503, "1", {
      error: `overloaded: tables: ${limits.tableMarkersWaitingMax} changes wait for a full partition queue (tableMarkersWaitingMax); try again later; nothing of this request was accepted`,
    }]);
    expect(((await getJson(`${w.url}/api/v1/tables/users`)) as { count: number }).count).toBe(1 + taken);
    for (const s of w.engine.supervisor.status()) w.engine.supervisor.post(s.id, { type: "fault", mode: "resume" });
    await waitFor(async () => (await put("PATCH", "late,vip")).status === 200, 20_000, "a change taken once the queues drain");
    expect(((await getJson(`${w.url}/api/v1/tables/users`)) as { count: number }).count).toBe(2 + taken);
  }, 60_000);

  test("views - emit: changes pushes the running values of the open window on updates:<spec>:<glob>, for a window no series has (5m)", async () => {
    const w = await weirWith({ views: [{ name: "rev", from: "shop.purchase", window: "5m", aggregates: ["sum", "count"], emit: "changes" }] });
    const out: Array<{ event: string; data: unknown }> = [];
    const sse = readSse(await fetch(`${w.url}/api/v1/stream?topic=updates:5m:view.rev*&topic=windows:5m:view.rev`), out);
    cleanups.push(() => sse.cancel());
    await waitFor(() => out.length > 0, 5_000, "the stream's hello");
    const now = Date.now();
    const start = Math.floor(now / 300_000) * 300_000;
    const purchase = (value: number) => ({ name: "shop.purchase", tags: { user: "u1" }, value, ts: Math.max(start, now - 1000) });
    const updates = () => out.filter((m) => (m.data as { type?: string }).type === "update").map((m) => m.data as { start: number; count: number; sum: number });
    expect((await postEvents(w.url, JSON.stringify([purchase(10), purchase(20), purchase(30)]))).status).toBe(202);
    await waitFor(() => updates().some((u) => u.start === start && u.count === 3), 10_000, "the first running value");
    expect((await postEvents(w.url, JSON.stringify([purchase(1), purchase(2)]))).status).toBe(202);
    await waitFor(() => updates().some((u) => u.start === start && u.count === 5), 10_000, "the second running value, same window");
    expect(updates().filter((u) => u.start === start).map((u) => [u.count, u.sum]).filter(([c]) => c === 3 || c === 5)).toEqual([[3, 60], [5, 63]]);
    const bad = await fetch(`${w.url}/api/v1/stream?topic=updates:7m:view.rev*`);
    expect(await bad.text()).toContain('unknown window spec');
  });

  test("live - updates:<spec>:<glob> on plain series: the running values of the open window (tumbling and sliding) as events arrive, only for the series asked, then the closed window", async () => {
    const w = await weirWith({});
    const out: Array<{ event: string; data: unknown }> = [];
    const sse = readSse(await fetch(`${w.url}/api/v1/stream?topic=updates:10s:run.a*&topic=updates:60s/10s:run.a&topic=windows:10s:run.a`), out);
    cleanups.push(() => sse.cancel());
    await waitFor(() => out.length > 0, 5_000, "the stream's hello");
    // A window well before now, fed in event time: its end is crossed only by the event that closes it.
    const start = Math.floor((Date.now() - 60_000) / 10_000) * 10_000;
    const ev = (name: string, value: number, dt: number) => ({ name, value, ts: start + dt });
    type Update = { type: string; series: string; window: string; start: number; end: number; count: number; sum: number; min: number; max: number; avg?: number; p50?: number; p95?: number; p99?: number; first?: number; last?: number };
    const updates = () => out.map((m) => m.data as Update).filter((u) => u.type === "update");
    expect((await postEvents(w.url, JSON.stringify([ev("run.a", 10, 100), ev("run.a", 20, 200), ev("run.b", 5, 300)]))).status).toBe(202);
    await waitFor(() => updates().some((u) => u.window === "10s" && u.count === 2), 10_000, "the first running value");
    expect((await postEvents(w.url, JSON.stringify([ev("run.a", 30, 300)]))).status).toBe(202);
    await waitFor(() => updates().some((u) => u.window === "10s" && u.count === 3), 10_000, "the next running value, same window");
    const tumbling = updates().filter((u) => u.window === "10s");
    expect(tumbling.at(-1)).toEqual({ type: "update", series: "run.a", window: "10s", start, end: start + 10_000, count: 3, sum: 60, min: 10, max: 30, avg: 20, p50: expect.any(Number), p95: expect.any(Number), p99: expect.any(Number), first: 10, last: 30 });
    expect(updates().every((u) => u.series === "run.a")).toBe(true); // run.b is not asked for
    await waitFor(() => updates().some((u) => u.window === "60s/10s" && u.count === 3), 10_000, "the sliding window's running value");
    expect(updates().filter((u) => u.window === "60s/10s").at(-1)).toMatchObject({ start: start - 50_000, end: start + 10_000, count: 3, sum: 60 });
    // The next window's event closes this one: the closed window, and the running values move on.
    expect((await postEvents(w.url, JSON.stringify([ev("run.a", 7, 10_500)]))).status).toBe(202);
    await waitFor(() => out.some((m) => (m.data as Update).type === "window" && (m.data as Update).start === start), 10_000, "the closed window");
    await waitFor(() => updates().some((u) => u.window === "10s" && u.start === start + 10_000 && u.count === 1), 10_000, "the next window's running value");
    expect(out.map((m) => m.data as Update).find((m) => m.type === "window" && m.start === start)).toMatchObject({ count: 3, sum: 60 });
  });

  test("views - the admin API: a bad view is a 400 naming the fault; a view put computes from then on; listed; deleted", async () => {
    const w = await weirWith({});
    const put = (name: string, body: unknown) =>
      fetch(`${w.url}/api/v1/views/${name}`, { method: "PUT", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
    const bad = await put("v", { from: "shop.*", window: "1m", group_by: ["users.segment"] });
    expect([bad.status, (await bad.json()).error]).toEqual([400, 'view.group_by[0]: "users.segment" reads table users, which the view does not join (join: {table: users, on: <tag>})']);
    const badWindow = await put("v", { from: "shop.*", window: "1q" });
    expect(badWindow.status).toBe(400);
    expect((await badWindow.json()).error).toMatch(/^view\.window: /);
    expect((await fetch(`${w.url}/api/v1/views/v`, { method: "PUT", body: "{}", headers: { "content-type": "text/plain" } })).status).toBe(415);
    const ok = await put("v", { from: "shop.*", window: "1m", aggregates: ["count"] });
    expect(ok.status).toBe(201);
    expect(await ok.json()).toEqual({ name: "v", source: "api", view: { name: "v", from: "shop.*", window: "1m", aggregates: ["count"] }, series: "view.v", window: "1m" });
    const t0 = Math.floor((Date.now() - 300_000) / 60_000) * 60_000;
    const evs = Array.from({ length: 9 }, (_, i) => ({ name: "shop.view", tags: { page: "/" }, value: 1, ts: t0 + i * 20_000 }));
    expect((await postEvents(w.url, JSON.stringify(evs))).status).toBe(202);
    await waitFor(async () => (await getJson(`${w.url}/api/v1/windows?series=view.v&window=1m`)).windows.length >= 2, 10_000, "the view's windows");
    expect((await getJson(`${w.url}/api/v1/windows?series=view.v&window=1m`)).windows.slice(0, 2).map((r: { start: number; count: number }) => [r.start - t0, r.count]))
      .toEqual([[0, 3], [60_000, 3]]);
    expect((await getJson(`${w.url}/api/v1/views`)).views.map((v: { name: string }) => v.name)).toEqual(["v"]);
    expect((await fetch(`${w.url}/api/v1/views/v`, { method: "DELETE" })).status).toBe(204);
    expect((await fetch(`${w.url}/api/v1/views/v`)).status).toBe(404);
  });
});
