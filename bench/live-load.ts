/**
 * The live path under load: weir runs as its own process; the HTTP load of
 * bench/http.ts (events stamped at send time, 1,000 series) runs three times
 * from another process — with no live clients, then with `healthy` WebSocket
 * clients subscribed to 10 s windows plus `stalled` ones that never read (a
 * third process holds the clients), then with no clients again. Reported:
 * the pipeline's events/s with the clients against the mean of the two runs
 * without (the baseline; both are printed, so drift between them shows),
 * delivery latency for the healthy clients, the server's RSS and CPU per
 * connected client, and the CPU the clients' own process took.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dir, "..");

async function startServer(dir: string, port: number) {
  const p = Bun.spawn(["bun", join(root, "src/main.ts")], {
    env: { ...process.env, WEIR_PORT: String(port), WEIR_DATA_DIR: dir, WEIR_LOG_LEVEL: "error" }, stdout: "ignore", stderr: "inherit",
  });
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/ready`)).status === 200) return p;
    } catch { /* not up yet */ }
    await Bun.sleep(50);
  }
  throw new Error("weir did not start");
}

async function procStat(pid: number): Promise<{ rssBytes: number; cpuSeconds: number }> {
  const status = await Bun.file(`/proc/${pid}/status`).text();
  const stat = (await Bun.file(`/proc/${pid}/stat`).text()).split(") ")[1].split(" ");
  return { rssBytes: Number(/VmRSS:\s+(\d+)/.exec(status)![1]) * 1024, cpuSeconds: (Number(stat[11]) + Number(stat[12])) / 100 };
}

async function load(port: number, events: number): Promise<{ accepted: number; seconds: number }> {
  const p = Bun.spawn(["bun", join(root, "bench/fixtures/http-load.ts"), `http://127.0.0.1:${port}/api/v1/events`, String(events), "1000", "8", "30", "1000", "now"], { stdout: "pipe" });
  const out = await new Response(p.stdout).text();
  await p.exited;
  return JSON.parse(out.trim().split("\n").pop()!);
}

/** RSS a connected, subscribed, idle client costs a fresh server (no load). */
async function rssPerClient(n: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "weir-bench-rss-"));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const server = await startServer(dir, port);
  try {
    await Bun.sleep(1000);
    const before = await procStat(server.pid);
    const clients = Bun.spawn(["bun", join(root, "bench/fixtures/ws-clients.ts"), `ws://127.0.0.1:${port}/ws/live`, String(n), "0", "4", "2000"], { stdout: "ignore" });
    await Bun.sleep(3000);
    const after = await procStat(server.pid);
    await clients.exited;
    return (after.rssBytes - before.rssBytes) / n;
  } finally {
    server.kill("SIGTERM");
    await server.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchLiveLoad(opts: { healthy?: number; stalled?: number; events?: number; batch?: boolean; seriesPerClient?: number | "all" } = {}) {
  const mode = opts.batch === false ? "single" : "batch";
  const perClient = String(opts.seriesPerClient ?? 10);
  const healthy = opts.healthy ?? 900;
  const stalled = opts.stalled ?? 100;
  const events = opts.events ?? 100_000_000; // each run is bounded by its 30 s, so it spans three 10 s window closes
  const dir = mkdtempSync(join(tmpdir(), "weir-bench-liveload-"));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const server = await startServer(dir, port);
  try {
    // Memory per client on the idle server, before any load leaves garbage behind.
    const idle = await procStat(server.pid);
    const without = await load(port, events);
    const beforeClients = await procStat(server.pid);
    const seconds = Math.ceil(without.seconds) + 20;
    const clients = Bun.spawn(["bun", join(root, "bench/fixtures/ws-clients.ts"), `ws://127.0.0.1:${port}/ws/live`, String(healthy), String(stalled), String(seconds), "2000", mode, perClient], { stdout: "pipe" });
    await Bun.sleep(3000); // connect and subscribe
    const connected = await procStat(server.pid);
    const clientsBefore = await procStat(clients.pid);
    const withClients = await load(port, events);
    const after = await procStat(server.pid);
    const clientsCpuSeconds = (await procStat(clients.pid)).cpuSeconds - clientsBefore.cpuSeconds;
    const report = JSON.parse((await new Response(clients.stdout).text()).trim().split("\n").pop()!);
    await clients.exited;
    // The baseline again, after the clients are gone: a server that has run longer (a bigger store,
    // a warmer or fuller heap) may be slower or faster by itself; the ratio is taken against both runs' mean.
    const withoutAgain = await load(port, events);
    const cpuWithout = beforeClients.cpuSeconds - idle.cpuSeconds;
    const cpuWith = after.cpuSeconds - connected.cpuSeconds;
    const idleRss = await rssPerClient(healthy + stalled);
    const eventsPerSec = withClients.accepted / withClients.seconds;
    const baselineBefore = without.accepted / without.seconds;
    const baselineAfter = withoutAgain.accepted / withoutAgain.seconds;
    const baselineEventsPerSec = (baselineBefore + baselineAfter) / 2;
    return {
      name: `live path: HTTP ingest with ${healthy} healthy clients (${perClient === "all" ? "every series" : `${perClient} series`} each, ${mode === "batch" ? "one frame per flush" : "one frame per message"}) + ${stalled} stalled`,
      eventsPerSec, baselineEventsPerSec, ratio: eventsPerSec / baselineEventsPerSec, baselineBefore, baselineAfter,
      clientsProcessCpuSeconds: clientsCpuSeconds,
      deliveryP50Ms: report.p50Ms, deliveryP99Ms: report.p99Ms, deliveryMaxMs: report.maxMs, windowsReceived: report.received,
      clientsOpened: report.opened, stalledConnected: report.stalledConnected, closed1013: report.closed1013,
      rssPerClientBytes: idleRss,
      serverCpuSecondsWithout: cpuWithout, serverCpuSecondsWith: cpuWith,
      notes: `${events} events each run (${without.seconds.toFixed(1)} s without clients, ${withClients.seconds.toFixed(1)} s with, ${withoutAgain.seconds.toFixed(1)} s without again); baseline = the mean of the same load with no live clients before and after; the clients' own process shares the 2 cores and used ${clientsCpuSeconds.toFixed(1)} s of CPU during the run with them`,
    };
  } finally {
    server.kill("SIGTERM");
    await server.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  console.log(await benchLiveLoad({ seriesPerClient: 10 }));
  console.log(await benchLiveLoad({ seriesPerClient: "all" }));
}
