/**
 * Issue 15's benchmark: what alert rules cost a partition's whole pipeline
 * (PartitionPipeline: window → anomaly → trend → rules), with 0, 100 and
 * 1,000 rule instances (one instance = one rule × one series its selector
 * picks). bench/rules.ts measures RuleSet.evaluate() alone; this one runs
 * the work a partition worker does per batch, so the ratio says what the
 * rules take from its events/s.
 *
 * The stream, the same for every configuration: `series` series
 * (bench.v{host, grp, zone}) each sending `rate` events a second for
 * `seconds` of event time, in event-time order, cut into 2,500-event
 * batches (a 5,000-event body over 2 partitions), each received 100 ms
 * after its newest event (a real-time producer: the tick clock, and so the
 * rules' sweep of silences once a second, follows event time); windows
 * `10s,60s/10s` with the 1m and 1h rollups, 2 s lateness. Values sit near
 * 100 (±10) and for 3 minutes in every 10, staggered by series, near 140,
 * so instances go pending, fire and resolve. Per batch, as the worker:
 * handleBatch, take the rows, encode them (MessagePack); and a checkpoint
 * (snapshot + MessagePack) once a second of the pipeline's own busy time,
 * as a saturated worker takes one a second (so a slower configuration
 * also pays for more of them, as it would).
 *
 * Configurations (grp picks 100 series whatever `series`; zone halves one):
 *
 *   0 instances      no rules: the baseline
 *   100 instances    avg(bench.v{grp="0",zone="a"}) > 130 for 30s, keep_firing_for 20s (50)
 *                    avg(bench.v{grp="3",zone="a"}) over 5m > 120 for 1m: folds 30 windows of 10 s (50)
 *   1,000 instances  10 rules of 100 series each: 3 direct avg > 130 as above, 3 avg over 5m as above,
 *                    p95 over 60s > 145 (the 60s/10s windows), max > 148 (flaps), anomaly(...) >= warning,
 *                    trend(...) == rising for 20s; every rule with advice
 *
 * Throughput: the three configurations run in one process, each with its
 * own pipeline, fed the same batch in turn (the order rotating batch by
 * batch), each turn timed (wall and the process's CPU): so the machine's
 * drift, which on this shared 2-core host moves whole runs by 2×, falls on
 * all three alike. A warm-up round first (the JIT), a full GC between
 * rounds; the ratio to the baseline is taken round by round, its median
 * printed. Memory: each configuration alone in a fresh process
 * (`--alone <config>`), twice, in the order 0 100 1000 1000 100 0: its
 * peak RSS (VmHWM) and its RSS after a full GC at the end.
 *
 * Prints figures; asserts nothing on time.
 *
 * @example bun bench/rules-pipeline.ts
 *          RULES_PIPELINE_ROUNDS=5 RULES_PIPELINE_SERIES=10000 RULES_PIPELINE_SECONDS=600 bun bench/rules-pipeline.ts
 */
import { strict as assert } from "node:assert";
import { Encoder } from "@msgpack/msgpack";
import { type PartitionOutput, PartitionPipeline, rollupsFor } from "../src/actors/partition-pipeline.ts";
import { parseRule, type Rule } from "../src/actors/rules/rule.ts";
import { parseWindowSpecs } from "../src/actors/window-spec.ts";
import type { EventBatch } from "../src/runtime/codec.ts";
import { createPrng } from "../src/sim/prng.ts";
import { aloneTwice, interleavedRound, reportRows, roundLine, runAlone, type Feeding, type Turns } from "./fixtures/interleave.ts";

const shape = {
  series: Number(process.env.RULES_PIPELINE_SERIES ?? 1_000),
  rate: Number(process.env.RULES_PIPELINE_RATE ?? 1), // events a second per series
  seconds: Number(process.env.RULES_PIPELINE_SECONDS ?? 3_600), // of event time
};
const events = shape.series * shape.rate * shape.seconds;
const roundsDefault = 4;
const roundsMax = 20;
const eventsMax = 20_000_000; // one configuration's stream at most (a round feeds it three times)
const batchEvents = 2_500;
const warmupEvents = 300_000;
const checkpointEveryMs = 1_000; // of the pipeline's own busy time: the worker's interval when saturated
const instancesSampleBatches = 40;
const recvDelayMs = 100; // a batch is received this long after its newest event
const latenessMs = 2_000;
const seriesPerGroup = 100;
const t0 = Date.UTC(2025, 10, 22, 8, 0, 0);
const noiseSize = 8192; // a power of two: indexed by a hash's top 13 bits

