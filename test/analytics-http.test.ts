import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { waitFor } from "./helpers/wait.ts";
import { postEvents, startTestWeir, type TestWeir } from "./helpers/weir.ts";

const json = (x: unknown) => JSON.stringify(x);
const get = async (w: TestWeir, path: string) => {
  const r = await fetch(w.url + path);
  return { status: r.status, body: await r.json() };
};

describe("analytics over HTTP - dedupe, dead letters, top-k", () => {
  let w: TestWeir;
  const base = Math.floor(Date.now() / 10_000) * 10_000 - 300_000;
  beforeAll(async () => {
    w = await startTestWeir();
  });
  afterAll(() => w.stop());

  test("dedupe - a re-sent id is answered as accepted but counted once, across batches and within one", async () => {
    const evs = [1, 2, 3].map((v) => ({ name: "dd.v", value: v, ts: base + v, id: `dd-${v}` }));
    expect((await postEvents(w.url, json(evs))).body).toEqual({ accepted: 3, rejected: 0, errors: [] });
    const again = [...evs, { ...evs[0] }, { name: "dd.v", value: 4, ts: base + 4, id: "dd-4" }, { name: "dd.v", value: 40, ts: base + 5, id: "dd-4" }];
    expect((await postEvents(w.url, json(again))).body).toEqual({ accepted: 6, rejected: 0, errors: [] });
    expect((await postEvents(w.url, json({ name: "dd.v", value: 0, ts: base + 20_000 }))).status).toBe(202);
    let rows: Array<Record<string, number>> = [];
    await waitFor(async () => (rows = (await get(w, `/api/v1/windows?series=dd.v&window=10s`)).body.windows).length >= 1, 5000, "dd window");
    expect(rows[0]).toMatchObject({ start: base, count: 4, sum: 10, max: 4 });
    const m = await (await fetch(`${w.url}/metrics`)).text();
    expect(m).toContain("weir_events_duplicate_total 5");
    expect(m).toContain("weir_events_ingested_total 5");
  });

  test("deadletters - rejected events are listed with their reason, newest first; late ones with reason late", async () => {
    const r = await postEvents(w.url, json([{ name: "dl.ok", value: 1, ts: base }, { name: "9bad", value: 1 }, { name: "dl.ok", value: "x" }]));
    expect(r.body.rejected).toBe(2);
    // dd.v's first window closed above: an event for it now is late.
    expect((await postEvents(w.url, json({ name: "dd.v", value: 99, ts: base + 7 }))).status).toBe(202);
    let dl: Array<{ ts: number; reason: string; event: unknown }> = [];
    await waitFor(async () => (dl = (await get(w, "/api/v1/deadletters")).body.deadletters).length === 3, 5000, "3 dead letters");
    expect(dl.map((d) => [d.reason, d.event])).toEqual([
      ["late", { name: "dd.v", tags: {}, ts: base + 7, value: 99 }],
      ["value: must be a finite number", { name: "dl.ok", value: "x" }],
      ["name: must match ^[A-Za-z_][A-Za-z0-9_.:-]*$", { name: "9bad", value: 1 }],
    ]);
    expect((await get(w, "/api/v1/deadletters?limit=1")).body.deadletters.length).toBe(1);
    expect((await get(w, "/api/v1/deadletters?limit=0")).body).toEqual({ error: "limit: must be ≥ 1" });
    expect((await get(w, `/api/v1/deadletters?since=${Date.now() + 60_000}`)).body).toEqual({ deadletters: [] });
  });

  test("top - top-k of a tag by sum and by count over the last closed window equals a recount", async () => {
    const pages = ["/", "/a", "/b", "/c"];
    const evs: Array<{ name: string; value: number; ts: number; tags: Record<string, string> }> = [];
    for (let i = 0; i < 200; i++) evs.push({ name: "shop.purchase", value: (i * 13) % 97, ts: base + 30_000 + (i % 9_000), tags: { page: pages[i % 4], segment: i % 3 ? "new" : "vip" } });
    expect((await postEvents(w.url, json(evs))).status).toBe(202);
    const closers = pages.flatMap((page) => ["new", "vip"].map((segment) => ({ name: "shop.purchase", value: 0, ts: base + 60_000, tags: { page, segment } })));
    expect((await postEvents(w.url, json(closers))).status).toBe(202);
    const recount = (agg: "sum" | "count") => {
      const m = new Map<string, number>();
      for (const e of evs) m.set(e.tags.page, (m.get(e.tags.page) ?? 0) + (agg === "sum" ? e.value : 1));
      return [...m].map(([key, value]) => ({ key, value })).sort((a, b) => b.value - a.value || (a.key < b.key ? -1 : 1));
    };
    let top: { items: Array<{ key: string; value: number }>; end: number } = { items: [], end: 0 };
    // Each partition commits its closed windows with its next checkpoint: wait until all 200 events are counted.
    const counted = async () => {
      const c = (await get(w, "/api/v1/top?name=shop.purchase&by=page&agg=count")).body as typeof top;
      return c.end === base + 40_000 && c.items.reduce((n, i) => n + i.value, 0) === evs.length;
    };
    await waitFor(counted, 5000, "every partition's part of the closed window");
    top = (await get(w, "/api/v1/top?name=shop.purchase&by=page&k=3")).body;
    expect(top.end).toBe(base + 40_000);
    expect(top.items).toEqual(recount("sum").slice(0, 3));
    expect((await get(w, "/api/v1/top?name=shop.purchase&by=page&agg=count")).body.items).toEqual(recount("count"));
    expect((await get(w, "/api/v1/top?name=shop.purchase&by=page&agg=p50")).status).toBe(400); // not a ranking aggregate (avg is: top-history.test.ts)
    expect((await get(w, "/api/v1/top?by=page")).body).toEqual({ error: "name: required" });
  });
});
