/**
 * Durability under kill -9: weir runs as a child process; a seeded generator
 * sends events with unique ids over HTTP and keeps a ledger of what got a
 * 202; weir is killed mid-stream and restarted on the same data directory;
 * then every window is recomputed from the ledger and compared with the API.
 * The contract (API.md "Ingest"): an accepted event is reflected exactly once
 * in every aggregate, across crashes and restarts.
 *
 * The bigger run is `bun bench/kill.ts`. A run's seed is printed; rerun one
 * with LEDGER_SEED=<seed>.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer } from "./helpers/nats-server.ts";
import { formatReport } from "./ledger/checker.ts";
import { killTimes, runScenario, type ScenarioOptions, type ScenarioResult } from "./ledger/scenario.ts";

const seed = Number(process.env.LEDGER_SEED ?? 20261201);
const testTimeoutMs = 180_000;

/** ~3,000 events over ~15 s into 8 series: small enough for the suite, long enough for three kills. */
const small: Omit<ScenarioOptions, "name" | "dataDir" | "killAtMs" | "finalTerm"> = {
  seed, generators: 1, seriesPerGenerator: 8, eventsPerRequest: 10, eventsPerSec: 200, durationMs: 15_000,
  specsText: "10s,60s/10s",
  latenessMs: 5_000, // a restart's downtime must not make a retried event late
  progress: (line) => console.log(line),
};

/** The figures that must come out exactly so, as one object, so a failure shows them all. */
function verdict(r: ScenarioResult) {
  const x = r.report;
  return {
    lost: x.lost, duplicated: x.duplicated, windowsEqualPct: x.windowsTotal === 0 ? 0 : Math.round((10_000 * x.windowsEqual) / x.windowsTotal) / 100,
    windowsMissing: x.windowsMissing, windowsUnexpected: x.windowsUnexpected, windowsDiffering: x.windowsDiffering,
    lateEvents: x.lateEvents, inDoubtUnacked: x.inDoubtUnacked, windowsComplete: r.windowsComplete,
  };
}
const clean = { lost: 0, duplicated: 0, windowsEqualPct: 100, windowsMissing: 0, windowsUnexpected: 0, windowsDiffering: 0, lateEvents: 0, inDoubtUnacked: 0, windowsComplete: true };

/** Runs a scenario in a fresh directory; keeps the directory (and prints the log tail) when the check fails. */
async function run(name: string, o: Pick<ScenarioOptions, "killAtMs" | "finalTerm" | "crashAt"> & Partial<ScenarioOptions>): Promise<ScenarioResult> {
  const dataDir = mkdtempSync(join(tmpdir(), `weir-durability-${name}-`));
  console.log(`${name}: seed ${o.seed ?? seed}, data in ${dataDir}`);
  const r = await runScenario({ ...small, ...o, name, dataDir });
  if (r.report.ok && r.windowsComplete) rmSync(dataDir, { recursive: true, force: true });
  else console.error(`${name} failed; data kept in ${dataDir}\n${formatReport(r.report)}\n--- weir log (last lines) ---\n${r.logTail}`);
  return r;
}

