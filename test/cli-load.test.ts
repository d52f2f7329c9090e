/**
 * `weir load` and the CLI's dispatch, as a user runs them: the real CLI in
 * its own process against a real weir on port 0. The report's figures are
 * checked against what weir counted (/metrics) and what was asked; bad
 * flags and an unreachable weir exit with their statuses and say why.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { startTestWeir, type TestWeir } from "./helpers/weir.ts";

const cli = join(import.meta.dir, "..", "src", "cli.ts");

async function weirCli(args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawn(["bun", cli, ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { stdout, stderr, code };
}

describe("cli - weir load", () => {
  let w: TestWeir;
  beforeAll(async () => {
    w = await startTestWeir({ WEIR_WINDOWS: "1s", WEIR_LATENESS: "0" });
  });
  afterAll(async () => {
    await w?.stop();
  });

  test("cli - load: a count-bounded run's report: every event sent, accepted and ingested once (as /metrics counts), acks and window deliveries timed", async () => {
    const r = await weirCli(["load", "--url", w.url, "--events", "3000", "--batch", "300", "--connections", "3", "--series", "50", "--seconds", "60"]);
    expect([r.code, r.stderr.split("\n").filter((l) => l.startsWith("weir:"))]).toEqual([0, []]);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({
      url: w.url, transport: "http", connections: 3, batch: 300, series: 50, targetRatePerSec: 0,
      sent: 3000, accepted: 3000, rejected: 0, failed: 0,
      ackLatencyMs: { samples: 10 }, windowDeliveryMs: { window: "1s" },
      server: { ingested: 3000, matches: true },
    });
    expect(report.retried).toBeGreaterThanOrEqual(0);
    expect(report.ackLatencyMs.p50).toBeGreaterThan(0);
    expect(report.windowDeliveryMs.windows).toBeGreaterThan(0); // the 1 s windows of 50 series closed while it watched
    expect(report.server.rssBytes).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/sent 3000, accepted 3000, rejected 0, retried \d+, failed 0/); // plain progress lines: not a terminal
  }, 60_000);

  test("cli - load over /ws/ingest: every frame acked once durable, every event ingested once", async () => {
    const r = await weirCli(["load", "--url", w.url, "--transport", "ws", "--events", "5000", "--batch", "250", "--connections", "2", "--series", "50", "--seconds", "60"]);
    expect([r.code, r.stderr.split("\n").filter((l) => l.startsWith("weir:"))]).toEqual([0, []]);
    expect(JSON.parse(r.stdout)).toMatchObject({ transport: "ws", sent: 5000, accepted: 5000, failed: 0, statuses: { ack: 20 }, ackLatencyMs: { samples: 20 }, server: { ingested: 5000, matches: true } });
  }, 60_000);

  test("cli - load: a burst of 20 connections flat out, the rings filled by a paused partition for a while: only 202/429/503, every event re-sent after Retry-After lands once, no worker restart", async () => {
    const b = await startTestWeir({ WEIR_RING_BYTES: "4MiB", WEIR_FAILPOINTS: "1" });
    try {
      const paused = "partition-0";
      b.engine.supervisor.post(paused, { type: "fault", mode: "pause" }); // its ring fills: 503s until it resumes
      const resume = setTimeout(() => b.engine.supervisor.post(paused, { type: "fault", mode: "resume" }), 3_000);
      const r = await weirCli(["load", "--url", b.url, "--events", "600000", "--batch", "1000", "--connections", "20", "--series", "500", "--seconds", "120"]);
      clearTimeout(resume);
      const report = JSON.parse(r.stdout);
      console.log(`burst: ${JSON.stringify({ statuses: report.statuses, retried: report.retried, eventsPerSec: report.eventsPerSec, server: report.server })}`);
      expect(Object.keys(report.statuses).filter((s) => !["202", "429", "503"].includes(s))).toEqual([]);
      expect(report.statuses["503"]).toBeGreaterThan(0); // the paused partition's ring did fill
      expect(report).toMatchObject({ sent: 600000, accepted: 600000, failed: 0, server: { ingested: 600000, matches: true, workerRestarts: 0 } });
    } finally {
      await b.stop();
    }
  }, 120_000);

  test("cli - load: a bad flag names it (status 2); an unreachable weir says so (status 1), with no stack", async () => {
    const bad = await weirCli(["load", "--url", w.url, "--batch", "0"]);
    expect([bad.code, bad.stderr.trim()]).toEqual([2, "weir: --batch: must be ≥ 1"]);
    const unknown = await weirCli(["load", "--bogus", "1"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("--bogus");
    const away = await weirCli(["load", "--url", "http://127.0.0.1:9", "--events", "10"]);
    expect([away.code, away.stderr.trim()]).toEqual([1, "weir: no weir answers at http://127.0.0.1:9 (ECONNREFUSED: Unable to connect); start one (weir start) or pass --url"]);
  });
});

describe("cli - dispatch", () => {
  test("cli - help lists every command; --help on each says what it does; an unknown command is status 2", async () => {
    const help = await weirCli(["help"]);
    expect(help.code).toBe(0);
    expect(help.stdout.split("\n").slice(1).filter(Boolean).map((l) => l.trim().split(/\s+/)[0]))
      .toEqual(["start", "sim", "load", "export", "check-config", "verify", "rebuild", "repair-log"]);
    for (const c of ["start", "sim", "load", "export", "check-config", "verify", "rebuild", "repair-log"]) {
      const r = await weirCli([c, "--help"]);
      expect([c, r.code, r.stdout.startsWith(`weir ${c}`)]).toEqual([c, 0, true]);
    }
    const unknown = await weirCli(["frobnicate"]);
    expect([unknown.code, unknown.stderr.trim()]).toEqual([2, 'weir: unknown command "frobnicate"; one of: start, sim, load, export, check-config, verify, rebuild, repair-log (weir help)']);
  });

  test("cli - check-config: good settings print what they give; a bad one is named (status 2)", async () => {
    const ok = await weirCli(["check-config"], { WEIR_PARTITIONS: "3", WEIR_WINDOWS: "10s,1m" });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ partitions: 3, windows: "10s,1m" });
    const bad = await weirCli(["check-config"], { WEIR_PARTITIONS: "zero" });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("WEIR_PARTITIONS");
  });
});
