import { describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "./helpers/wait.ts";
import { postEvents, seriesIn, startTestWeir, type TestWeir } from "./helpers/weir.ts";

async function windowsOf(w: TestWeir, series: string, from: number, to: number): Promise<Array<Record<string, number>>> {
  const res = await fetch(`${w.url}/api/v1/windows?series=${encodeURIComponent(series)}&window=10s&from=${from}&to=${to}`);
  return (await res.json()).windows;
}

/** Lateness long enough that no window closes by the quiet rule during a test: only the watermark closes them. */
const env = { WEIR_LATENESS: "60s", WEIR_CHECKPOINT_INTERVAL: "100ms" };

describe("durability - checkpoints and the raw log across restarts", () => {
  test("durability - a graceful stop checkpoints open windows: the next start replays nothing and continues them", async () => {
    const dir = mkdtempSync(join(tmpdir(), "weir-dur-"));
    try {
      const base = Math.floor(Date.now() / 10_000) * 10_000 - 300_000;
      const names = [seriesIn(0, "dur.a"), seriesIn(1, "dur.b")];
      let w = await startTestWeir(env, dir);
      for (const name of names) {
        const evs = [1, 2, 3, 4, 5].map((v) => ({ name, value: v, ts: base + v, id: `${name}-${v}` }));
        expect((await postEvents(w.url, JSON.stringify(evs))).status).toBe(202);
      }
      await waitFor(() => w.engine.processedEvents(0) + w.engine.processedEvents(1) === 10, 10_000, "events aggregated");
      await w.stop();

      w = await startTestWeir(env, dir);
      expect(w.engine.replayedEvents(0) + w.engine.replayedEvents(1)).toBe(0); // no replay gap after SIGTERM's path
      expect(w.engine.recovered?.checkpoints).toBe(2);
      for (const name of names) {
        // The first five ids are still known (recovered from the raw log): re-sending them changes nothing.
        const again = [1, 2, 3, 4, 5].map((v) => ({ name, value: v, ts: base + v, id: `${name}-${v}` }));
        expect((await postEvents(w.url, JSON.stringify(again))).body).toEqual({ accepted: 5, rejected: 0, errors: [] });
        const more = [6, 7, 8, 9, 10].map((v) => ({ name, value: v, ts: base + v, id: `${name}-${v}` }));
        expect((await postEvents(w.url, JSON.stringify(more))).status).toBe(202);
        // Past the watermark: closes [base, base + 10 s).
        expect((await postEvents(w.url, JSON.stringify([{ name, value: 0, ts: base + 80_000 }]))).status).toBe(202);
      }
      for (const name of names) {
        let rows: Array<Record<string, number>> = [];
        await waitFor(async () => (rows = await windowsOf(w, name, base, base + 1)).length === 1, 10_000, `window of ${name}`);
        expect(rows[0]).toMatchObject({ start: base, end: base + 10_000, count: 10, sum: 55, min: 1, max: 10, first: 1, last: 10 });
      }
      const series = (await (await fetch(`${w.url}/api/v1/series`)).json()).series.map((s: { key: string }) => s.key).sort();
      expect(series).toEqual([...names].sort());
      await w.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test("durability - without a final checkpoint the next start replays the raw log: same windows, counted once", async () => {
    const dir = mkdtempSync(join(tmpdir(), "weir-dur-"));
    try {
      const base = Math.floor(Date.now() / 10_000) * 10_000 - 300_000;
      const name = seriesIn(0, "dur.c");
      // A checkpoint interval longer than the test: the only committed state is the start-up one.
      let w = await startTestWeir({ ...env, WEIR_CHECKPOINT_INTERVAL: "10m" }, dir);
      const evs = [3, 1, 4, 1, 5, 9, 2, 6].map((v, i) => ({ name, value: v, ts: base + i }));
      expect((await postEvents(w.url, JSON.stringify(evs))).status).toBe(202);
      await waitFor(() => w.engine.processedEvents(0) === 8, 10_000, "events aggregated");
      // A copy of the data directory now is what a crash would leave: the log holds the events, no checkpoint does.
      const crashed = mkdtempSync(join(tmpdir(), "weir-dur-crash-"));
      await Bun.$`cp -r ${dir}/. ${crashed}`.quiet();
      await w.stop();
      rmSync(dir, { recursive: true, force: true });

      w = await startTestWeir(env, crashed);
      try {
        expect(w.engine.replayedEvents(0)).toBe(8);
        const metrics = await (await fetch(`${w.url}/metrics`)).text();
        expect(metrics).toContain('weir_events_replayed_total{partition="0"} 8\n');
        expect(metrics).toContain('weir_events_replayed_total{partition="1"} 0\n');
        expect(metrics).toMatch(/weir_checkpoints_total\{partition="0"\} [1-9]/); // the one after replay, at least
        expect((await postEvents(w.url, JSON.stringify([{ name, value: 0, ts: base + 80_000 }]))).status).toBe(202);
        let rows: Array<Record<string, number>> = [];
        await waitFor(async () => (rows = await windowsOf(w, name, base, base + 1)).length === 1, 10_000, "window after replay");
        expect(rows[0]).toMatchObject({ count: 8, sum: 31, min: 1, max: 9, first: 3, last: 6 });
      } finally {
        await w.stop();
        rmSync(crashed, { recursive: true, force: true });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test("durability - a request refused with 503 registers no series and moves no listed value", async () => {
    const w = await startTestWeir({ ...env, WEIR_FAILPOINTS: "1", WEIR_RING_BYTES: "4MiB" });
    try {
      const name = seriesIn(0, "dur.keep");
      expect((await postEvents(w.url, JSON.stringify([{ name, value: 1, ts: Date.now() - 1000 }]))).status).toBe(202);
      w.engine.supervisor.post("partition-0", { type: "fault", mode: "pause" });
      // Fill partition 0's ring until a request is refused; its fresh series must leave no trace.
      const big = Array.from({ length: 50_000 }, (_, i) => ({ name, value: 2, ts: Date.now() - 1000 + (i % 100) }));
      let status = 202;
      for (let i = 0; i < 50 && status === 202; i++) status = (await postEvents(w.url, JSON.stringify(big))).status;
      expect(status).toBe(503);
      // As large as the request just refused, so it cannot fit either, with a new series and a new value in it.
      const refusedBody = [...big.slice(2), { name: seriesIn(0, "dur.refused"), value: 7 }, { name, value: 99, ts: Date.now() }];
      const refused = await postEvents(w.url, JSON.stringify(refusedBody));
      expect(refused.status).toBe(503);
      const listing = (await (await fetch(`${w.url}/api/v1/series`)).json()).series;
      expect(listing.map((s: { key: string }) => s.key)).toEqual([name]);
      expect(listing[0].last.value).toBe(2);
      w.engine.supervisor.post("partition-0", { type: "fault", mode: "resume" });
    } finally {
      await w.stop();
    }
  }, 60_000);

  test("durability - a damaged store is named at start and rebuilt from the raw log", async () => {
    const dir = mkdtempSync(join(tmpdir(), "weir-dur-"));
    try {
      const base = Math.floor(Date.now() / 10_000) * 10_000 - 300_000;
      const name = seriesIn(1, "dur.r");
      let w = await startTestWeir(env, dir);
      const evs = [10, 20, 30].map((v, i) => ({ name, value: v, ts: base + i }));
      expect((await postEvents(w.url, JSON.stringify([...evs, { name, value: 0, ts: base + 80_000 }]))).status).toBe(202);
      await waitFor(async () => (await windowsOf(w, name, base, base + 1)).length === 1, 10_000, "window stored");
      await w.stop();
      for (const f of readdirSync(dir)) if (f.startsWith("weir.db")) rmSync(join(dir, f));
      writeFileSync(join(dir, "weir.db"), "this is not a SQLite file, it is what a bad disk left".repeat(100));
      await expect(startTestWeir(env, dir)).rejects.toThrow(/store .*weir\.db: file is not a database/);

      const rebuild = Bun.spawnSync(["bun", "src/cli.ts", "rebuild"], { env: { ...process.env, WEIR_DATA_DIR: dir, WEIR_LATENESS: "60s", WEIR_PARTITIONS: "2" } });
      expect(rebuild.stderr.toString()).toContain("rebuilt");
      expect(rebuild.exitCode).toBe(0);
      expect(readdirSync(dir).some((f) => f.startsWith("weir.db.damaged-"))).toBe(true);
      w = await startTestWeir(env, dir);
      const rows = await windowsOf(w, name, base, base + 1);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ count: 3, sum: 60, min: 10, max: 30 });
      await w.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
