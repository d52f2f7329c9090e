/**
 * Issue 16's benchmark: what continuous views cost a partition's whole
 * pipeline (PartitionPipeline: window → anomaly → trend, and each accepted
 * event added to the views of its series), with 0, 1 and 3 views. It runs
 * the work a partition worker does per batch, so the ratio says what the
 * views take from its events/s. The model is bench/rules-pipeline.ts.
 *
 * The stream, the same for every configuration: a web shop's events from
 * the demo's user pool (src/sim/shop-users.ts: `users` users, a segment and
 * a country each, 3 heavy users as active as 25 others), `rate` events a
 * second of event time for `seconds`, in event-time order, cut into
 * 2,500-event batches each received 100 ms after its newest event. An
 * event is shop.view (70 %), shop.click (25 %) or shop.purchase (5 %) of
 * a user drawn by activity, on one of that user's 2 pages (of 20): series
 * shop.<kind>{user, page}, 6 a user. Values: 1 for views and clicks, an
 * amount (5–205) for purchases. Windows `10s,60s/10s` with the 1m and 1h
 * rollups, lateness 2 s. The `users` reference table (user_id → segment,
 * country) is the pool as CSV, read by the table reader and set on every
 * pipeline, views or not.
 *
 * Configurations, the demo's views (src/sim/demo-scenario.ts):
 *
 *   0 views   the baseline
 *   1 view    events_per_minute_by_segment: shop.* joined with users on user, by [users.segment, name], 1m, count
 *   3 views   and revenue_per_minute: shop.purchase joined, by [users.segment], 1m, sum, count, avg, emit: changes;
 *             high_activity_users: shop.* by [user], 5m, count, having count > 100
 *
 * Per batch, as the worker: handleBatch, take the rows, encode them
 * (MessagePack); and a checkpoint as a saturated worker takes one (every
 * second of the pipeline's own busy time, later when the last snapshot's
 * size paces it: limits.checkpointBytesPerSecondMax): flushViews (the
 * views' parts since the last checkpoint become `v` rows), take and encode
 * those, then snapshot + MessagePack. A slower configuration also pays for
 * more checkpoints, as it would.
 *
 * Throughput: the three configurations run in one process, each with its
 * own pipeline, fed the same batches in turn (the order rotating turn by
 * turn; a turn is one batch, or VIEWS_PIPELINE_TURN batches in a row), each
 * batch timed (wall and the process's CPU): so the drift of this shared
 * 2-core host falls on all three alike. A warm-up round first (the JIT), a
 * full GC between rounds; the ratio to 0 views is taken round by round, its
 * median printed. Memory: each configuration alone in a
 * fresh process (`--alone <config>`), twice, in the order 0 1 3 3 1 0: its
 * peak RSS (VmHWM) and its RSS after a full GC at the end.
 *
 * Before and after a change, in one process: VIEWS_PIPELINE_VS=<another
 * checkout's root> adds "0 vs" and "3 vs", the same configurations built
 * from that checkout's pipeline and views, interleaved with the others
 * (their ratios are to this checkout's 0 views too; no alone runs).
 * VIEWS_PIPELINE_ALONE=0 skips the alone runs (no memory figures).
 *
 * Prints figures; asserts nothing on time.
 *
 * @example bun bench/views-pipeline.ts
 *          VIEWS_PIPELINE_USERS=1000 VIEWS_PIPELINE_RATE=50000 VIEWS_PIPELINE_SECONDS=200 bun bench/views-pipeline.ts
 *          VIEWS_PIPELINE_VS=/tmp/before bun bench/views-pipeline.ts   # /tmp/before: git archive of the code before
 */
import { strict as assert } from "node:assert";
import { Encoder } from "@msgpack/msgpack";
import { type PartitionOutput, PartitionPipeline, rollupsFor } from "../src/actors/partition-pipeline.ts";
import { parseTable, replaceTable, tableLookup } from "../src/actors/views/table.ts";
import type { TableLookup } from "../src/actors/views/view-set.ts";
import { parseView, type View } from "../src/actors/views/view.ts";
import { parseWindowSpecs } from "../src/actors/window-spec.ts";
import type { EventBatch } from "../src/runtime/codec.ts";
import { limits } from "../src/runtime/limits.ts";
import { demoScenario, demoViews } from "../src/sim/demo-scenario.ts";
import { createPrng } from "../src/sim/prng.ts";
import { createUserPool, pickUser, type UserPool, usersCsv } from "../src/sim/shop-users.ts";
import { aloneTwice, type Feeding, interleavedRound, mib, reportRows, roundLine, runAlone, type Turns } from "./fixtures/interleave.ts";

