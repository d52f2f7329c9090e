import { describe, expect, test } from "bun:test";
import { activityDefaults, activitySegments, createActivityState, generateActivity } from "../src/sim/activity.ts";
import { createUserPool, userPoolDefaults } from "../src/sim/shop-users.ts";
import type { SimEvent } from "../src/sim/event.ts";
import { createIotState, generateIot, iotRanges } from "../src/sim/iot.ts";
import { createPrng } from "../src/sim/prng.ts";
import { simLimits, startSimulators } from "../src/sim/runner.ts";

// The API.md "Events" rules, written out here rather than imported, so the
// test checks the simulators against the contract, not against themselves.
const nameRe = /^[A-Za-z_][A-Za-z0-9_.:-]*$/;
const tagKeyRe = /^[A-Za-z_][A-Za-z0-9_]*$/;
const t0 = Date.UTC(2025, 10, 22, 8, 0, 0);

function readings(opts: Parameters<typeof createIotState>[0], n: number, stepMs = 100): SimEvent[] {
  const s = createIotState(opts);
  const out: SimEvent[] = [];
  // A few readings per timestamp, as the runner does, so time moves through the cycle.
  for (let i = 0; i < n; i += 10) generateIot(s, t0 + (i / 10) * stepMs, Math.min(10, n - i), out);
  return out;
}

function inRange(e: SimEvent): boolean {
  const [lo, hi] = iotRanges[e.name];
  return e.value >= lo && e.value <= hi;
}

function countBy(events: SimEvent[], key: (e: SimEvent) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of events) counts[key(e)] = (counts[key(e)] ?? 0) + 1;
  return counts;
}