const specs = parseWindowSpecs("10s,60s/10s");
const rollups = rollupsFor(specs);
const advice = "{{series}} at {{value}} (over {{threshold}})";

const sel = (g: string, zone: string) => `bench.v{grp="${g}"${zone === "" ? "" : `,zone="${zone}"`}}`;
const direct = (g: string, zone = "") => ({ name: `hot-${g}${zone}`, expr: `avg(${sel(g, zone)}) > 130`, for: "30s", keep_firing_for: "20s", advice });
const rolling = (g: string, zone = "") => ({ name: `slow-${g}${zone}`, expr: `avg(${sel(g, zone)}) over 5m > 120`, for: "1m", advice });
/** The rules of each configuration, named by its instances. */
const configs: Record<string, Array<Record<string, unknown>>> = {
  "0": [],
  "100": [direct("0", "a"), rolling("3", "a")],
  "1000": [
    direct("0"), direct("1"), direct("2"), rolling("3"), rolling("4"), rolling("5"),
    { name: "tail-6", expr: `p95(${sel("6", "")}) over 60s > 145`, for: "20s", advice },
    { name: "peak-7", expr: `max(${sel("7", "")}) > 148`, advice },
    { name: "anomaly-8", expr: `anomaly(${sel("8", "")}) >= warning`, advice },
    { name: "rising-9", expr: `trend(${sel("9", "")}) == rising`, for: "20s", advice },
  ],
};
const order = ["0", "100", "1000"];

/** The series' tags: grp picks `seriesPerGroup` series, zone halves each group. */
function tagsOf(s: number): Record<string, string> {
  const groups = shape.series / seriesPerGroup;
  return { host: `h${String(s).padStart(5, "0")}`, grp: String(s % groups), zone: Math.floor(s / groups) % 2 === 0 ? "a" : "b" };
}

/**
 * The stream's first `count` events as batches, made into the same buffers
 * (their making is outside the timed turns). Event i is series i % series
 * at slot ⌊i / series⌋, its time spread over the slot by series, so times
 * never go back.
 */
function* batches(count: number, noise: Float64Array): Generator<EventBatch> {
  const b = { n: 0, sid: new Uint32Array(batchEvents), ts: new Float64Array(batchEvents), value: new Float64Array(batchEvents), recvMs: 0 };
  const { series, rate } = shape;
  const slotMs = 1000 / rate;
  for (let i = 0; i < count; ) {
    const n = Math.min(batchEvents, count - i);
    for (let j = 0; j < n; j++, i++) {
      const s = i % series;
      const ts = t0 + Math.floor(Math.floor(i / series) * slotMs + (s * slotMs) / series);
      const hot = (Math.floor((ts - t0) / 10_000) + s * 7) % 60 < 18;
      b.sid[j] = s;
      b.ts[j] = ts;
      b.value[j] = (hot ? 140 : 100) + noise[Math.imul(i, 0x9e3779b1) >>> 19];
    }
    b.n = n;
    b.recvMs = b.ts[n - 1] + recvDelayMs;
    yield b;
  }
}

function noiseTable(): Float64Array {
  const rng = createPrng(15);
  return Float64Array.from({ length: noiseSize }, () => (rng.next() - 0.5) * 20);
}

/** One configuration's pipeline and what a worker does around it; counts what came out. */
class Feeder implements Feeding<EventBatch> {
  readonly p: PartitionPipeline;
  private readonly enc = new Encoder();
  /** This pipeline's busy time so far (its turns), and when its next checkpoint is due on it. */
  busyMs = 0;
  private checkpointAtMs = checkpointEveryMs;
  private lastRecvMs = t0;
  windows = 0;
  instancesMax = 0;
  readonly transitions: Record<string, number> = { pending: 0, firing: 0, resolved: 0, inactive: 0 };