const shape = {
  users: Number(process.env.VIEWS_PIPELINE_USERS ?? 2_000),
  rate: Number(process.env.VIEWS_PIPELINE_RATE ?? 5_000), // events a second of event time, the whole shop
  seconds: Number(process.env.VIEWS_PIPELINE_SECONDS ?? 600), // of event time
};
const events = shape.rate * shape.seconds;
const roundsDefault = 4;
const roundsMax = 20;
const turnBatches = Number(process.env.VIEWS_PIPELINE_TURN ?? 1); // batches a configuration takes in a row
const turnBatchesMax = 100;
const eventsMax = 20_000_000; // one configuration's stream at most (a round feeds it three times)
const usersMin = 100;
const usersMax = 10_000;
const batchEvents = 2_500;
const warmupEvents = 300_000;
const checkpointEveryMs = 1_000; // of the pipeline's own busy time: the worker's interval when saturated
const recvDelayMs = 100; // a batch is received this long after its newest event
const latenessMs = 2_000;
const t0 = Date.UTC(2025, 11, 5, 8, 0, 0);
const kinds = ["shop.view", "shop.click", "shop.purchase"] as const;
const kindCdf = [0.7, 0.95, 1]; // view 70 %, click 25 %, purchase 5 %
const pages = 20;
const pagesPerUser = 2;
const seriesPerUser = kinds.length * pagesPerUser;
const amountMin = 5;
const amountSpan = 200;
const streamSeed = 16_16;

const specs = parseWindowSpecs("10s,60s/10s");
const rollups = rollupsFor(specs);

/** The views of each configuration, named by their number: the demo's, the first one, none. */
const configs: Record<string, number> = { "0": 0, "1": 1, "3": 3 };
const base = ["0", "1", "3"];
/** The other checkout's pipeline and view parser (VIEWS_PIPELINE_VS), as its configurations "0 vs" and "3 vs" use them. */
const vsDir = process.env.VIEWS_PIPELINE_VS;
const vs = vsDir === undefined ? null : {
  Pipeline: (await import(`${vsDir}/src/actors/partition-pipeline.ts`)).PartitionPipeline as typeof PartitionPipeline,
  parseView: (await import(`${vsDir}/src/actors/views/view.ts`)).parseView as typeof parseView,
};
const order = vs === null ? base : [...base, "0 vs", "3 vs"];
const viewsOf = (config: string): View[] => {
  const parse = config.endsWith(" vs") ? vs!.parseView : parseView;
  return demoViews().slice(0, configs[config.replace(" vs", "")]).map((v, i) => parse(v, { path: `views[${i}]` }));
};

/** Series sid = user · 6 + kind · 2 + page slot; a user's two pages differ (6·user + 3 is odd, never 0 mod 20). */
const sidOf = (user: number, kind: number, slot: number) => user * seriesPerUser + kind * pagesPerUser + slot;
const pageOf = (user: number, slot: number) => (slot === 0 ? user % pages : (user * 7 + 3) % pages);

function registerSeries(p: PartitionPipeline, pool: UserPool): void {
  pool.users.forEach((u, i) => {
    for (let k = 0; k < kinds.length; k++) {
      for (let slot = 0; slot < pagesPerUser; slot++) p.addSeries(sidOf(i, k, slot), kinds[k], { user: u.id, page: `/p/${pageOf(i, slot)}` });
    }
  });
}

/**
 * The stream's first `count` events as batches, made into `buffers` buffers
 * in turn, so the last that many stay valid (their making is outside the
 * timed turns): event i at t0 + i/rate s, of a user drawn by activity, a
 * kind by its share, one of the user's pages.
 */
function* batches(count: number, pool: UserPool, buffers = 1): Generator<EventBatch> {
  const ring = Array.from({ length: buffers }, () => (
    { n: 0, sid: new Uint32Array(batchEvents), ts: new Float64Array(batchEvents), value: new Float64Array(batchEvents), recvMs: 0 }
  ));
  const rng = createPrng(streamSeed);
  for (let i = 0, k = 0; i < count; k++) {
    const b = ring[k % buffers];
    const n = Math.min(batchEvents, count - i);
    for (let j = 0; j < n; j++, i++) {
      const user = pickUser(pool, rng.next());
      const r = rng.next();
      const kind = r < kindCdf[0] ? 0 : r < kindCdf[1] ? 1 : 2;
      b.sid[j] = sidOf(user, kind, rng.int(pagesPerUser));
      b.ts[j] = t0 + Math.floor((i * 1000) / shape.rate);
      b.value[j] = kind === 2 ? amountMin + Math.round(rng.next() * amountSpan) : 1;
    }
    b.n = n;
    b.recvMs = b.ts[n - 1] + recvDelayMs;
    yield b;
  }
}

