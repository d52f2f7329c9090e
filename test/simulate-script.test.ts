/**
 * `bun run simulate`: the demo's simulators as a producer of their own,
 * through the emit() client over HTTP, against a real weir.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { startNatsServer } from "./helpers/nats-server.ts";
import { waitFor } from "./helpers/wait.ts";
import { startTestWeir } from "./helpers/weir.ts";

test("simulate - the simulators send through the emit() client: every event emitted is accepted, and the demo's series appear", async () => {
  const w = await startTestWeir();
  try {
    const script = join(import.meta.dir, "../scripts/simulate.ts");
    const p = Bun.spawn(["bun", script, "--url", w.url, "--rate", "400", "--seconds", "2", "--seed", "7"], { stdout: "pipe", stderr: "pipe" });
    expect(await p.exited).toBe(0);
    const s = JSON.parse((await new Response(p.stdout).text()).trim());
    expect(s.emitted).toBeGreaterThan(400);
    expect(s).toEqual({ url: w.url, transport: "http", emitted: s.emitted, accepted: s.emitted, rejected: 0, dropped: 0, failed: 0 });
    const series = (await (await fetch(`${w.url}/api/v1/series?match=*&limit=1000`)).json()).series as Array<{ name: string }>;
    const families = [...new Set(series.map((x) => x.name.split(".")[0]))].sort();
    expect(families).toEqual(["sensor", "shop"]); // the IoT simulator's sensor.* and the shop's shop.*
    const bad = Bun.spawn(["bun", script, "--url", w.url, "--rate", "0"], { stdout: "pipe", stderr: "pipe" });
    expect(await bad.exited).toBe(2);
    expect(await new Response(bad.stderr).text()).toContain("simulate: --rate must be in (0, 50000]");
  } finally {
    await w.stop();
  }
}, 30_000);

/** Runs the script; its figures, and the events weir counted meanwhile. */
async function simulate(args: string[], ingested: () => number) {
  const before = ingested();
  const p = Bun.spawn(["bun", join(import.meta.dir, "../scripts/simulate.ts"), ...args, "--rate", "300", "--seconds", "2", "--seed", "9"], { stdout: "pipe", stderr: "pipe" });
  const code = await p.exited;
  return { code, figures: JSON.parse((await new Response(p.stdout).text()).trim()), before };
}

test("simulate - over /ws/ingest: every tick a frame acked once durable; every event emitted accepted and counted by weir", async () => {
  const w = await startTestWeir();
  try {
    const ingested = () => w.engine.metrics.ingested.get();
    const r = await simulate(["--url", w.url, "--transport", "ws"], ingested);
    expect(r.code).toBe(0);
    expect(r.figures).toEqual({ url: w.url, transport: "ws", emitted: r.figures.emitted, accepted: r.figures.emitted, rejected: 0, dropped: 0, failed: 0 });
    expect(r.figures.emitted).toBeGreaterThan(300);
    expect(ingested() - r.before).toBe(r.figures.emitted);
  } finally {
    await w.stop();
  }
}, 30_000);

test("simulate - over NATS: published to weir.ingest.sim, stored by JetStream, taken by weir in NATS mode, each event once", async () => {
  const nats = await startNatsServer();
  const w = await startTestWeir({ WEIR_NATS_URL: nats.url });
  try {
    const ingested = () => w.engine.metrics.ingested.get();
    const r = await simulate(["--transport", "nats", "--nats", nats.url], ingested);
    expect(r.code).toBe(0);
    expect(r.figures).toMatchObject({ transport: "nats", rejected: 0, dropped: 0, failed: 0 });
    expect(r.figures.accepted).toBe(r.figures.emitted);
    await waitFor(() => ingested() - r.before === r.figures.emitted, 10_000, "weir taking every published event");
    const bad = Bun.spawn(["bun", join(import.meta.dir, "../scripts/simulate.ts"), "--transport", "nats"], { stdout: "pipe", stderr: "pipe", env: { ...process.env, WEIR_NATS_URL: "" } });
    expect(await bad.exited).toBe(2);
    expect(await new Response(bad.stderr).text()).toContain("--transport nats needs --nats");
  } finally {
    await w.stop();
    await nats.stop();
  }
}, 30_000);
