/**
 * The edge profile (WEIR_PROFILE=edge, issue 18 item 12): weir as its own
 * process on its small settings takes 1,000 series at 1 event/s each, as
 * `weir load` sends them, within its memory budget (WEIR_MEMORY_MAX, 256
 * MiB: it would shed with 503 past it, and none came), every event counted.
 */
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { edgeProfile, loadConfig } from "../src/config.ts";
import { waitFor } from "./helpers/wait.ts";

const root = join(import.meta.dir, "..");

function freePort(): number {
  const s = Bun.serve({ port: 0, fetch: () => new Response() });
  const port = s.port!;
  s.stop(true);
  return port;
}

test("edge profile - its settings apply only where none is given", () => {
  const edge = loadConfig({ WEIR_PROFILE: "edge", WEIR_DATA_DIR: "/tmp/never-used" });
  expect([edge.partitions, edge.ringBytes, edge.lake.enabled, edge.memoryBytesMax, edge.maxSeries]).toEqual([1, 4 * 2 ** 20, false, 256 * 2 ** 20, 20_000]);
  expect(loadConfig({ WEIR_PROFILE: "edge", WEIR_PARTITIONS: "3", WEIR_DATA_DIR: "/tmp/never-used" }).partitions).toBe(3);
  expect(Object.keys(edgeProfile).every((k) => k.startsWith("WEIR_"))).toBe(true);
  expect(() => loadConfig({ WEIR_PROFILE: "tiny", WEIR_DATA_DIR: "/tmp/never-used" })).toThrow("WEIR_PROFILE");
});

test("edge profile - 1,000 series at 1 event/s each for 8 s: all taken, no 503, RSS within WEIR_MEMORY_MAX", async () => {
  const dir = mkdtempSync(join(tmpdir(), "weir-edge-"));
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const weir = Bun.spawn(["bun", join(root, "src/main.ts")], {
    env: { ...process.env, WEIR_PROFILE: "edge", WEIR_PORT: String(port), WEIR_DATA_DIR: dir, WEIR_LOG_LEVEL: "error" }, stdout: "ignore", stderr: "inherit",
  });
  try {
    await waitFor(async () => (await fetch(`${url}/ready`).catch(() => null))?.status === 200, 20_000, "weir on the edge profile ready");
    const load = Bun.spawn(["bun", join(root, "src/cli.ts"), "load", "--url", url, "--rate", "1000", "--series", "1000", "--seconds", "8", "--batch", "100", "--connections", "2"], { stdout: "pipe", stderr: "ignore" });
    const report = JSON.parse(await new Response(load.stdout).text());
    expect(await load.exited).toBe(0);
    expect(report).toMatchObject({ failed: 0, rejected: 0, statuses: { "202": expect.any(Number) }, server: { matches: true, workerRestarts: 0 } });
    expect(Object.keys(report.statuses)).toEqual(["202"]);
    expect(report.accepted).toBeGreaterThanOrEqual(7_000);
    console.log(`edge profile: ${report.accepted} events, RSS ${(report.server.rssBytes / 2 ** 20).toFixed(0)} MiB, ${report.server.cpuSeconds} CPU-s`);
    expect(report.server.rssBytes).toBeLessThan(256 * 2 ** 20);
  } finally {
    weir.kill("SIGTERM");
    await weir.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