/** The `users` table as a config file's CSV becomes one. */
function usersTable(pool: UserPool): TableLookup {
  return tableLookup(replaceTable(demoScenario.usersTable, parseTable(usersCsv(pool), "csv", "user_id", "bench users.csv"), 1));
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
  viewRows = 0;
  checkpoints = 0;
  checkpointBytesMax = 0;
  checkpointMs = 0;

  constructor(views: View[], pool: UserPool, users: TableLookup, Pipeline = PartitionPipeline) {
    this.p = new Pipeline({ specs, latenessMs, seriesMax: pool.users.length * seriesPerUser, rollups, views });
    this.p.setTable(demoScenario.usersTable, users);
    registerSeries(this.p, pool);
  }

  batch(b: EventBatch): void {
    this.p.handleBatch(b);
    this.ship();
    this.lastRecvMs = b.recvMs;
  }

  /**
   * Once a second of busy time, or later if the last snapshot's pacing says so (limits.checkpointBytesPerSecondMax),
   * as the worker: the views' parts out with the rows, then snapshot + MessagePack.
   */
  checkpointIfDue(): void {
    if (this.busyMs < this.checkpointAtMs) return;
    const bytes = this.checkpoint();
    this.checkpointAtMs = this.busyMs + Math.max(checkpointEveryMs, (bytes / limits.checkpointBytesPerSecondMax) * 1000);
  }

  /** The quiet closes after the stream (every window, the 1 h rollup's too), and a last checkpoint. */
  end(): void {
    this.p.tick(this.lastRecvMs + 3_700_000);
    this.ship();
    this.checkpoint();
  }

  private checkpoint(): number {
    const t = performance.now();
    this.p.flushViews();
    this.ship();
    const bytes = this.enc.encode(this.p.snapshot()).byteLength;
    this.checkpoints++;
    this.checkpointBytesMax = Math.max(this.checkpointBytesMax, bytes);
    this.checkpointMs += performance.now() - t;
    return bytes;
  }

  private ship(): void {
    const out: PartitionOutput = this.p.take(Number.MAX_SAFE_INTEGER);
    this.windows += out.w.length;
    this.viewRows += out.v.length;
    this.enc.encode({ k: "out", e: 1, ...out }); // as the worker ships them
  }
}

/** One round: a fresh pipeline per configuration, fed `turnBatches` batches in a row each, the order rotating; answers each one's time. */
function round(count: number, pool: UserPool, users: TableLookup): Turns<Feeder> {
  const feeders = order.map((c) => new Feeder(viewsOf(c), pool, users, c.endsWith(" vs") ? vs!.Pipeline : PartitionPipeline));
  return interleavedRound(feeders, batches(count, pool, turnBatches), { turnBatches });
}

const label = (config: string) => `${config.replace(" vs", "")} view${config.startsWith("1") ? "" : "s"}${config.endsWith(" vs") ? " (VIEWS_PIPELINE_VS)" : ""}`;

async function main(): Promise<void> {
  assert(Number.isInteger(shape.users) && shape.users >= usersMin && shape.users <= usersMax, `users: ${usersMin} to ${usersMax}`);
  assert(Number.isInteger(shape.rate) && shape.rate >= 1 && events >= batchEvents && events <= eventsMax, `rate a whole number ≥ 1; events a run ${events}, ${batchEvents} to ${eventsMax}`);
  const roundCount = Number(process.env.VIEWS_PIPELINE_ROUNDS ?? roundsDefault);
  assert(Number.isInteger(roundCount) && roundCount >= 1 && roundCount <= roundsMax, `rounds: 1 to ${roundsMax}`);
  assert(Number.isInteger(turnBatches) && turnBatches >= 1 && turnBatches <= turnBatchesMax, `turn: 1 to ${turnBatchesMax} batches`);
  console.log(
    `views in the pipeline: ${shape.users} users (${shape.users * seriesPerUser} series) × ${shape.rate} event/s × ${shape.seconds} s = ` +
      `${events.toLocaleString("en")} events a run, ${batchEvents}-event batches, windows 10s,60s/10s (+ 1m, 1h); ` +
      `${roundCount} interleaved rounds (${turnBatches} batch${turnBatches === 1 ? "" : "es"} a turn) after a warm-up, then each configuration alone twice`,
  );
  const pool = createUserPool({ users: shape.users });
  const users = usersTable(pool);
  round(Math.min(warmupEvents, events), pool, users);
  const rounds: Turns<Feeder>[] = [];
  for (let r = 0; r < roundCount; r++) {
    Bun.gc(true);
    rounds.push(round(events, pool, users));
    console.log(roundLine(r + 1, order, rounds[r], events));
  }
  const alone = process.env.VIEWS_PIPELINE_ALONE === "0" ? [] : await aloneTwice(import.meta.path, base, events);
  const refused = rounds[0].feeders.map((x) => x.p.viewsRefused).join(", ");
  reportRows(
    { config: "configuration", baseline: "0 views", extra: ["view rows a run", "checkpoints a run: count, largest, ms each"] }, order, rounds, alone, events, label,
    (f) => [f.viewRows.toLocaleString("en"), `${f.checkpoints}, ${mib(f.checkpointBytesMax)}, ${(f.checkpointMs / f.checkpoints).toFixed(0)}`],
    `; view updates refused ${refused}`,
  );
}

if (import.meta.main) {
  const at = process.argv.indexOf("--alone");
  if (at >= 0) {
    const config = process.argv[at + 1];
    assert(configs[config] !== undefined, `unknown configuration ${config}`);
    const pool = createUserPool({ users: shape.users });
    const users = usersTable(pool);
    const warmup = batches(Math.min(warmupEvents, events), pool);
    console.log(JSON.stringify(runAlone(config, () => new Feeder(viewsOf(config), pool, users), warmup, batches(events, pool))));
  }
  else await main();
}
