/**
 * Anomaly knobs per series (the config file's `anomalies:`): validation
 * with the path of a bad key, the first-match lookup, the pipeline giving
 * series under different knobs different verdicts on the same values (each
 * z checked against a naive recount of the detector's method), checkpoints
 * that restore whatever the knobs, and a real weir answering for them.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decode, encode } from "@msgpack/msgpack";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AssertionError } from "node:assert";
import { anomalyDefaults, type AnomalyKnobs, createAnomalyLogic } from "../src/actors/anomaly.ts";
import { AnomalyKnobTable, parseAnomalyKnobs } from "../src/actors/anomaly-knobs.ts";
import { defaultRollups, type PartitionOutput, PartitionPipeline, type PipelineSnapshot } from "../src/actors/partition-pipeline.ts";
import { anomalyRow } from "../src/actors/result-rows.ts";
import { parseWindowSpecs } from "../src/actors/window-spec.ts";
import { ConfigError, loadConfig } from "../src/config.ts";
import { limits } from "../src/runtime/limits.ts";
import { mulberry32 } from "./helpers/prng.ts";
import { waitFor } from "./helpers/wait.ts";
import { postEvents, startTestWeir, type TestWeir } from "./helpers/weir.ts";

const dir = mkdtempSync(join(tmpdir(), "weir-knobs-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

/** The config a file with this content gives (a name ending .yaml or .json picks the reader). */
function configOf(content: string, ext: "yaml" | "json"): ReturnType<typeof loadConfig> {
  const file = join(dir, `weir-${files++}.${ext}`);
  writeFileSync(file, content);
  return loadConfig({ WEIR_CONFIG: file });
}

