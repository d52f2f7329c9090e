/**
 * `bun run simulate`: the demo's simulators as a producer of their own,
 * through the emit() client over HTTP, against a real weir.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { startTestWeir } from "./helpers/weir.ts";

test("simulate - the simulators send through the emit() client: every event emitted is accepted, and the demo's series appear", async () => {
  const w = await startTestWeir();
  try {
    const script = join(import.meta.dir, "../scripts/simulate.ts");
    const p = Bun.spawn(["bun", script, "--url", w.url, "--rate", "400", "--seconds", "2", "--seed", "7"], { stdout: "pipe", stderr: "pipe" });
    expect(await p.exited).toBe(0);
    const s = JSON.parse((await new Response(p.stdout).text()).trim());
    expect(s.emitted).toBeGreaterThan(400);
    expect(s).toEqual({ url: w.url, emitted: s.emitted, accepted: s.emitted, rejected: 0, dropped: 0, failed: 0 });
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