describe("durability - kill -9 mid-stream", () => {
  // The two kill scenarios parse on ingest threads (WEIR_INGEST_THREADS), the crash points on the main thread.
  test("durability - three SIGKILLs and a SIGTERM (2 ingest threads): no acknowledged event lost or doubled, every window equal; alert rules' transitions stored and delivered exactly as a recount makes them, a view's windows equal to a recount", async () => {
    const r = await run("kill3", { killAtMs: killTimes(seed, 3, small.durationMs), finalTerm: true, env: { WEIR_INGEST_THREADS: "2" }, rules: true });
    expect(r.report.acknowledged).toBeGreaterThan(2_500);
    expect({ kills: r.kills, crashes: r.crashes.length, termExitCodes: r.termExitCodes }).toEqual({ kills: 3, crashes: 0, termExitCodes: [0] });
    expect(verdict(r)).toEqual(clean);
    // The alert rules across the same kills: every transition stored once, none more, every firing and resolved delivered.
    const x = r.rules!;
    expect(x.expected).toBeGreaterThan(3);
    expect({ stored: x.stored, missing: x.missing, unexpected: x.unexpected, deliveriesMissing: x.deliveriesMissing, deliveriesUnexpected: x.deliveriesUnexpected })
      .toEqual({ stored: x.expected, missing: [], unexpected: [], deliveriesMissing: [], deliveriesUnexpected: [] });
    // A view over every series (its group gathers both partitions): each closed window equal to the recount, across the kills.
    const v = r.view!;
    expect(v.expected).toBeGreaterThan(4);
    expect({ equal: v.equal, missing: v.missing, differing: v.differing }).toEqual({ equal: v.expected, missing: [], differing: [] });
  }, testTimeoutMs);

  test("durability - WEIR_DURABILITY=durable (group commit, 1 ingest thread): three SIGKILLs and a SIGTERM, nothing lost or doubled, every window equal", async () => {
    const r = await run("durable-kill3", { killAtMs: killTimes(seed + 7, 3, small.durationMs), finalTerm: true, seed: seed + 7, env: { WEIR_DURABILITY: "durable", WEIR_INGEST_THREADS: "1" } });
    expect(r.report.acknowledged).toBeGreaterThan(2_500);
    expect({ kills: r.kills, crashes: r.crashes.length, termExitCodes: r.termExitCodes }).toEqual({ kills: 3, crashes: 0, termExitCodes: [0] });
    expect(verdict(r)).toEqual(clean);
  }, testTimeoutMs);

  test("durability - NATS mode (HTTP through JetStream, 202 once it has stored the body): three SIGKILLs and a SIGTERM, nothing lost or doubled", async () => {
    const nats = await startNatsServer();
    try {
      const r = await run("nats-kill3", { killAtMs: killTimes(seed + 13, 3, small.durationMs), finalTerm: true, seed: seed + 13, env: { WEIR_NATS_URL: nats.url } });
      expect(r.report.acknowledged).toBeGreaterThan(2_500);
      expect({ kills: r.kills, crashes: r.crashes.length, termExitCodes: r.termExitCodes }).toEqual({ kills: 3, crashes: 0, termExitCodes: [0] });
      expect(verdict(r)).toEqual(clean);
    } finally {
      await nats.stop();
    }
  }, testTimeoutMs);

  test("durability - NATS mode: nats-server SIGKILLed mid-stream and restarted 3 s later; weir refuses (503) meanwhile and resumes: nothing lost or doubled", async () => {
    const nats = await startNatsServer();
    let outage = Promise.resolve();
    const timer = setTimeout(() => {
      outage = (async () => {
        await nats.kill();
        await Bun.sleep(3_000); // the outage: weir answers 503 and the generator retries
        await nats.restart();
      })();
    }, 6_000);
    try {
      const r = await run("nats-outage", { killAtMs: [], finalTerm: false, seed: seed + 17, env: { WEIR_NATS_URL: nats.url } });
      await outage;
      expect(r.report.acknowledged).toBeGreaterThan(2_000);
      expect(r.attemptsRefused).toBeGreaterThan(0); // the outage was seen
      expect(verdict(r)).toEqual(clean);
    } finally {
      clearTimeout(timer);
      await outage;
      await nats.stop();
    }
  }, testTimeoutMs);

  test("durability - a crash at each commit boundary (WEIR_CRASH_AT), then a restart without it: every window equal", async () => {
    // The n-th arrival at each point falls mid-stream: ~20 requests/s reach ingest.after-log; each partition commits about every second.
    const points = { "ingest.after-log": 100, "store.before-commit": 9, "checkpoint.mid": 9, "store.after-commit": 9 };
    // One run per point, side by side: each waits about a minute at the end for its sliding windows to close.
    const results = await Promise.all(Object.entries(points).map(([point, n], i) =>
      run(point.replace(".", "-"), { killAtMs: [], finalTerm: false, crashAt: `${point}:${n}`, seed: seed + i, durationMs: 12_000 })));
    const got = results.map((r) => ({ run: r.name, crashes: r.crashes.length, ...verdict(r) }));
    expect(got).toEqual(results.map((r) => ({ run: r.name, crashes: 1, ...clean })));
  }, testTimeoutMs);
});
