/**
 * What the continuous views cost a whole weir (issue 16: the pipeline's
 * events/s with 0, 1 and 3 views): weir runs as its own process (HTTP
 * ingest, the partition workers, the store, the views merged at each
 * checkpoint), fed the demo's shop stream over HTTP as fast as it takes it,
 * with the demo's views (`src/sim/demo-scenario.ts`: none, the first, all
 * three) and its `users` table from a CSV. bench/views-pipeline.ts measures
 * one partition's pipeline alone; this measures what a user sees.
 *
 * Each configuration runs in a fresh weir (fresh data directory), in the
 * order 0 1 3 3 1 0 per round (so drift and the machine's other work fall
 * on all three alike): a warm-up, then `seconds` of load from `connections`
 * concurrent producers, each posting bodies of `batch` events (no `ts`:
 * weir stamps the receive time, as for a producer on time) and sending a
 * body again after 429/503. Measured over the timed part: events weir took
 * (`weir_events_ingested_total`), weir's CPU-seconds (all its threads, from
 * /proc), and events per CPU-second. Ratios are against the view-free run
 * next to it in the same round (0 with the first 1 and 3, the second 0 with
 * the second 1 and 3); the medians over rounds are printed.
 *
 * @example bun bench/views-e2e.ts                   # 3 rounds of 20 s per run
 *          VIEWS_E2E_ROUNDS=2 VIEWS_E2E_SECONDS=30 bun bench/views-e2e.ts
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPrng } from "../src/sim/prng.ts";
import { demoViews } from "../src/sim/demo-scenario.ts";
import { createUserPool, pickUser, usersCsv } from "../src/sim/shop-users.ts";
import { newPostCounts, postUntilAccepted } from "./fixtures/post-until-accepted.ts";
import { cpuSecondsOf, startWeirProcess } from "./fixtures/weir-process.ts";

const rounds = Number(process.env.VIEWS_E2E_ROUNDS ?? 3);
const seconds = Number(process.env.VIEWS_E2E_SECONDS ?? 20);
const warmupSeconds = 5;
const connections = Number(process.env.VIEWS_E2E_CONNECTIONS ?? 8);
const batch = 1_000;
const users = Number(process.env.VIEWS_E2E_USERS ?? 2_000);
const bodiesMade = 200; // distinct bodies, sent round-robin (200,000 events)
const kinds = ["shop.view", "shop.click", "shop.purchase"] as const;
const kindCdf = [0.7, 0.95, 1];
const pages = 20;
const configs = ["0", "1", "3"] as const;
type ConfigName = (typeof configs)[number];

const pool = createUserPool({ users });
const dir = mkdtempSync(join(tmpdir(), "weir-views-e2e-"));
writeFileSync(join(dir, "users.csv"), usersCsv(pool));
for (const c of configs) {
  const views = demoViews().slice(0, Number(c));
  writeFileSync(join(dir, `weir-${c}.json`), JSON.stringify({ tables: { users: { file: join(dir, "users.csv"), key: "user_id" } }, views }));
}

/** The shop's stream as JSON bodies: a user drawn by activity, a kind by its share, one of the user's 2 pages. */
function makeBodies(): string[] {
  const rng = createPrng(1616);
  const out: string[] = [];
  for (let b = 0; b < bodiesMade; b++) {
    const events = [];
    for (let j = 0; j < batch; j++) {
      const u = pickUser(pool, rng.next());
      const r = rng.next();
      const kind = r < kindCdf[0] ? 0 : r < kindCdf[1] ? 1 : 2;
      const page = rng.int(2) === 0 ? u % pages : (u * 7 + 3) % pages;
      events.push({ name: kinds[kind], tags: { user: pool.users[u].id, page: `/p/${page}` }, value: kind === 2 ? 5 + Math.round(rng.next() * 200) : 1 });
    }
    out.push(JSON.stringify(events));
  }
  return out;
}

interface Run { config: ConfigName; events: number; cpuS: number; wallS: number; refused: number }

async function runOne(config: ConfigName, bodies: string[]): Promise<Run> {
  const w = await startWeirProcess({ WEIR_CONFIG: join(dir, `weir-${config}.json`) });
  try {
    const counts = newPostCounts();
    let next = 0;
    const load = async (untilMs: number) => {
      const worker = async () => {
        while (performance.now() < untilMs) await postUntilAccepted(`${w.url}/api/v1/events`, bodies[next++ % bodies.length], counts, untilMs);
      };
      await Promise.all(Array.from({ length: connections }, worker));
    };
    await load(performance.now() + warmupSeconds * 1000);
    const m0 = await w.metrics();
    const c0 = await cpuSecondsOf(w.pid);
    const t0 = performance.now();
    await load(t0 + seconds * 1000);
    const wallS = (performance.now() - t0) / 1000;
    const m1 = await w.metrics();
    const c1 = await cpuSecondsOf(w.pid);
    return {
      config, events: m1.weir_events_ingested_total - m0.weir_events_ingested_total, cpuS: c1.process - c0.process, wallS,
      refused: counts.refused429 + counts.refused503,
    };
  } finally {
    await w.stop();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const k = (n: number) => `${(n / 1000).toFixed(1)} k`;

const bodies = makeBodies();
const all: Run[][] = [];
console.log(`views end to end: ${users} users, ${connections} connections, bodies of ${batch}, ${rounds} rounds of 0 1 3 3 1 0, ${seconds} s timed each`);
for (let r = 0; r < rounds; r++) {
  const order: ConfigName[] = ["0", "1", "3", "3", "1", "0"];
  const runs: Run[] = [];
  for (const c of order) {
    const run = await runOne(c, bodies);
    runs.push(run);
    console.log(`round ${r + 1} ${c} views: ${k(run.events / run.wallS)} events/s, ${k(run.events / run.cpuS)} events per CPU-s, ${run.refused} refusals`);
  }
  all.push(runs);
}
rmSync(dir, { recursive: true, force: true });

// Ratios against the view-free run of the same half-round: runs 0 1 2 pair with 0, runs 3 4 5 with 5.
const ratios: Record<ConfigName, { wall: number[]; cpu: number[] }> = { "0": { wall: [], cpu: [] }, "1": { wall: [], cpu: [] }, "3": { wall: [], cpu: [] } };
for (const runs of all) {
  for (const [base, members] of [[runs[0], [runs[0], runs[1], runs[2]]], [runs[5], [runs[5], runs[4], runs[3]]]] as const) {
    for (const m of members) {
      ratios[m.config].wall.push((m.events / m.wallS) / (base.events / base.wallS));
      ratios[m.config].cpu.push((m.events / m.cpuS) / (base.events / base.cpuS));
    }
  }
}
console.log("\n| configuration | events/s, median (range) | events per CPU-second, median | ratio to 0 views: events/s, median (range) | ratio: per CPU-second, median (range) |");
console.log("|---|---|---|---|---|");
for (const c of configs) {
  const runs = all.flat().filter((x) => x.config === c);
  const rate = runs.map((x) => x.events / x.wallS);
  const perCpu = runs.map((x) => x.events / x.cpuS);
  const w = ratios[c].wall;
  const cp = ratios[c].cpu;
  console.log(`| ${c} views | ${k(median(rate))} (${k(Math.min(...rate))}–${k(Math.max(...rate))}) | ${k(median(perCpu))} | ${median(w).toFixed(3)} (${Math.min(...w).toFixed(3)}–${Math.max(...w).toFixed(3)}) | ${median(cp).toFixed(3)} (${Math.min(...cp).toFixed(3)}–${Math.max(...cp).toFixed(3)}) |`);
}