  constructor(rules: Rule[]) {
    this.p = new PartitionPipeline({ specs, latenessMs, seriesMax: shape.series, rollups, rules });
    for (let s = 0; s < shape.series; s++) this.p.addSeries(s, "bench.v", tagsOf(s));
  }

  batch(b: EventBatch): void {
    this.p.handleBatch(b);
    this.ship();
    this.lastRecvMs = b.recvMs;
  }

  /** A checkpoint (snapshot + MessagePack) once a second of busy time, as the worker takes one a second. */
  checkpointIfDue(): void {
    if (this.busyMs < this.checkpointAtMs) return;
    this.enc.encode(this.p.snapshot());
    this.checkpointAtMs += checkpointEveryMs;
  }

  /** The instances held now (called between turns, untimed). */
  sample(): void {
    this.instancesMax = Math.max(this.instancesMax, this.p.ruleStats().instances);
  }

  /** The quiet closes after the stream: every window, the 1 h rollup's too. */
  end(): void {
    this.p.tick(this.lastRecvMs + 3_700_000);
    this.ship();
  }

  private ship(): void {
    const out: PartitionOutput = this.p.take(Number.MAX_SAFE_INTEGER);
    this.windows += out.w.length;
    for (const t of out.r) this.transitions[t.state]++;
    this.enc.encode({ k: "out", e: 1, ...out }); // as the worker ships them
  }
}

const rulesOf = (config: string) => configs[config].map((r) => parseRule(r, { windows: { specs, rollups } }));
/** One round: a fresh pipeline per configuration, fed each batch in turn, the order rotating; answers each one's time. */
function round(count: number, noise: Float64Array): Turns<Feeder> {
  const feeders = order.map((c) => new Feeder(rulesOf(c)));
  const between = (k: number) => {
    if (k % instancesSampleBatches === 0) for (const f of feeders) f.sample();
  };
  return interleavedRound(feeders, batches(count, noise), { between });
}

const label = (config: string) => config.padStart(4);

async function main(): Promise<void> {
  assert(Number.isInteger(shape.series / seriesPerGroup) && shape.series >= 10 * seriesPerGroup, `series: a multiple of ${seriesPerGroup}, at least ${10 * seriesPerGroup}`);
  assert(Number.isInteger(shape.rate) && shape.rate >= 1 && events <= eventsMax, `rate a whole number ≥ 1; events a run ${events}, at most ${eventsMax}`);
  const roundCount = Number(process.env.RULES_PIPELINE_ROUNDS ?? roundsDefault);
  assert(Number.isInteger(roundCount) && roundCount >= 1 && roundCount <= roundsMax, `rounds: 1 to ${roundsMax}`);
  console.log(
    `rules in the pipeline: ${shape.series} series × ${shape.rate} event/s × ${shape.seconds} s = ${events.toLocaleString("en")} events a run, ` +
      `${batchEvents}-event batches, windows 10s,60s/10s (+ 1m, 1h); ${roundCount} interleaved rounds after a warm-up, then each configuration alone twice`,
  );
  const noise = noiseTable();
  round(Math.min(warmupEvents, events), noise);
  const rounds: Turns<Feeder>[] = [];
  for (let r = 0; r < roundCount; r++) {
    Bun.gc(true);
    rounds.push(round(events, noise));
    console.log(roundLine(r + 1, order, rounds[r], events, label));
  }
  const alone = await aloneTwice(import.meta.path, order, events, label);
  reportRows(
    { config: "configuration", baseline: "0 rules", extra: ["instances", "transitions a run (pending, firing, resolved, inactive)"] }, order, rounds, alone, events,
    (c) => `${Number(c).toLocaleString("en")} instances`,
    (f) => [String(f.instancesMax), `${f.transitions.pending}, ${f.transitions.firing}, ${f.transitions.resolved}, ${f.transitions.inactive}`],
  );
}

if (import.meta.main) {
  const at = process.argv.indexOf("--alone");
  if (at >= 0) {
    const config = process.argv[at + 1];
    assert(configs[config] !== undefined, `unknown configuration ${config}`);
    const noise = noiseTable();
    console.log(JSON.stringify(runAlone(config, () => new Feeder(rulesOf(config)), batches(Math.min(warmupEvents, events), noise), batches(events, noise))));
  }
  else await main();
}
