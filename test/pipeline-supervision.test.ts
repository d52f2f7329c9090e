import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openReader } from "../src/storage/db.ts";
import { waitFor } from "./helpers/wait.ts";
import { postEvents, seriesIn, startTestWeir, type TestWeir } from "./helpers/weir.ts";

/** Sends 3 events into one 10 s window of `name`, then one that passes the watermark; resolves the window read back. */
async function windowRoundTrip(w: TestWeir, name: string, base: number) {
  const evs = [1, 2, 3].map((v, i) => ({ name, value: v, ts: base + i }));
  expect((await postEvents(w.url, JSON.stringify([...evs, { name, value: 0, ts: base + 20_000 }]))).status).toBe(202);
  let rows: Array<Record<string, number>> = [];
  await waitFor(async () => {
    rows = (await (await fetch(`${w.url}/api/v1/windows?series=${name}&window=10s&from=${base}&to=${base + 1}`)).json()).windows;
    return rows.length === 1;
  }, 10_000, `window of ${name}`);
  return rows[0];
}

describe("supervision - partition workers under the real pipeline", () => {
  let w: TestWeir;
  const base = Math.floor(Date.now() / 10_000) * 10_000 - 600_000;
  beforeAll(async () => {
    w = await startTestWeir({ WEIR_FAILPOINTS: "1" });
  });
  afterAll(() => w.stop());

  test("supervision - a partition worker that throws is restarted; both partitions keep aggregating", async () => {
    expect(w.engine.supervisor.post("partition-0", { type: "fault", mode: "throw" })).toBe(true);
    await waitFor(() => w.engine.supervisor.restartsTotal("partition-0") === 1, 10_000, "partition-0 restarted");
    await waitFor(() => w.engine.notReady().length === 0, 10_000, "ready again");
    expect(w.engine.supervisor.restartsTotal("partition-1")).toBe(0);
    for (const p of [0, 1]) {
      const name = seriesIn(p, "after.throw");
      expect(await windowRoundTrip(w, name, base)).toMatchObject({ start: base, count: 3, sum: 6, min: 1, max: 3 });
    }
    const m = await (await fetch(`${w.url}/metrics`)).text();
    expect(m).toContain('weir_actor_restarts_total{actor="partition-0"} 1');
  }, 30_000);

  test("supervision - a hung partition worker (no heartbeats) is detected and restarted", async () => {
    w.engine.supervisor.post("partition-1", { type: "fault", mode: "hang" });
    await waitFor(() => w.engine.supervisor.restartsTotal("partition-1") === 1, 15_000, "partition-1 restarted after missing heartbeats");
    await waitFor(async () => (await fetch(`${w.url}/ready`)).status === 200, 10_000, "ready again");
    const name = seriesIn(1, "after.hang");
    expect(await windowRoundTrip(w, name, base + 60_000)).toMatchObject({ count: 3, sum: 6 });
  }, 40_000);

  test("supervision - a partition past its restart budget is failed and /ready names it", async () => {
    const sup = w.engine.supervisor;
    for (let i = 0; sup.status().find((s) => s.id === "partition-0")!.state !== "failed" && i < 20; i++) {
      await waitFor(() => sup.status().find((s) => s.id === "partition-0")!.state === "running" || sup.status().find((s) => s.id === "partition-0")!.state === "failed", 20_000, "partition-0 running or failed");
      sup.post("partition-0", { type: "fault", mode: "exit" });
      await waitFor(() => sup.status().find((s) => s.id === "partition-0")!.state !== "running", 5000, "partition-0 down");
    }
    expect(sup.status().find((s) => s.id === "partition-0")!.state).toBe("failed");
    const ready = await fetch(`${w.url}/ready`);
    expect(ready.status).toBe(503);
    expect((await ready.json()).error).toBe("not ready: partition-0 is failed");
    expect(sup.status().find((s) => s.id === "partition-1")!.state).toBe("running");
    // Only the failed partition's series are refused; the other partition's still get in.
    const refused = await postEvents(w.url, JSON.stringify({ name: seriesIn(0, "to.failed"), value: 1 }));
    expect(refused.status).toBe(503);
    expect(refused.body).toEqual({ error: "overloaded: partition 0 failed; nothing of this request was accepted" });
    expect(refused.headers.get("retry-after")).toBe("30");
    expect((await postEvents(w.url, JSON.stringify({ name: seriesIn(1, "to.live"), value: 1 }))).status).toBe(202);
  }, 90_000);
});

