import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import { recountWindow } from "./helpers/recount.ts";
import { waitFor } from "./helpers/wait.ts";
import { postEvents, startTestWeir, type TestWeir } from "./helpers/weir.ts";

type Ev = { name: string; value: number; ts: number; tags: Record<string, string> };
type Win = Record<string, number>;
const recount = recountWindow;

const formats = [
  { type: "json", ct: "application/json", body: (evs: Ev[]) => JSON.stringify(evs) },
  { type: "ndjson", ct: "application/x-ndjson", body: (evs: Ev[]) => evs.map((e) => JSON.stringify(e)).join("\n") + "\n" },
  { type: "msgpack", ct: "application/msgpack", body: (evs: Ev[]) => encode(evs) },
  { type: "beacon", ct: "text/plain;charset=UTF-8", body: (evs: Ev[]) => JSON.stringify(evs) },
] as const;

describe("pipeline - ingest over HTTP to stored and live windows", () => {
  let w: TestWeir;
  const base = Math.floor(Date.now() / 60_000) * 60_000 - 180_000;
  const sent = new Map<string, Ev[]>();
  const live: Array<Record<string, unknown>> = [];
  let ws: WebSocket;

  beforeAll(async () => {
    w = await startTestWeir();
    ws = new WebSocket(w.url.replace("http", "ws") + "/ws/live");
    ws.onmessage = (m) => live.push(JSON.parse(String(m.data)));
    await waitFor(() => live.length > 0, 5000, "hello");
    ws.send(JSON.stringify({ op: "subscribe", topics: ["windows:10s:it.*"] }));
    await waitFor(() => w.engine.fanout.size === 1, 5000, "subscriber registered");
  });
  afterAll(async () => {
    ws.close();
    await w.stop();
  });

  test("pipeline - hello names the configured windows", () => {
    expect(live[0]).toEqual({ type: "hello", version: "0.1.0", windows: ["10s", "60s/10s"] });
  });

  test("pipeline - all four content types land in exact windows, readable over REST and pushed live", async () => {
    for (const [fi, f] of formats.entries()) {
      const key = `it.load{format="${f.type}"}`;
      // 30 s of events, 3 per second, out of order inside each second; then one event 100 s on to pass the watermark.
      const evs: Ev[] = [];
      for (let i = 0; i < 90; i++) evs.push({ name: "it.load", value: ((i * 37 + fi * 11) % 101) - 20, ts: base + 1000 * Math.floor(i / 3) + (2 - (i % 3)) * 100, tags: { format: f.type } });
      const closer: Ev = { name: "it.load", value: 0, ts: base + 100_000, tags: { format: f.type } };
      sent.set(key, evs);
      const r1 = await postEvents(w.url, f.body(evs) as BodyInit, f.ct);
      expect(r1).toMatchObject({ status: 202, body: { accepted: 90, rejected: 0, errors: [] } });
      const r2 = await postEvents(w.url, f.body([closer]) as BodyInit, f.ct);
      expect(r2.status).toBe(202);
    }
    for (const [key, evs] of sent) {
      const expected10 = [0, 1, 2].map((k) => recount(evs, base + k * 10_000, base + (k + 1) * 10_000));
      const url = `${w.url}/api/v1/windows?series=${encodeURIComponent(key)}&window=10s`;
      let got: { windows: Win[] } = { windows: [] };
      await waitFor(async () => {
        got = await (await fetch(url)).json();
        return got.windows.length === 3;
      }, 5000, `three 10s windows of ${key}`);
      expect(got).toEqual({ series: key, window: "10s", windows: expected10 } as never);

      const expected60 = [];
      for (let end = base + 10_000; end <= base + 90_000; end += 10_000) {
        const r = recount(evs, end - 60_000, end);
        if (r) expected60.push(r);
      }
      const slide = await (await fetch(`${w.url}/api/v1/windows?series=${encodeURIComponent(key)}&window=60s/10s&limit=100`)).json();
      for (const [i, e] of expected60.entries()) {
        const g = slide.windows[i];
        for (const k of Object.keys(e)) expect(g[k]).toBeCloseTo(e[k], 9);
      }
      expect(slide.windows.length).toBe(expected60.length);

      const cols = await (await fetch(url + "&format=columns")).json();
      expect(cols.start).toEqual(expected10.map((x) => x!.start));
      expect(cols.p99).toEqual(expected10.map((x) => x!.p99));
    }
    await waitFor(() => live.filter((m) => m.type === "window").length >= 12, 5000, "12 live 10s windows");
    for (const [key, evs] of sent) {
      const mine = live.filter((m) => m.type === "window" && m.series === key && Number(m.start) < base + 30_000).sort((a, b) => Number(a.start) - Number(b.start));
      expect(mine.map(({ type, series, window, ...rest }) => rest)).toEqual([0, 1, 2].map((k) => recount(evs, base + k * 10_000, base + (k + 1) * 10_000)) as never);
    }
  }, 30_000);

  test("pipeline - an event for a closed window is late: counted, not aggregated", async () => {
    const key = `it.load{format="json"}`;
    const before = w.engine.metrics.late.get();
    const r = await postEvents(w.url, JSON.stringify({ name: "it.load", value: 1e6, ts: base + 5_000, tags: { format: "json" } }));
    expect(r.status).toBe(202);
    await waitFor(() => w.engine.metrics.late.get() === before + 1, 5000, "late counted");
    const got = await (await fetch(`${w.url}/api/v1/windows?series=${encodeURIComponent(key)}&window=10s`)).json();
    expect(got.windows[0].max).toBeLessThan(1e6);
    const metrics = await (await fetch(`${w.url}/metrics`)).text();
    expect(metrics).toContain(`weir_events_late_total ${before + 1}`);
  });

  test("pipeline - query parameters are validated, naming the parameter", async () => {
    const q = async (qs: string) => {
      const r = await fetch(`${w.url}/api/v1/windows?${qs}`);
      return { status: r.status, body: await r.json() };
    };
    expect(await q("series=x&limit=-1")).toEqual({ status: 400, body: { error: "limit: must be ≥ 1" } });
    expect(await q("series=x&limit=abc")).toEqual({ status: 400, body: { error: "limit: must be a whole number" } });
    expect(await q("series=x&window=7m")).toEqual({ status: 400, body: { error: "window: must be one of 10s, 60s/10s, 1m, 1h, or a view's window" } });
    expect(await q("series=x&from=20&to=10")).toEqual({ status: 400, body: { error: "from: must not be after to" } });
    expect((await q("window=10s")).status).toBe(400);
    expect(await q("series=none")).toEqual({ status: 200, body: { series: "none", window: "10s", windows: [] } });
  });

  test("pipeline - series listing, health, ready and metrics", async () => {
    const s = await (await fetch(`${w.url}/api/v1/series?match=it.load*`)).json();
    expect(s.series.map((x: { key: string }) => x.key).sort()).toEqual([...sent.keys()].sort());
    expect(s.series[0].last).toEqual({ ts: base + 100_000, value: 0 });
    expect(await (await fetch(`${w.url}/health`)).json()).toEqual({ status: "ok" });
    const ready = await fetch(`${w.url}/ready`);
    expect(ready.status).toBe(200);
    const m = await (await fetch(`${w.url}/metrics`)).text();
    for (const name of ["weir_events_ingested_total", "weir_events_rejected_total", "weir_events_late_total", "weir_events_duplicate_total",
      "weir_windows_emitted_total", "weir_series", "weir_queue_depth", "weir_actor_restarts_total", "weir_ws_clients",
      "weir_e2e_latency_seconds_bucket", "process_resident_memory_bytes"]) expect(m).toContain(name);
    expect(m).toContain("weir_events_ingested_total 365");
    expect(m).toContain("weir_ws_clients 1");
    expect(m).toContain('weir_ws_closed_total{reason="slow"} 0\nweir_ws_closed_total{reason="full"} 0\n');
  });
});