/** The ConfigError message of a JSON config holding `anomalies`. */
function refusal(anomalies: unknown): string {
  try {
    configOf(JSON.stringify({ anomalies }), "json");
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error(`accepted: ${JSON.stringify(anomalies)}`);
}

const d = anomalyDefaults;
const defaults: AnomalyKnobs = {
  warningZ: d.warningZ, criticalZ: d.criticalZ, cooldownMs: d.cooldownMs, window: d.window,
  sustainedZ: d.sustainedZ, novelty: d.novelty, season: d.season, cooldownValues: d.cooldownValues, cooldownGrowth: d.cooldownGrowth,
};

describe("anomaly knobs - config", () => {
  test("anomaly knobs - a YAML list is read in order, each omitted knob the default", () => {
    const cfg = configOf([
      "anomalies:",
      '  - match: cpu.*',
      "    warning: 3.5",
      "    critical: 6",
      "    cooldown: 5m",
      "    baseline: 300",
      '  - match: payments.*{region="eu", tier=~"gold*"}',
      "    warning: 4",
      "  - match: '*'",
      "    cooldown: 0",
      "  - match: nab.*",
      "    sustained: 4",
      "    novelty: 0",
      "    season: 24",
      "    cooldown_values: 10",
      "    cooldown_growth: 0",
      "",
    ].join("\n"), "yaml");
    expect(cfg.anomalies).toEqual([
      { match: "cpu.*", knobs: { ...defaults, warningZ: 3.5, criticalZ: 6, cooldownMs: 300_000, window: 300 } },
      { match: 'payments.*{region="eu", tier=~"gold*"}', knobs: { ...defaults, warningZ: 4 } },
      { match: "*", knobs: { ...defaults, cooldownMs: 0 } },
      { match: "nab.*", knobs: { ...defaults, sustainedZ: 4, novelty: 0, season: 24, cooldownValues: 10, cooldownGrowth: 0 } },
    ]);
  });

  test("anomaly knobs - none configured is an empty list; JSON works alike; an entry of match alone keeps every default", () => {
    expect(loadConfig({}).anomalies).toEqual([]);
    expect(configOf(JSON.stringify({ partitions: 2 }), "json").anomalies).toEqual([]);
    expect(configOf("anomalies:\n", "yaml").anomalies).toEqual([]);
    expect(configOf(JSON.stringify({ anomalies: [{ match: "cpu.idle" }] }), "json").anomalies).toEqual([{ match: "cpu.idle", knobs: defaults }]);
  });

  test("anomaly knobs - the bounds themselves are accepted", () => {
    const edge = [
      { match: "a", warning: limits.anomalyZMin, critical: limits.anomalyZMax, cooldown: "7d", baseline: limits.anomalyBaselineValuesMin },
      { match: "b", baseline: limits.anomalyBaselineValuesMax, novelty: 1, season: limits.anomalySeasonValuesMax, cooldown_values: limits.anomalyCooldownValuesMax, sustained: limits.anomalyZMax, cooldown_growth: limits.anomalyCooldownGrowthMax },
      { match: "c", novelty: 0, season: 0, cooldown_values: 0, sustained: limits.anomalyZMin, cooldown_growth: 0 },
      { match: longestMatch() },
    ];
    expect(configOf(JSON.stringify({ anomalies: edge }), "json").anomalies.map((r) => r.knobs)).toEqual([
      { ...defaults, warningZ: 1, criticalZ: 100, cooldownMs: 7 * 86_400_000, window: 10 },
      { ...defaults, window: 100_000, novelty: 1, season: 300, cooldownValues: 100_000, sustainedZ: 100, cooldownGrowth: 10 },
      { ...defaults, novelty: 0, season: 0, cooldownValues: 0, sustainedZ: 1, cooldownGrowth: 0 },
      defaults,
    ]);
    const many = Array.from({ length: limits.anomalyKnobsMax }, (_, i) => ({ match: `m${i}` }));
    expect(configOf(JSON.stringify({ anomalies: many }), "json").anomalies.length).toBe(limits.anomalyKnobsMax);
  });

  /** A valid selector of exactly limits.anomalyMatchCharsMax characters: four tag matchers filled up. */
  function longestMatch(): string {
    const of = (n: number, extra: number) => `cpu.*{${[0, 1, 2, 3].map((i) => `k${i}=~"${"v".repeat(n + (i === 0 ? extra : 0))}*"`).join(",")}}`;
    const fixed = of(0, 0).length;
    const text = of(Math.floor((limits.anomalyMatchCharsMax - fixed) / 4), (limits.anomalyMatchCharsMax - fixed) % 4);
    expect(text.length).toBe(limits.anomalyMatchCharsMax);
    return text;
  }

  const ok = { match: "cpu.*" };
  const bad: Array<[string, unknown, string]> = [
    ["not a list", { match: "cpu.*" }, "config anomalies: must be a list of {match, warning, critical, cooldown, baseline, sustained, novelty, season, cooldown_values, cooldown_growth}"],
    ["an entry not a mapping", [ok, "cpu.*"], "config anomalies[1]: must be a mapping {match, warning, critical, cooldown, baseline, sustained, novelty, season, cooldown_values, cooldown_growth}"],
    ["no match", [ok, { warning: 4 }], "config anomalies[1].match: required"],
    ["match not a string", [{ match: 7 }], "config anomalies[0].match: must be a string"],
    ["an unknown field", [ok, { match: "a", warn: 4 }], "config anomalies[1].warn: unknown field"],
    ["warning not a number", [ok, { match: "a", warning: "4" }], "config anomalies[1].warning: must be a number"],
    ["warning below the least", [ok, { match: "a", warning: 0.5 }], "config anomalies[1].warning: must be ≥ 1"],
    ["warning negative", [{ match: "a", warning: -3 }], "config anomalies[0].warning: must be ≥ 1"],
    ["critical past the most", [{ match: "a", critical: 101 }], "config anomalies[0].critical: must be ≤ 100"],
    ["warning not below the default critical", [ok, { match: "a", warning: 7 }], "config anomalies[1].warning: 7 must be below critical (6.5, the default)"],
    ["warning equal to critical", [{ match: "a", warning: 4, critical: 4 }], "config anomalies[0].warning: 4 must be below critical (4)"],
    ["critical not above the default warning", [{ match: "a", critical: 2 }], "config anomalies[0].critical: 2 must be above warning (5, the default)"],
    ["cooldown without a unit", [{ match: "a", cooldown: "300" }], "config anomalies[0].cooldown: must be a duration like 30s or 5m"],
    ["cooldown a number", [{ match: "a", cooldown: 300 }], "config anomalies[0].cooldown: must be a duration like 30s or 5m"],
    ["cooldown past the most", [{ match: "a", cooldown: "8d" }], "config anomalies[0].cooldown: must be at most 7d"],
    ["baseline not whole", [{ match: "a", baseline: 250.5 }], "config anomalies[0].baseline: must be a whole number"],
    ["baseline below the least", [{ match: "a", baseline: 9 }], "config anomalies[0].baseline: must be ≥ 10"],
    ["novelty past 1", [{ match: "a", novelty: 1.5 }], "config anomalies[0].novelty: must be ≤ 1"],
    ["season not whole", [{ match: "a", season: 288.5 }], "config anomalies[0].season: must be a whole number"],
    ["season within its slack", [{ match: "a", season: 20 }], "config anomalies[0].season: must be 0 (none) or above 20"],
    ["season past the most", [{ match: "a", season: 301 }], "config anomalies[0].season: must be ≤ 300"],
    ["cooldown_values negative", [{ match: "a", cooldown_values: -1 }], "config anomalies[0].cooldown_values: must be ≥ 0"],
    ["cooldown_growth negative", [{ match: "a", cooldown_growth: -0.5 }], "config anomalies[0].cooldown_growth: must be ≥ 0"],
    ["cooldown_growth past the most", [{ match: "a", cooldown_growth: 11 }], "config anomalies[0].cooldown_growth: must be ≤ 10"],
    ["cooldown_growth not a number", [{ match: "a", cooldown_growth: "1" }], "config anomalies[0].cooldown_growth: must be a number"],
    ["sustained below the least", [{ match: "a", sustained: 0.5 }], "config anomalies[0].sustained: must be ≥ 1"],
    ["baseline past the most", [{ match: "a", baseline: 100_001 }], "config anomalies[0].baseline: must be ≤ 100000"],
    ["match too long", [{ match: "c".repeat(limits.anomalyMatchCharsMax + 1) }], `config anomalies[0].match: at most ${limits.anomalyMatchCharsMax} characters`],
    ["match empty", [ok, { match: "" }], "config anomalies[1].match: at column 1: expected a metric name or glob, found the end"],
    ["match a name with ?", [{ match: "cpu.?" }], 'config anomalies[0].match: at column 5: "?" is not a wildcard in a metric name (use *)'],
    ["match starting with a digit", [{ match: "9cpu" }], 'config anomalies[0].match: at column 1: metric name "9cpu" must start with a letter, "_" or "*"'],
    ["match with an open brace", [{ match: 'cpu{region="eu"' }], 'config anomalies[0].match: at column 16: expected "," or "}" after a tag matcher, found the end'],
    ["match with == for a matcher", [{ match: 'cpu{region=="eu"}' }], 'config anomalies[0].match: at column 11: "==" is not a matcher: use =, !=, =~ or !~'],
    ["match with an unterminated value", [{ match: 'cpu{region="eu}' }], "config anomalies[0].match: at column 12: unterminated string"],
    ["match with words after the selector", [{ match: "cpu.* over 5m" }], 'config anomalies[0].match: at column 7: expected the end after the selector, found "over"'],
    ["match with a parenthesis", [{ match: "cpu) >= critical" }], 'config anomalies[0].match: "cpu) >= critical" is not a selector (a name glob, then optionally {k="v", k=~"glob"})'],
  ];
  for (const [what, anomalies, message] of bad) {
    test(`anomaly knobs - refuses ${what}, naming the path`, () => {
      expect(refusal(anomalies)).toBe(message);
    });
  }

  test("anomaly knobs - more entries than the bound are refused", () => {
    const many = Array.from({ length: limits.anomalyKnobsMax + 1 }, (_, i) => ({ match: `m${i}` }));
    expect(refusal(many)).toBe(`config anomalies: at most ${limits.anomalyKnobsMax} entries`);
  });

  test("anomaly knobs - a bad entry in YAML is named the same way", () => {
    expect(() => configOf("anomalies:\n  - match: cpu.*\n  - match: disk.*\n    critical: 2\n", "yaml")).toThrow(
      "config anomalies[1].critical: 2 must be above warning (5, the default)",
    );
  });
});

describe("anomaly knobs - lookup", () => {
  const table = new AnomalyKnobTable(parseAnomalyKnobs([
    { match: 'payments.*{region="eu", tier!~"test*"}', warning: 4 },
    { match: "payments.*", critical: 7 },
    { match: "cpu.load", cooldown: "10s" },
  ]));

  test("anomaly knobs - the first entry picking the series wins; tag matchers as in rules; none picks: null", () => {
    expect(table.knobsOf("payments.latency", { region: "eu" })).toEqual({ ...defaults, warningZ: 4 });
    expect(table.knobsOf("payments.latency", { region: "eu", tier: "test-1" })).toEqual({ ...defaults, criticalZ: 7 });
    expect(table.knobsOf("payments.latency", { region: "us" })).toEqual({ ...defaults, criticalZ: 7 });
    expect(table.knobsOf("payments", {})).toBeNull(); // "payments.*" needs the dot
    expect(table.knobsOf("cpu.load", { host: "a" })).toEqual({ ...defaults, cooldownMs: 10_000 });
    expect(table.knobsOf("cpu.loadavg", {})).toBeNull(); // an exact name is exact
    expect(new AnomalyKnobTable([]).knobsOf("cpu.load", {})).toBeNull();
  });
});

describe("anomaly knobs - the anomaly logic", () => {
  test("anomaly knobs - knobs that make no sense are a programmer error", () => {
    const logic = createAnomalyLogic({ seriesMax: 4 });
    expect(() => logic.setSeriesKnobs(0, { warningZ: 7 })).toThrow(AssertionError); // above the default critical
    expect(() => logic.setSeriesKnobs(0, { novelty: 2 })).toThrow(AssertionError);
    expect(() => logic.setSeriesKnobs(0, { season: 2_000 })).toThrow(AssertionError); // past limits.anomalySeasonValuesMax
    expect(() => logic.setSeriesKnobs(0, { window: 1 })).toThrow(AssertionError);
    expect(() => logic.setSeriesKnobs(0, { cooldownMs: -1 })).toThrow(AssertionError);
    expect(() => logic.setSeriesKnobs(4, { warningZ: 4 })).toThrow(AssertionError); // past seriesMax
  });

  test("anomaly knobs - openAnomaly reads the series' own cooldown", () => {
    const logic = createAnomalyLogic({ seriesMax: 2 });
    logic.setSeriesKnobs(1, { cooldownMs: 5_000 });
    const st = logic.init();
    const base = 1_700_000_000_000;
    // Both series count about 100 events a window for 140 windows (past the warm-up), then 1,000 in one, then 100 again 10 s later.
    for (let w = 0; w < 142; w++) {
      for (const sid of [0, 1]) logic.handleWindowCount(st, sid, base + w * 10_000, w === 140 ? 1000 : 100 + (w % 3), () => {});
    }
    expect(logic.openAnomaly(st, 0)?.severity).toBe("critical"); // 10 s after it: within the default minute
    expect(logic.openAnomaly(st, 1)).toBeNull(); // past its 5 s
  });
});

// ---------------------------------------------------------------------------
// A naive recount of the detector's z (the method in src/actors/anomaly.ts's
// module comment), written from the description with its own constant:
// Holt's level and slope, an exponentially weighted variance of the one-step
// errors (a plain mean until the gain is reached), Huber-clipped updates
// divided by E[min(Z², clip²)], std widened by 1 + (warningZ² + 1)/(4ν)
// (values are learnt clipped, never held out); then the verdicts of the z
// test and the cooldown. It models the z test alone: the series it checks
// have knobs that switch the others off (zOnly: no novelty gate, no
// season, no sustained test, a cooldown in time only).

/** E[min(Z², c²)] for a standard normal Z, by Simpson's rule (the detector uses erf). */
function clippedSecondMoment(c: number): number {
  const steps = 20_000;
  const hi = 12;
  const h = hi / steps;
  const f = (x: number) => Math.min(x * x, c * c) * Math.exp(-x * x / 2) / Math.sqrt(2 * Math.PI);
  let s = f(0) + f(hi);
  for (let i = 1; i < steps; i++) s += (i % 2 === 1 ? 4 : 2) * f(i * h);
  return (2 * s * h) / 3;
}

interface Recount {
  /** Per value: the prediction and the (widened) spread it was judged by; NaN during the warm-up. */
  pred: number[];
  sd: number[];
  alerts: Array<{ i: number; z: number; severity: "warning" | "critical" }>;
}

/** Errors are clipped during the warm-up once the spread rests on this many (the detector's warmClipFrom). */
const warmClipFrom = 10;

function recount(values: readonly number[], ts: readonly number[], k: AnomalyKnobs): Recount {
  const d = anomalyDefaults;
  const levelGain = 2 / (d.levelWindow + 1);
  const slopeGain = levelGain * levelGain;
  const gain = 2 / (k.window + 1);
  const tail = (k.warningZ * k.warningZ + 1) / 4;
  const consistency = clippedSecondMoment(d.clip);
  const out: Recount = { pred: [], sd: [], alerts: [] };
  let level = 0, slope = 0, variance = 0;
  let last: { ts: number; severity: string } | null = null;
  values.forEach((v, i) => {
    const n = i + 1;
    const spread = Math.max(gain, 1 / (n - 1));
    const pred = level + slope;
    out.pred.push(NaN);
    out.sd.push(NaN);
    if (n === 1) {
      level = v;
      return;
    }
    let e = v - pred;
    if (n <= d.warmup) {
      let e2 = e * e;
      if (n > warmClipFrom + 1) {
        const lim = d.clip * Math.max(Math.sqrt(variance), d.minStd);
        e = Math.max(-lim, Math.min(lim, e));
        e2 = (e * e) / consistency;
      }
      level = pred + Math.max(levelGain, 1 / n) * e;
      slope += slopeGain * e;
      variance += spread * (e2 - variance);
      return;
    }
    const nu = 1 / (n - 1) < gain ? k.window : n - 2;
    const sd = Math.max(Math.sqrt(variance), d.minStd) * (1 + tail / nu);
    out.pred[i] = pred;
    out.sd[i] = sd;
    if (Math.abs(e) >= k.warningZ * sd) {
      const severity = Math.abs(e / sd) >= k.criticalZ ? "critical" : "warning";
      const quiet = last !== null && ts[i] - last.ts < k.cooldownMs && (severity === "warning" || last.severity === "critical");
      if (!quiet) {
        out.alerts.push({ i, z: e / sd, severity });
        last = { ts: ts[i], severity };
      }
    }
    const lim = d.clip * sd;
    e = Math.max(-lim, Math.min(lim, e));
    level = pred + levelGain * e;
    slope += slopeGain * e;
    variance += spread * ((e * e) / consistency - variance);
  });
  return out;
}

// The values every series below gets: 150 seconds of calm noise around 20 (uniform, ±0.5), with two probes
// placed by the defaults' own baseline: 2.7 spreads above its prediction at 130 s, 2.2 at 140 s (30 and 40 s
// past the warm-up of 100). Under the defaults (warning 5) neither alerts; under warning 2 and critical 2.5
// the first is critical, the second a warning.
const t0 = 1_700_000_040_000;
const valuesCount = 150;
const probes: ReadonlyArray<[number, number]> = [[130, 2.7], [140, 2.2]];
const tsOf = (i: number) => t0 + i * 1000;
const allTs = Array.from({ length: valuesCount }, (_, i) => tsOf(i));

function probeValues(): number[] {
  const rnd = mulberry32(20_251_122);
  const values = Array.from({ length: valuesCount }, () => 20 + (rnd() - 0.5));
  for (const [at, spreads] of probes) {
    const r = recount(values, allTs, defaults); // the probe's value changes nothing before it
    values[at] = r.pred[at] + spreads * r.sd[at];
  }
  return values;
}

const values = probeValues();
const strict = { warningZ: 2, criticalZ: 2.5 };
/** Knobs that leave the z test alone (what the recount models). */
const zOnly = { novelty: 0, season: 0, sustainedZ: 100, cooldownValues: 0 };
const zOnlyEntry = { novelty: 0, season: 0, sustained: 100, cooldown_values: 0 };
/** The series of the pipeline tests, by sid, and the knobs each should get. */
const series: Array<{ name: string; tags: Record<string, string>; knobs: AnomalyKnobs }> = [
  { name: "cpu.load", tags: { host: "a" }, knobs: defaults },
  { name: "cpu.load", tags: { host: "b" }, knobs: { ...defaults, ...strict, ...zOnly, cooldownMs: 5_000 } },
  { name: "cpu.load", tags: { host: "c" }, knobs: { ...defaults, ...strict, ...zOnly } },
  { name: "cpu.load", tags: { host: "d" }, knobs: { ...defaults, ...strict, ...zOnly, cooldownMs: 5_000, window: 20 } },
];
const knobRules = parseAnomalyKnobs([
  { match: 'cpu.*{host="b"}', warning: 2, critical: 2.5, cooldown: "5s", ...zOnlyEntry },
  { match: 'cpu.*{host="c"}', warning: 2, critical: 2.5, ...zOnlyEntry },
  { match: 'cpu.*{host="d"}', warning: 2, critical: 2.5, cooldown: "5s", baseline: 20, ...zOnlyEntry },
  { match: 'cpu.*{host!="a"}', warning: 1 }, // picks b, c and d too, but after the entries above: the first match wins
]);

const specs = parseWindowSpecs("10s,60s/10s");

function newPipeline(withKnobs: boolean): PartitionPipeline {
  const p = new PartitionPipeline({ specs, latenessMs: 2000, seriesMax: 8, rollups: defaultRollups, anomalies: withKnobs ? knobRules : undefined });
  series.forEach((s, sid) => p.addSeries(sid, s.name, s.tags));
  return p;
}

/** Values [from, to) of every series, one batch a second (all series' value of that second). */
function feed(p: PartitionPipeline, from: number, to: number, outs: PartitionOutput[]): void {
  for (let i = from; i < to; i++) {
    const n = series.length;
    p.handleBatch({ n, sid: Uint32Array.from(series, (_, sid) => sid), ts: new Float64Array(n).fill(tsOf(i)), value: new Float64Array(n).fill(values[i]), recvMs: tsOf(i) });
    outs.push(p.take(4096));
  }
}

/** The value anomalies of each series: [second, severity, z]. */
function verdicts(outs: PartitionOutput[]): Array<Array<[number, string, number]>> {
  const by: Array<Array<[number, string, number]>> = series.map(() => []);
  for (const o of outs) {
    for (const row of o.a) {
      const a = anomalyRow.decode(row);
      if (a.source === "value") by[a.sid].push([(a.ts - t0) / 1000, a.severity, a.z]);
    }
  }
  return by;
}

const seconds = (v: Array<[number, string, number]>) => v.map(([s, sev]) => [s, sev]);

describe("anomaly knobs - the partition pipeline", () => {
  test("anomaly knobs - series under different knobs give different verdicts on the same values, as the recount says", () => {
    const outs: PartitionOutput[] = [];
    feed(newPipeline(true), 0, valuesCount, outs);
    const got = verdicts(outs);
    // a: the defaults: neither probe reaches warning 5, and the first (2.7σ) alone is no sustained change;
    // but it pulls the level up, and the calm value after it lands 2.55σ below: two surprising values in a
    // row, the most this calm series has had, so its recent surprise jumps far past its history, a
    // sustained-test warning at the second.
    expect(seconds(got[0])).toEqual([[131, "warning"]]);
    // b: warning 2, critical 2.5, cooldown 5 s: the first probe critical, the second (10 s on) a warning of its own.
    expect(seconds(got[1])).toEqual([[130, "critical"], [140, "warning"]]);
    // c: the same thresholds with the default cooldown: the second probe falls within a minute of a critical.
    expect(seconds(got[2])).toEqual([[130, "critical"]]);
    // d: as b, but a baseline of 20 values: the first probe widens its short-memory spread, so the
    // second is |z| < 2 there, nothing.
    expect(seconds(got[3])).toEqual([[130, "critical"]]);
    series.forEach((s, sid) => {
      if (sid === 0) return; // the defaults: more than the z test
      const r = recount(values, allTs, s.knobs);
      expect(got[sid].map(([sec, sev]) => [sec, sev])).toEqual(r.alerts.map((a) => [a.i, a.severity]));
      got[sid].forEach(([, , z], j) => expect(z).toBeCloseTo(r.alerts[j].z, 4));
    });
    // The defaults' z at the probes is as placed; the other knobs' differ from it.
    const dz = recount(values, allTs, defaults);
    expect((values[130] - dz.pred[130]) / dz.sd[130]).toBeCloseTo(2.7, 9);
    expect(got[1][0][2]).toBeGreaterThan(2.7); // a narrower Student-t widening at warning 2
    expect(Math.abs(got[3][0][2] - got[1][0][2])).toBeGreaterThan(0.05); // the 20-value baseline's own spread (here a little narrower)
    const d = recount(values, allTs, series[3].knobs);
    expect((values[140] - d.pred[140]) / d.sd[140]).toBeLessThan(2);
  });

  test("anomaly knobs - without knobs every series has the defaults' verdicts", () => {
    const outs: PartitionOutput[] = [];
    feed(newPipeline(false), 0, valuesCount, outs);
    expect(verdicts(outs).map(seconds)).toEqual([[[131, "warning"]], [[131, "warning"]], [[131, "warning"]], [[131, "warning"]]]);
  });

  test("anomaly knobs - a checkpoint taken without knobs restores under them, and one taken with them continues identically", () => {
    const uninterrupted: PartitionOutput[] = [];
    feed(newPipeline(true), 0, valuesCount, uninterrupted);
    // Before the knobs: the checkpoint's layout is the same, and the knobs apply from the restore on
    // (the loop adds the series, then restores, as here).
    const before: PartitionOutput[] = [];
    const old = newPipeline(false);
    feed(old, 0, 120, before);
    const oldSnap = decode(encode(old.snapshot())) as PipelineSnapshot;
    const after: PartitionOutput[] = [];
    const p = newPipeline(true);
    p.restore(oldSnap);
    feed(p, 120, valuesCount, after);
    expect(verdicts(after).map(seconds)).toEqual([[[131, "warning"]], [[130, "critical"], [140, "warning"]], [[130, "critical"]], [[130, "critical"]]]);
    // With the knobs, through a checkpoint in b's cooldown: the same results as without one.
    const first: PartitionOutput[] = [];
    const a = newPipeline(true);
    feed(a, 0, 135, first);
    const b = newPipeline(true);
    b.restore(decode(encode(a.snapshot())) as PipelineSnapshot);
    const rest: PartitionOutput[] = [];
    feed(b, 135, valuesCount, rest);
    expect(verdicts([...first, ...rest])).toEqual(verdicts(uninterrupted));
  });
});

describe("anomaly knobs - a real weir", () => {
  let w: TestWeir;
  const file = join(dir, "knobs.yaml");
  // One partition: every series' values travel in one batch, so their anomalies arrive together.
  const base = Math.floor(Date.now() / 60_000) * 60_000 - 5 * 60_000;
  const key = (tier: string) => `knob.cpu{tier="${tier}"}`;

  beforeAll(async () => {
    writeFileSync(file, [
      "anomalies:",
      '  - match: knob.*{tier="brief"}',
      "    warning: 2",
      "    critical: 2.5",
      "    cooldown: 5s",
      "    novelty: 0",
      "    season: 0",
      "    sustained: 100",
      "    cooldown_values: 0",
      '  - match: knob.*{tier=~"str*"}',
      "    warning: 2",
      "    critical: 2.5",
      "    novelty: 0",
      "    season: 0",
      "    sustained: 100",
      "    cooldown_values: 0",
      "",
    ].join("\n"));
    w = await startTestWeir({ WEIR_CONFIG: file, WEIR_PARTITIONS: "1" });
  });
  afterAll(async () => {
    await w.stop();
  });

  test("anomaly knobs - a series under a stricter knob alerts more and more severely than the default; the listing reads each one's cooldown", async () => {
    const events = ["loose", "strict", "brief"].flatMap((tier) => values.map((value, i) => ({ name: "knob.cpu", tags: { tier }, ts: base + i * 1000, value })));
    const r = await postEvents(w.url, JSON.stringify(events));
    expect(r.status).toBe(202);
    const anomalies = async (tier: string) => {
      const res = await fetch(`${w.url}/api/v1/anomalies?series=${encodeURIComponent(key(tier))}&since=0`);
      return (await res.json()).anomalies as Array<{ ts: number; severity: string; z: number; source: string; value: number; mean: number; std: number; test: string; expected: [number, number] }>;
    };
    await waitFor(async () => (await anomalies("brief")).length === 2, 10_000, "the brief series' two anomalies");
    const brief = await anomalies("brief");
    const strictOnes = await anomalies("strict");
    // Newest first.
    expect(brief.map((a) => [(a.ts - base) / 1000, a.severity, a.source])).toEqual([[140, "warning", "value"], [130, "critical", "value"]]);
    expect(strictOnes.map((a) => [(a.ts - base) / 1000, a.severity])).toEqual([[130, "critical"]]);
    // The default's sustained test calls the first probe and the value after it a warning (see the pipeline test above); the knobs' z test, critical.
    expect((await anomalies("loose")).map((a) => [(a.ts - base) / 1000, a.severity])).toEqual([[131, "warning"]]);
    const r1 = recount(values, allTs, { ...defaults, ...strict, ...zOnly });
    expect(strictOnes[0].z).toBeCloseTo(r1.alerts[0].z, 4);
    // Its explanation, as the API answers it: the test that fired and the range (mean ± warning · std) the value left.
    const [lo, hi] = strictOnes[0].expected;
    expect(strictOnes[0].test).toBe("spike");
    expect(lo).toBeCloseTo(strictOnes[0].mean - 2 * strictOnes[0].std, 9);
    expect(hi).toBeCloseTo(strictOnes[0].mean + 2 * strictOnes[0].std, 9);
    expect(strictOnes[0].value).toBeGreaterThan(hi);
    expect((await anomalies("loose"))[0].test).toBe("shift");

    // Newest value 149 s in: loose's warning (131 s) and strict's critical (130 s) are within the default minute, brief's warning (140 s) past its 5 s.
    const res = await fetch(`${w.url}/api/v1/series?match=knob.*`);
    const listed = (await res.json()).series as Array<{ key: string; anomaly: { ts: number; severity: string } | null }>;
    const open = Object.fromEntries(listed.map((s) => [s.key, s.anomaly === null ? null : [(s.anomaly.ts - base) / 1000, s.anomaly.severity]]));
    expect(open).toEqual({ [key("loose")]: [131, "warning"], [key("strict")]: [130, "critical"], [key("brief")]: null });
  });
});