describe("supervision - out of memory", () => {
  test("supervision - a partition worker over WEIR_WORKER_HEAP_MAX is restarted from its checkpoint; its open window loses nothing", async () => {
    // Lateness long enough that only the watermark closes the window: it must close in the new incarnation.
    const w = await startTestWeir({ WEIR_FAILPOINTS: "1", WEIR_WORKER_HEAP_MAX: "64MiB", WEIR_LATENESS: "60s" });
    try {
      const name = seriesIn(0, "after.grow");
      const at = Math.floor(Date.now() / 10_000) * 10_000 - 300_000;
      const post = async (values: number[], offset: number) =>
        expect((await postEvents(w.url, JSON.stringify(values.map((v, i) => ({ name, value: v, ts: at + offset + i }))))).status).toBe(202);
      await post([10, 20], 5);
      await waitFor(() => w.engine.processedEvents(0) === 2, 10_000, "the two events in partition 0");
      w.engine.supervisor.post("partition-0", { type: "fault", mode: "grow" });
      await waitFor(() => w.engine.supervisor.restartsTotal("partition-0") === 1, 20_000, "partition-0 restarted over its heap bound");
      expect(w.engine.supervisor.status().find((c) => c.id === "partition-0")?.lastError).toMatch(/out of memory: heap \d+ MiB over WEIR_WORKER_HEAP_MAX 64 MiB$/);
      await waitFor(() => w.engine.notReady().length === 0, 10_000, "ready again");
      await post([1, 2, 3], 0);
      expect((await postEvents(w.url, JSON.stringify([{ name, value: 0, ts: at + 80_000 }]))).status).toBe(202);
      let rows: Array<Record<string, number>> = [];
      await waitFor(async () => {
        rows = (await (await fetch(`${w.url}/api/v1/windows?series=${name}&window=10s&from=${at}&to=${at + 1}`)).json()).windows;
        return rows.length === 1;
      }, 10_000, "the window stored");
      expect(rows[0]).toMatchObject({ start: at, count: 5, sum: 36, min: 1, max: 20 });
      expect(w.engine.supervisor.restartsTotal("partition-1")).toBe(0);
    } finally {
      await w.stop();
    }
  }, 40_000);
});

describe("supervision - live pushes across a worker restart", () => {
  test("supervision - a restarted worker's replay is stored once and not pushed live a second time", async () => {
    // No checkpoint by interval: the restarted worker replays every window the first one closed.
    const dir = mkdtempSync(join(tmpdir(), "weir-relive-"));
    const w = await startTestWeir({ WEIR_FAILPOINTS: "1", WEIR_LATENESS: "60s", WEIR_CHECKPOINT_INTERVAL: "10m" }, dir);
    let stopped = false;
    const live: Array<{ type: string; series?: string; start?: number; count?: number }> = [];
    const ws = new WebSocket(w.url.replace("http", "ws") + "/ws/live");
    try {
      ws.onmessage = (m) => live.push(JSON.parse(String(m.data)));
      await waitFor(() => live.length > 0, 5000, "hello");
      ws.send(JSON.stringify({ op: "subscribe", topics: ["windows:10s:*"] }));
      const base = Math.floor(Date.now() / 10_000) * 10_000 - 300_000;
      const name = seriesIn(0, "relive.a");
      const probe = seriesIn(1, "relive.p");
      const windowsOf = (series: string) => live.filter((m) => m.type === "window" && m.series === series);
      // The probe's window shows the subscription is in place.
      await waitFor(async () => {
        await postEvents(w.url, JSON.stringify([{ name: probe, value: 1, ts: base }, { name: probe, value: 1, ts: base + 80_000 }]));
        return windowsOf(probe).length > 0;
      }, 10_000, "the subscription in place");
      // Three windows of `name` close and are pushed live.
      const evs = [0, 10_000, 20_000].map((t, i) => ({ name, value: i + 1, ts: base + t + 1 }));
      // The watermark (newest − 60 s) reaches base + 30 s: the three close, [base + 30 s, base + 40 s) stays open.
      expect((await postEvents(w.url, JSON.stringify([...evs, { name, value: 9, ts: base + 90_000 }]))).status).toBe(202);
      await waitFor(() => windowsOf(name).length === 3, 10_000, "three windows pushed live");
      expect(w.engine.supervisor.post("partition-0", { type: "fault", mode: "throw" })).toBe(true);
      await waitFor(() => w.engine.supervisor.restartsTotal("partition-0") === 1 && w.engine.notReady().length === 0, 10_000, "partition-0 back");
      expect(w.engine.replayedEvents(0)).toBeGreaterThanOrEqual(4); // it did compute them again
      // One more window closes after the restart: it, and only it, is pushed.
      expect((await postEvents(w.url, JSON.stringify([{ name, value: 4, ts: base + 30_001 }, { name, value: 9, ts: base + 100_000 }]))).status).toBe(202);
      await waitFor(() => windowsOf(name).some((m) => m.start === base + 30_000), 10_000, "the fourth window pushed");
      expect(windowsOf(name).map((m) => [m.start, m.count])).toEqual([[base, 1], [base + 10_000, 1], [base + 20_000, 1], [base + 30_000, 1]]);
      // REST answers each once: the three the replay computed again and the fourth (staged, or committed by then).
      let stored: Array<{ start: number; count: number }> = [];
      await waitFor(async () => {
        const res = await fetch(`${w.url}/api/v1/windows?series=${encodeURIComponent(name)}&window=10s&from=${base}&to=${base + 40_000}`);
        return (stored = (await res.json()).windows).length === 4;
      }, 10_000, "four windows answered");
      expect(stored.map((r) => [r.start, r.count])).toEqual([[base, 1], [base + 10_000, 1], [base + 20_000, 1], [base + 30_000, 1]]);
      ws.close();
      await w.stop();
      stopped = true;
      const db = openReader(join(dir, "weir.db"));
      const rows = db.query("SELECT start, count FROM windows WHERE series = ? AND window = '10s' ORDER BY start").all(name);
      db.close();
      // The file, after the final checkpoint of a graceful stop, holds each once.
      expect(rows).toEqual([base, base + 10_000, base + 20_000, base + 30_000].map((start) => ({ start, count: 1 })));
    } finally {
      ws.close();
      if (!stopped) await w.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 40_000);
});
