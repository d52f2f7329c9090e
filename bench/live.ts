/**
 * Window close → live subscriber latency. One series; each POST carries an
 * event past the previous window's end + lateness, so it closes that window
 * (the watermark passes its end). Measured from just before the POST is sent
 * to the WebSocket frame's arrival: ingest, ring, worker, output ring,
 * fanout and the socket all count. Requests are spaced past the default
 * per-client throttle (100 ms) so the throttle adds nothing a real 10 s
 * window would not see. Baseline: a bare HTTP round trip to /health.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config.ts";
import { silentLog } from "../src/runtime/log.ts";
import { startWeir } from "../src/server.ts";

export async function benchLiveLatency(opts: { samples?: number } = {}) {
  const samples = opts.samples ?? 200;
  const dir = mkdtempSync(join(tmpdir(), "weir-bench-live-"));
  const w = await startWeir(loadConfig({ WEIR_PORT: "0", WEIR_DATA_DIR: dir, WEIR_LOG_LEVEL: "error" }), silentLog);
  const arrivals = new Map<number, number>();
  const ws = new WebSocket(w.url.replace("http", "ws") + "/ws/live");
  await new Promise((r) => (ws.onopen = r));
  ws.onmessage = (m) => {
    const msg = JSON.parse(String(m.data));
    if (msg.type === "window" && msg.window === "10s") arrivals.set(msg.end, performance.now());
  };
  ws.send(JSON.stringify({ op: "subscribe", topics: ["windows:10s:live.latency"] }));
  await Bun.sleep(100);
  const base = Math.floor(Date.now() / 10_000) * 10_000 - 86_400_000;
  const latencies: number[] = [];
  const rtts: number[] = [];
  for (let k = 1; k <= samples; k++) {
    const end = base + k * 10_000;
    const body = JSON.stringify({ name: "live.latency", value: k, ts: end + 2_001 });
    const sent = performance.now();
    await fetch(`${w.url}/api/v1/events`, { method: "POST", body, headers: { "content-type": "application/json" } });
    if (k > 1) {
      while (!arrivals.has(end) && performance.now() - sent < 2000) await Bun.sleep(0);
      if (arrivals.has(end)) latencies.push(arrivals.get(end)! - sent);
    }
    const h = performance.now();
    await (await fetch(`${w.url}/health`)).text();
    rtts.push(performance.now() - h);
    await Bun.sleep(110);
  }
  ws.close();
  await w.stop();
  rmSync(dir, { recursive: true, force: true });
  const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(p * xs.length) - 1)];
  return {
    name: "window close → /ws/live subscriber latency (ms)",
    p50Ms: q(latencies, 0.5), p99Ms: q(latencies, 0.99), maxMs: Math.max(...latencies), received: latencies.length, expected: samples - 1,
    baselineRttP50Ms: q(rtts, 0.5), baselineRttP99Ms: q(rtts, 0.99),
  };
}

if (import.meta.main) console.log(await benchLiveLatency());
