/**
 * Episodes: a series that keeps alerting merges its re-fires into longer
 * episodes (cooldownGrowth, src/actors/anomaly-tuning.ts), a much stronger
 * surprise starts a new one, and the alert pressure behind it survives a
 * checkpoint exactly (a third-layout checkpoint restores with none).
 */
import { describe, expect, test } from "bun:test";
import { decode, encode } from "@msgpack/msgpack";
import { type Anomaly, anomalyDefaults, type AnomalySnapshot, createAnomalyLogic } from "../src/actors/anomaly.ts";
import { PRESSURE } from "../src/actors/anomaly-state.ts";
import { episodeAlertsFree, episodeBreakFactor } from "../src/actors/anomaly-tuning.ts";
import type { EventBatch } from "../src/actors/window.ts";

const t0 = 1_700_000_000_000;

/** Calm values (±0.5 around 20), and a 12σ spike (26) every 70 values from 300 on: each alone would alert. */
function spiky(n: number): { values: number[]; spikes: number[] } {
  const values = Array.from({ length: n }, (_, i): number => (i % 2 === 0 ? 20.5 : 19.5));
  const spikes: number[] = [];
  for (let at = 300; at < n; at += 70) {
    values[at] = 26;
    spikes.push(at);
  }
  return { values, spikes };
}

function batchOf(values: number[], from = 0): EventBatch {
  return {
    n: values.length, sid: new Uint32Array(values.length),
    ts: Float64Array.from(values, (_, i) => t0 + (from + i) * 1000), value: Float64Array.from(values), recvMs: 0,
  };
}

/** The rows at which a series (sid 0, no season: the spikes are not its rhythm) alerts. */
function alertRows(values: number[], cooldownGrowth?: number): number[] {
  const logic = createAnomalyLogic({ seriesMax: 1, season: 0, cooldownGrowth });
  const st = logic.init();
  const out: number[] = [];
  logic.handle(st, batchOf(values), (a) => out.push((a.ts - t0) / 1000));
  return out;
}

describe("anomaly episodes", () => {
  test("anomaly episodes - a series that keeps alerting waits longer between alerts; cooldownGrowth 0 keeps the fixed cooldown", () => {
    const { values, spikes } = spiky(3_000);
    expect(anomalyDefaults.cooldownValues).toBe(60);
    expect(alertRows(values, 0)).toEqual(spikes); // 70 values apart: past the fixed cooldown each time
    // Default growth 0.5: the first episodeAlertsFree (2) recent alerts are free, then each one more lengthens the
    // cooldown by half of 60 values (alerts decay with a half-life of 2,000 values): 70, 140, 210, 280 values apart.
    expect(episodeAlertsFree).toBe(2);
    expect(alertRows(values)).toEqual([300, 370, 440, 580, 720, 860, 1070, 1280, 1490, 1700, 1980, 2260, 2540, 2820]);
  });

  test("anomaly episodes - a surprise half as large again as the last alert's starts a new episode", () => {
    const { values } = spiky(3_000);
    expect(alertRows(values)).not.toContain(2890);
    values[2890] = 20 + episodeBreakFactor * 6 + 0.5; // off its prediction by just over 1.5 × the last alert's 6
    expect(alertRows(values)).toContain(2890);
    values[2890] = 20 + episodeBreakFactor * 6 - 1; // just under: still the same episode
    expect(alertRows(values)).not.toContain(2890);
  });

  test("anomaly episodes - snapshot → MessagePack → restore before every batch makes the same calls, pressure included", () => {
    const { values } = spiky(3_000);
    const logic = createAnomalyLogic({ seriesMax: 1, season: 0 });
    const play = (restore: boolean) => {
      let st = logic.init();
      const out: Anomaly[] = [];
      for (let i = 0; i < values.length; i += 37) {
        if (restore) st = logic.restore(decode(encode(logic.snapshot(st))) as AnomalySnapshot);
        logic.handle(st, batchOf(values.slice(i, i + 37), i), (a) => out.push(a));
      }
      return { out, st };
    };
    const straight = play(false);
    const restored = play(true);
    expect(straight.st.value.rows[PRESSURE]).toBeGreaterThan(episodeAlertsFree);
    expect(restored.out).toEqual(straight.out);
    expect(encode(logic.snapshot(restored.st))).toEqual(encode(logic.snapshot(straight.st)));
  });

  test("anomaly episodes - a checkpoint of the third layout restores with no alert pressure: the fixed cooldown, then growth again", () => {
    const { values } = spiky(3_000);
    const logic = createAnomalyLogic({ seriesMax: 1, season: 0 });
    let st = logic.init();
    const out: number[] = [];
    const emit = (a: Anomaly) => out.push((a.ts - t0) / 1000);
    logic.handle(st, batchOf(values.slice(0, 1_500)), emit);
    const snap = logic.snapshot(st);
    expect(snap.version).toBe(5);
    const v3 = { ...snap, version: 3, value: Float64Array.from(snap.value as Float64Array), count: Float64Array.from(snap.count as Float64Array) };
    for (let r = 0; r < snap.rows; r++) {
      v3.value[r * snap.fields + PRESSURE] = 0; // the third layout's padding
      v3.count[r * snap.fields + PRESSURE] = 0;
    }
    st = logic.restore(decode(encode(v3)) as AnomalySnapshot);
    expect(st.value.rows[PRESSURE]).toBe(0);
    logic.handle(st, batchOf(values.slice(1_500), 1_500), emit);
    // Up to 1,490 as before; then 1,560 (70 after: no recent alerts), 1,630, 1,700, and the cooldown grows again.
    expect(out).toEqual([300, 370, 440, 580, 720, 860, 1070, 1280, 1490, 1560, 1630, 1700, 1840, 1980, 2120, 2330, 2540, 2750, 2960]);
  });
});
