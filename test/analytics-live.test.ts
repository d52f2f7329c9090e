import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createPrng } from "../src/sim/prng.ts";
import { waitFor } from "./helpers/wait.ts";
import { postEvents, startTestWeir, type TestWeir } from "./helpers/weir.ts";

const json = (x: unknown) => JSON.stringify(x);
const get = async (w: TestWeir, path: string) => (await fetch(w.url + path)).json();

describe("analytics - anomalies, trends and rollups end to end", () => {
  let w: TestWeir;
  let ws: WebSocket;
  const live: Array<Record<string, unknown>> = [];
  const base = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 2 * 3_600_000; // two hours ago, on the hour
  beforeAll(async () => {
    w = await startTestWeir();
    ws = new WebSocket(w.url.replace("http", "ws") + "/ws/live");
    ws.onmessage = (m) => live.push(JSON.parse(String(m.data)));
    await waitFor(() => live.length > 0, 5000, "hello");
    ws.send(json({ op: "subscribe", topics: ["anomalies:an.*", "alerts", "trends:tr.*", "windows:1m:ro.*"] }));
    ws.send(json({ op: "throttle", ms: 0 }));
  });
  afterAll(async () => {
    ws.close();
    await w.stop();
  });

  test("anomaly - a spike after a quiet baseline is listed, alerted and pushed live with its explanation", async () => {
    const rnd = createPrng(5);
    const evs = Array.from({ length: 300 }, (_, i) => ({ name: "an.temp", value: 100 + rnd.gaussian(), ts: base + i * 100 }));
    const spikeTs = base + 300 * 100;
    evs.push({ name: "an.temp", value: 130, ts: spikeTs });
    expect((await postEvents(w.url, json(evs))).status).toBe(202);
    let list: Array<Record<string, unknown>> = [];
    await waitFor(async () => (list = (await get(w, "/api/v1/anomalies?series=an.temp")).anomalies).length > 0, 5000, "anomaly stored");
    expect(list[0]).toMatchObject({ series: "an.temp", ts: spikeTs, value: 130, severity: "critical", source: "value" });
    expect(Number(list[0].mean)).toBeCloseTo(100, 0);
    expect(Number(list[0].z)).toBeGreaterThan(5);
    const alerts = (await get(w, "/api/v1/alerts")).alerts;
    expect(alerts[0]).toMatchObject({ kind: "anomaly", series: "an.temp", ts: spikeTs, severity: "critical" });
    expect((await get(w, "/api/v1/alerts?state=firing")).alerts).toEqual([]);
    expect(await get(w, "/api/v1/anomalies?severity=bad")).toEqual({ error: "severity: must be one of warning, critical" });
    await waitFor(() => live.some((m) => m.type === "anomaly" && m.ts === spikeTs) && live.some((m) => m.type === "alert" && m.ts === spikeTs), 5000, "anomaly and alert pushed");
    const series = (await get(w, "/api/v1/series?match=an.temp")).series[0];
    expect(series.anomaly).toMatchObject({ ts: spikeTs, severity: "critical" });
    // Once the series has moved on past the cooldown, the anomaly is no longer open.
    expect((await postEvents(w.url, json({ name: "an.temp", value: 100, ts: spikeTs + 61_000 }))).status).toBe(202);
    expect((await get(w, "/api/v1/series?match=an.temp")).series[0].anomaly).toBeNull();
  });

  test("trend - a ramp is rising, flat noise is stable, over REST, the series listing and live", async () => {
    const rnd = createPrng(9);
    const evs = [];
    for (let i = 0; i < 1200; i++) {
      evs.push({ name: "tr.ramp", value: 50 + i * 0.05 + rnd.gaussian() * 0.2, ts: base + i * 100 });
      evs.push({ name: "tr.flat", value: 50 + rnd.gaussian() * 0.2, ts: base + i * 100 });
    }
    expect((await postEvents(w.url, json(evs))).status).toBe(202);
    let trends: Array<{ series: string; class: string; slope: number }> = [];
    await waitFor(async () => (trends = (await get(w, "/api/v1/trends?match=tr.*")).trends).length === 2, 5000, "two trends");
    expect(trends.map((t) => [t.series, t.class])).toEqual([["tr.flat", "stable"], ["tr.ramp", "rising"]]);
    expect(trends[1].slope).toBeCloseTo(0.5, 1); // 0.05 per 100 ms
    expect((await get(w, "/api/v1/series?match=tr.ramp")).series[0].trend).toBe("rising");
    await waitFor(() => live.some((m) => m.type === "trend" && m.series === "tr.ramp" && m.class === "rising"), 5000, "trend pushed");
  });

  test("rollup - 1m windows equal a recount of their events; readable with window=1m", async () => {
    const evs = [];
    for (let i = 0; i < 240; i++) evs.push({ name: "ro.v", value: (i * 37) % 101, ts: base + i * 500 }); // two minutes, 120 per minute
    evs.push({ name: "ro.v", value: 0, ts: base + 200_000 });
    expect((await postEvents(w.url, json(evs))).status).toBe(202);
    let rows: Array<Record<string, number>> = [];
    await waitFor(async () => (rows = (await get(w, "/api/v1/windows?series=ro.v&window=1m")).windows).length >= 2, 5000, "two 1m windows");
    for (const [k, r] of rows.slice(0, 2).entries()) {
      const vals = evs.filter((e) => e.ts >= base + k * 60_000 && e.ts < base + (k + 1) * 60_000).map((e) => e.value);
      const sorted = [...vals].sort((a, b) => a - b);
      const rank = (q: number) => sorted[Math.ceil(q * sorted.length) - 1];
      expect(r).toMatchObject({ start: base + k * 60_000, end: base + (k + 1) * 60_000, count: 120, sum: vals.reduce((a, b) => a + b, 0), min: sorted[0], max: sorted[119], first: vals[0], last: vals[119] });
      for (const [q, f] of [[0.5, "p50"], [0.95, "p95"], [0.99, "p99"]] as const) expect(Math.abs(r[f] - rank(q))).toBeLessThanOrEqual(0.01 * Math.abs(rank(q)));
    }
    await waitFor(() => live.some((m) => m.type === "window" && m.window === "1m" && m.series === "ro.v"), 5000, "1m window pushed");
  });
});
