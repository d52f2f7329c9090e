/**
 * SQLite writes run on the store writer thread while the main thread goes
 * on: a partition's commit can be in flight when its worker dies. The new
 * worker must start from the checkpoint in flight (not the older one in the
 * file), so that once the writer answers, every window is exact and no
 * anomaly is stored twice.
 */
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { partitionOf } from "../src/runtime/series.ts";
import { createPrng } from "../src/sim/prng.ts";
import { recountWindow } from "./helpers/recount.ts";
import { waitFor } from "./helpers/wait.ts";
import { postEvents, startTestWeir } from "./helpers/weir.ts";

describe("store writer", () => {
  test("store writer - a worker that dies while its commit is in flight restarts from that checkpoint: windows exact, no anomaly twice", async () => {
    const dir = mkdtempSync(join(tmpdir(), "weir-test-")); // kept past stop: the file is read after the final checkpoint
    const w = await startTestWeir({ WEIR_FAILPOINTS: "1", WEIR_LATENESS: "0" }, dir);
    const name = "sw.temp";
    const p = partitionOf(name, 2);
    const base = Math.floor(Date.now() / 10_000) * 10_000 - 600_000;
    const rnd = createPrng(7);
    const sent: Array<{ name: string; value: number; ts: number }> = [];
    const send = async (evs: typeof sent) => {
      expect((await postEvents(w.url, JSON.stringify(evs))).status).toBe(202);
      sent.push(...evs);
    };

    const release = w.engine.holdStoreWriter();
    // 30 s of readings with a spike (an anomaly), then one 60 s on whose watermark closes their windows.
    await send(Array.from({ length: 300 }, (_, i) => ({ name, value: i === 250 ? 150 : 100 + rnd.gaussian(), ts: base + i * 100 })));
    await send([{ name, value: 100, ts: base + 60_000 }]);
    await waitFor(() => w.engine.commitInFlight(p), 10_000, "a checkpoint of the partition on the held writer");
    // More results after the checkpoint in flight, then the worker dies before the writer answers.
    const processed = w.engine.processedEvents(p);
    await send(Array.from({ length: 50 }, (_, i) => ({ name, value: 100 + rnd.gaussian(), ts: base + 60_000 + i * 100 })));
    await send([{ name, value: 100, ts: base + 120_000 }]);
    await waitFor(() => w.engine.processedEvents(p) === processed + 51, 10_000, "the later events aggregated");
    expect(w.engine.supervisor.post(`partition-${p}`, { type: "fault", mode: "throw" })).toBe(true);
    await waitFor(() => w.engine.supervisor.restartsTotal(`partition-${p}`) === 1, 10_000, "the worker restarted");
    await waitFor(() => w.engine.notReady().length === 0, 10_000, "ready again");
    expect(w.engine.commitInFlight(p)).toBe(true); // still held: the restart did not wait for it
    release();
    await waitFor(() => !w.engine.commitInFlight(p), 10_000, "the held commit answered");
    await w.stop();

    const db = new Database(join(dir, "weir.db"), { readonly: true });
    const windows = db.query(`SELECT start, "end", count, sum, min, max, avg, p50, p95, p99, first, last FROM windows
      WHERE series = ? AND window = '10s' ORDER BY start`).all(name) as Array<Record<string, number>>;
    const starts = [...new Set(sent.filter((e) => e.ts < base + 120_000).map((e) => Math.floor(e.ts / 10_000) * 10_000))].sort((a, b) => a - b);
    expect(windows.map((r) => r.start)).toEqual(starts);
    for (const r of windows) {
      const want = recountWindow(sent, r.start, r.end)!;
      expect([r.count, r.min, r.max, r.first, r.last]).toEqual([want.count, want.min, want.max, want.first, want.last]);
      expect(r.sum).toBeCloseTo(want.sum, 9);
    }
    const spikes = db.query(`SELECT count(*) AS n FROM anomalies WHERE series = ? AND ts = ?`).get(name, base + 25_000) as { n: number };
    expect(spikes.n).toBe(1);
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);
});