describe("sim", () => {
  test("sim - prng is deterministic for a seed and differs across seeds", () => {
    const draw = (seed: number) => {
      const r = createPrng(seed);
      return Array.from({ length: 100 }, (_, i) => (i % 2 ? r.next() : r.gaussian()));
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
  });

  test("sim - prng uniform and gaussian have the right moments", () => {
    const r = createPrng(9);
    const n = 100_000;
    let su = 0, sg = 0, sg2 = 0, sgg = 0, min = 1, max = 0;
    for (let i = 0; i < n; i++) {
      const u = r.next();
      su += u; min = Math.min(min, u); max = Math.max(max, u);
      const g = r.gaussian();
      const h = r.gaussian();
      sg += g + h; sg2 += g * g + h * h; sgg += g * h;
    }
    // Normals come in Box–Muller pairs; the two halves must be uncorrelated.
    expect(Math.abs(sgg / n)).toBeLessThan(0.02);
    sg /= 2; sg2 /= 2;
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    expect(Math.abs(su / n - 0.5)).toBeLessThan(0.01);
    expect(Math.abs(sg / n)).toBeLessThan(0.02);
    expect(Math.abs(sg2 / n - 1)).toBeLessThan(0.03);
  });

  test("sim - iot is deterministic for a seed", () => {
    const a = readings({ devices: 5, seed: 11, spikeProbability: 0.01 }, 3000);
    const b = readings({ devices: 5, seed: 11, spikeProbability: 0.01 }, 3000);
    const c = readings({ devices: 5, seed: 12, spikeProbability: 0.01 }, 3000);
    expect(a).toEqual(b);
    expect(a.map((e) => e.value)).not.toEqual(c.map((e) => e.value));
  });

  test("sim - iot values stay in their ranges without spikes", () => {
    // 30 simulated minutes: three temperature cycles, one full pressure cycle.
    const events = readings({ devices: 10, seed: 3, spikeProbability: 0 }, 180_000);
    expect(events.filter((e) => !inRange(e))).toEqual([]);
    // The range comes from the signal's shape, not from the clamp that guards it:
    // readings pinned at a bound would be a flat line on the chart.
    const pinned = events.filter((e) => iotRanges[e.name].includes(e.value)).length;
    expect(pinned).toBeLessThan(events.length * 0.001);
    const counts = countBy(events, (e) => e.name);
    expect(counts).toEqual({ "sensor.temperature": 60_000, "sensor.humidity": 60_000, "sensor.pressure": 60_000 });
    expect(iotRanges["sensor.temperature"]).toEqual([15, 30]);
    expect(iotRanges["sensor.humidity"]).toEqual([30, 70]);
    expect(iotRanges["sensor.pressure"]).toEqual([1000, 1025]);
  });

  test("sim - iot spikes occur at the configured rate and only spikes leave the range", () => {
    const p = 0.01;
    const n = 100_000;
    const s = createIotState({ devices: 8, seed: 5, spikeProbability: p });
    const events = generateIot(s, t0, n);
    const outside = events.filter((e) => !inRange(e)).length;
    expect(outside).toBe(s.spikes);
    // Binomial: within 5 standard deviations of n·p (fails by chance ~1 in 1.7 million).
    const sd = Math.sqrt(n * p * (1 - p));
    expect(Math.abs(s.spikes - n * p)).toBeLessThan(5 * sd);
    expect(s.readings).toBe(n);
  });

  test("sim - iot spike probability changes which readings spike and nothing else", () => {
    const clean = readings({ devices: 4, seed: 8, spikeProbability: 0 }, 5000);
    const spiky = readings({ devices: 4, seed: 8, spikeProbability: 0.05 }, 5000);
    let spikes = 0;
    for (let i = 0; i < clean.length; i++) {
      if (inRange(spiky[i])) expect(spiky[i]).toEqual(clean[i]);
      else spikes++;
    }
    expect(spikes).toBeGreaterThan(150);
    expect(spikes).toBeLessThan(350);
  });

  test("sim - iot follows a visible cycle with small steps between readings", () => {
    // One device, one reading of each metric per second, over one 10-minute period.
    const s = createIotState({ devices: 1, seed: 4, spikeProbability: 0, periodMs: 600_000 });
    const temps: number[] = [];
    for (let sec = 0; sec < 600; sec++) temps.push(generateIot(s, t0 + sec * 1000, 3)[0].value);
    const swing = Math.max(...temps) - Math.min(...temps);
    expect(swing).toBeGreaterThan(0.3 * 15); // at least 2 × 0.15 W of amplitude
    let maxStep = 0;
    for (let i = 1; i < temps.length; i++) maxStep = Math.max(maxStep, Math.abs(temps[i] - temps[i - 1]));
    expect(maxStep).toBeLessThan(1.5); // noise and drift, not jumps
  });

  test("sim - iot names and tags follow the API rules", () => {
    const events = readings({ devices: 120, seed: 1, spikeProbability: 0.01 }, 3600);
    const devices = new Set(events.map((e) => e.tags.device));
    expect(devices.size).toBe(120);
    expect(devices.has("dev-001")).toBe(true);
    expect(readings({ devices: 3 }, 9)[0].tags).toEqual({ device: "dev-01", site: "north" });
    for (const e of events) expectValidEvent(e);
    expect(new Set(events.map((e) => e.tags.site))).toEqual(new Set(["north", "south", "east", "west"]));
  });

  test("sim - activity is deterministic for a seed", () => {
    const run = (seed: number) => generateActivity(createActivityState({ seed }), t0, 5000);
    expect(run(21)).toEqual(run(21));
    expect(run(21)).not.toEqual(run(22));
  });

  test("sim - activity funnel orders views over clicks over purchases", () => {
    const events = generateActivity(createActivityState({ seed: 6 }), t0, 200_000);
    const c = countBy(events, (e) => e.name);
    expect(Object.keys(c).sort()).toEqual(["shop.click", "shop.purchase", "shop.view"]);
    expect(c["shop.view"]).toBeGreaterThan(5 * c["shop.click"]);
    expect(c["shop.click"]).toBeGreaterThan(3 * c["shop.purchase"]);
    expect(c["shop.purchase"]).toBeGreaterThan(0.005 * events.length);
    // Loyal customers convert better: purchases per view by segment.
    const rate = (seg: string) => {
      const of = events.filter((e) => e.tags.segment === seg);
      return of.filter((e) => e.name === "shop.purchase").length / of.filter((e) => e.name === "shop.view").length;
    };
    expect(rate("vip")).toBeGreaterThan(rate("returning"));
    expect(rate("returning")).toBeGreaterThan(rate("new"));
  });

  test("sim - activity amounts are positive and log-normal, views and clicks count 1", () => {
    const events = generateActivity(createActivityState({ seed: 7 }), t0, 300_000);
    for (const e of events) if (e.name !== "shop.purchase") expect(e.value).toBe(1);
    const amounts = events.filter((e) => e.name === "shop.purchase" && e.tags.segment !== "vip").map((e) => e.value);
    expect(amounts.length).toBeGreaterThan(1000);
    amounts.sort((a, b) => a - b);
    const median = amounts[amounts.length >> 1];
    const mean = amounts.reduce((a, b) => a + b, 0) / amounts.length;
    expect(amounts[0]).toBeGreaterThan(0);
    expect(median).toBeGreaterThan(30);
    expect(median).toBeLessThan(40);
    expect(mean).toBeGreaterThan(median); // right-skewed, as log-normal is
    // log of a log-normal is normal: its standard deviation is sigma (0.7).
    const logs = amounts.map(Math.log);
    const m = logs.reduce((a, b) => a + b, 0) / logs.length;
    const sd = Math.sqrt(logs.reduce((a, b) => a + (b - m) ** 2, 0) / logs.length);
    expect(Math.abs(sd - 0.7)).toBeLessThan(0.05);
  });

  test("sim - activity names, tags and pages follow the API rules", () => {
    const events = generateActivity(createActivityState({ seed: 8 }), t0, 20_000);
    for (const e of events) expectValidEvent(e);
    expect(new Set(events.map((e) => e.tags.segment))).toEqual(new Set(activitySegments));
    const pages = countBy(events.filter((e) => e.name === "shop.view"), (e) => e.tags.page);
    expect(pages["/"]).toBeGreaterThan(0);
    // Zipf: the first product is the most viewed.
    expect(pages["/product/1"]).toBeGreaterThan(pages["/product/2"]);
    expect(pages["/product/2"]).toBeGreaterThan(pages["/product/20"]);
    expect(events.filter((e) => e.name === "shop.purchase").every((e) => e.tags.page.startsWith("/product/"))).toBe(true);
  });

  test("sim - activity tags each event with page, segment and user; a user keeps its pool segment", () => {
    const pool = createUserPool();
    const segmentOf = new Map(pool.users.map((u) => [u.id, u.segment]));
    const events = generateActivity(createActivityState({ seed: 9 }), t0, 50_000);
    for (const e of events) {
      expect(Object.keys(e.tags).sort()).toEqual(["page", "segment", "user"]);
      expect(e.tags.segment).toBe(segmentOf.get(e.tags.user)!);
    }
    expect(new Set(events.map((e) => e.tags.user)).size).toBe(userPoolDefaults.users); // everyone shows up
    // The pool is the pool's seed's alone: the simulators' seed changes the events, not who the users are.
    expect(createActivityState({ seed: 1 }).pool).toEqual(createActivityState({ seed: 2 }).pool);
    expect(pool.users.length).toBe(500);
    expect(new Set(pool.users.map((u) => u.segment))).toEqual(new Set(activitySegments));
  });

  test("sim - at the demo's 200 events/s, over a 5-minute window the heavy users pass 100 shop events and no ordinary user does", () => {
    let clock = t0; // a whole 5-minute window, as the demo's high_activity_users view counts
    const perUser = new Map<string, number>();
    const sims = startSimulators({
      ratePerSec: 200, seed: 1, manual: true, now: () => clock,
      emit: (b) => { for (const e of b) if (e.name.startsWith("shop.")) perUser.set(e.tags.user, (perUser.get(e.tags.user) ?? 0) + 1); },
    });
    while (clock < t0 + 300_000 - 100) {
      clock += 100;
      sims.tick();
    }
    sims.stop();
    const { heavy } = createUserPool();
    expect(heavy.length).toBe(3);
    const ordinary = [...perUser].filter(([u]) => !heavy.includes(u)).map(([, n]) => n);
    const heavyCounts = heavy.map((u) => perUser.get(u) ?? 0);
    console.log(`sim: 5 min at 200 events/s: heavy users ${heavyCounts.join(", ")} shop events, ordinary at most ${Math.max(...ordinary)}`);
    for (const n of heavyCounts) expect(n).toBeGreaterThan(500);
    expect(Math.max(...ordinary)).toBeLessThan(100);
  });

  test("sim - activity series stay bounded: at most users × (5 + 3 × interests) shop series", () => {
    const bound = userPoolDefaults.users * (5 + 3 * activityDefaults.interests);
    expect(bound).toBe(5_500);
    const s = createActivityState({ seed: 10 });
    const keys = new Set<string>();
    // Two hours of the demo's shop traffic (100 events/s).
    for (let i = 0; i < 72; i++) for (const e of generateActivity(s, t0, 10_000)) keys.add(`${e.name}|${e.tags.page}|${e.tags.user}`);
    console.log(`sim: ${keys.size} shop series after 720,000 events (bound ${bound})`);
    expect(keys.size).toBeLessThanOrEqual(bound);
    expect(keys.size).toBeGreaterThan(0.9 * bound); // the bound is what the demo reaches, not a loose ceiling
    expect(s.tagCache.size).toBeLessThanOrEqual(userPoolDefaults.users * (4 + activityDefaults.interests)); // a tag object per page and user
  });

  test("sim - runner holds the rate over a simulated clock", () => {
    let clock = t0;
    const batches: SimEvent[][] = [];
    const sims = startSimulators({ ratePerSec: 1234, seed: 1, manual: true, now: () => clock, emit: (b) => void batches.push(b) });
    const rng = createPrng(99);
    // 60 s of uneven ticks (50–150 ms apart), as a busy event loop delivers them.
    while (clock < t0 + 60_000) {
      clock += 50 + rng.int(101);
      sims.tick();
    }
    const total = batches.reduce((n, b) => n + b.length, 0);
    const expected = (1234 * (clock - t0)) / 1000;
    expect(Math.abs(total - expected)).toBeLessThanOrEqual(2);
    expect(sims.stats()).toEqual({ sent: total, refused: 0 });
    const iot = batches.flat().filter((e) => e.name.startsWith("sensor.")).length;
    expect(Math.abs(iot - total / 2)).toBeLessThanOrEqual(2);
    // Every event carries the tick's time.
    for (const b of batches) expect(new Set(b.map((e) => e.ts)).size).toBe(1);
    sims.stop();
  });

  test("sim - backfill: history at the same rate, one batch per simulated second, oldest first, then ticks go on without a gap", () => {
    let clock = t0;
    const batches: Array<{ ts: number; n: number }> = [];
    const sims = startSimulators({
      ratePerSec: 200, seed: 1, manual: true, now: () => clock, backfillMs: 60_000,
      emit: (b) => void batches.push({ ts: b[0].ts, n: b.length }),
    });
    // 59 batches at t0 − 59 s … t0 − 1 s, 200 events each; the last second is the first tick's.
    expect(batches.map((b) => b.ts)).toEqual(Array.from({ length: 59 }, (_, i) => t0 - 60_000 + (i + 1) * 1000));
    expect(batches.every((b) => b.n === 200)).toBe(true);
    clock += 100;
    sims.tick();
    expect(batches.at(-1)).toEqual({ ts: t0 + 100, n: 220 }); // 1.1 s since the last batch at 200 events/s
    expect(sims.stats()).toEqual({ sent: 59 * 200 + 220, refused: 0 });
    sims.stop();
    expect(() => startSimulators({ ratePerSec: 1, manual: true, backfillMs: -1, emit: () => {} })).toThrow("backfillMs in [0,");
  });

  test("sim - runner holds low rates with fractional carry-over", () => {
    let clock = t0;
    let total = 0;
    const sims = startSimulators({ ratePerSec: 3, manual: true, now: () => clock, emit: (b) => void (total += b.length) });
    for (let i = 0; i < 100; i++) {
      clock += 100;
      sims.tick();
    }
    expect(total).toBe(30);
  });

  test("sim - runner counts refused batches and does not retry them", () => {
    let clock = t0;
    let calls = 0;
    const accepted: number[] = [];
    const sims = startSimulators({
      ratePerSec: 1000, manual: true, now: () => clock,
      emit: (b) => {
        calls++;
        if (calls % 3 === 0) return false; // every third batch refused
        accepted.push(b.length);
        return true;
      },
    });
    for (let i = 0; i < 30; i++) {
      clock += 100;
      sims.tick();
    }
    const { sent, refused } = sims.stats();
    expect(calls).toBe(30);
    expect(sent).toBe(accepted.reduce((a, b) => a + b, 0));
    expect(refused).toBe(1000); // ten refused batches of 100
    expect(sent + refused).toBe(3000); // a refused batch is not re-sent later
  });

  test("sim - runner bounds one tick after a stalled clock", () => {
    let clock = t0;
    let largest = 0;
    const sims = startSimulators({ ratePerSec: 100_000, manual: true, now: () => clock, emit: (b) => void (largest = Math.max(largest, b.length)) });
    clock += 3600_000; // an hour asleep
    expect(sims.tick()).toBeLessThanOrEqual(simLimits.eventsPerTickMax);
    clock += 100;
    expect(sims.tick()).toBe(10_000); // back to the plain rate, no catch-up
    expect(largest).toBeLessThanOrEqual(simLimits.eventsPerTickMax);
  });

  test("sim - runner is deterministic for a seed and silent after stop", () => {
    const run = (seed: number) => {
      let clock = t0;
      const out: SimEvent[] = [];
      const sims = startSimulators({ ratePerSec: 500, devices: 3, seed, manual: true, now: () => clock, emit: (b) => void out.push(...b) });
      for (let i = 0; i < 50; i++) {
        clock += 100;
        sims.tick();
      }
      sims.stop();
      clock += 1000;
      expect(sims.tick()).toBe(0);
      return out;
    };
    expect(run(4)).toEqual(run(4));
    expect(run(4)).not.toEqual(run(5));
  });

  test("sim - runner rejects out-of-range options", () => {
    const emit = () => true;
    expect(() => startSimulators({ ratePerSec: -1, emit, manual: true })).toThrow();
    expect(() => startSimulators({ ratePerSec: Number.NaN, emit, manual: true })).toThrow();
    expect(() => startSimulators({ ratePerSec: simLimits.ratePerSecMax + 1, emit, manual: true })).toThrow();
    expect(() => startSimulators({ ratePerSec: 10, tickMs: 1, emit, manual: true })).toThrow();
    expect(() => startSimulators({ ratePerSec: 10, devices: 0, emit, manual: true })).toThrow();
  });

  test("sim - runner drives itself on a timer until stopped", async () => {
    let batches = 0;
    const sims = startSimulators({ ratePerSec: 1000, tickMs: 10, emit: () => void batches++ });
    // Wait on a condition with a deadline rather than a fixed sleep.
    const deadline = Date.now() + 2000;
    while (batches < 3 && Date.now() < deadline) await Bun.sleep(5);
    sims.stop();
    expect(batches).toBeGreaterThanOrEqual(3);
    const after = batches;
    await Bun.sleep(30);
    expect(batches).toBe(after);
  });
});

function expectValidEvent(e: SimEvent): void {
  expect(e.name).toMatch(nameRe);
  expect(e.name.length).toBeLessThanOrEqual(128);
  expect(Number.isFinite(e.value)).toBe(true);
  expect(Number.isInteger(e.ts)).toBe(true);
  const keys = Object.keys(e.tags);
  expect(keys.length).toBeLessThanOrEqual(16);
  for (const k of keys) {
    expect(k).toMatch(tagKeyRe);
    expect(k.length).toBeLessThanOrEqual(64);
    expect(typeof e.tags[k]).toBe("string");
    expect(e.tags[k].length).toBeLessThanOrEqual(256);
  }
  expect(Object.keys(e).sort()).toEqual(["name", "tags", "ts", "value"]);
}
