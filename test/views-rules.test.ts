/**
 * Alert rules on views' results against a real weir (2 partitions, worker
 * threads, SQLite): a view window is judged once every partition has
 * completed it (src/engine/view-rules.ts), in order of end, so the rule's
 * transitions are exactly those its state machine (instance.ts) makes over
 * the view's windows, worked out here by hand; a part that comes after its
 * window was judged is merged and counted late, never judged again; a
 * restart on the same data directory repeats none and goes on; a kill -9
 * right after the judged transitions are written loses none and repeats
 * none.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, parseMetrics, weirDir } from "../bench/fixtures/weir-process.ts";
import { partitionOf, seriesKey } from "../src/runtime/series.ts";
import { waitFor } from "./helpers/wait.ts";
import { postEvents, startTestWeir, type TestWeir } from "./helpers/weir.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const minute = 60_000;
const config = {
  views: [{ name: "per_page", from: "shop.*", group_by: ["page"], window: "1m", aggregates: ["count", "sum"] }],
  rules: [{ name: "busy_page", expr: "count(view.per_page) > 20", for: "1m" }],
};

function configDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "weir-view-rules-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "weir.json"), JSON.stringify(config));
  return dir;
}

interface Ev { name: string; tags: Record<string, string>; value: number; ts: number }

/**
 * `counts[k]` events of page `page` in minute k after t0, spread over users
 * u0..u5 (so over both partitions) and names, one every 60 s / count.
 */
function minuteEvents(t0: number, page: string, counts: number[]): Ev[] {
  const out: Ev[] = [];
  counts.forEach((n, k) => {
    for (let i = 0; i < n; i++) {
      out.push({ name: i % 2 === 0 ? "shop.view" : "shop.click", tags: { page, user: `u${Math.floor(i / 2) % 6}` }, value: 1, ts: t0 + k * minute + Math.floor((i * minute) / n) });
    }
  });
  return out;
}

async function post(url: string, events: Ev[]): Promise<void> {
  const sorted = [...events].sort((a, b) => a.ts - b.ts); // in order: each producer sends its events as they happened
  const r = await postEvents(url, JSON.stringify(sorted));
  expect(r.status).toBe(202);
  expect(r.body.accepted).toBe(events.length);
}

interface Alert { rule: string; series: string; state: string; ts: number; value: unknown }
async function transitions(url: string): Promise<Array<Pick<Alert, "series" | "state" | "ts" | "value">>> {
  const body = (await (await fetch(`${url}/api/v1/alerts?rule=busy_page&limit=1000`)).json()) as { alerts: Alert[] };
  return body.alerts
    .filter((a) => a.rule === "busy_page")
    .map(({ series, state, ts, value }) => ({ series, state, ts, value }))
    .sort((a, b) => a.ts - b.ts || a.series.localeCompare(b.series) || a.state.localeCompare(b.state));
}

const key = (page: string) => seriesKey("view.per_page", { page });
const sortT = <T extends { ts: number; series: string; state: string }>(xs: T[]) =>
  [...xs].sort((a, b) => a.ts - b.ts || a.series.localeCompare(b.series) || a.state.localeCompare(b.state));

/**
 * The transitions of `count(view.per_page) > 20 for 1m` (keep_firing_for 0)
 * over windows ending E(k) = t0 + (k + 1) min, by instance.ts's rules:
 * /cart 30, 25, 5, –, 30 → pending E0 (30), firing E1 (25), resolved E2 (5),
 * pending E4 (30), then no data: inactive at E4 + 1 min (its hold), value null;
 * / 5, 50, 50 → pending E1, firing E2, then no data: resolved at E2 + 1 min.
 */
function expected(t0: number) {
  const E = (k: number) => t0 + (k + 1) * minute;
  return sortT([
    { series: key("/cart"), state: "pending", ts: E(0), value: 30 },
    { series: key("/cart"), state: "firing", ts: E(1), value: 25 },
    { series: key("/cart"), state: "resolved", ts: E(2), value: 5 },
    { series: key("/cart"), state: "pending", ts: E(4), value: 30 },
    { series: key("/cart"), state: "inactive", ts: E(5), value: null },
    { series: key("/"), state: "pending", ts: E(1), value: 50 },
    { series: key("/"), state: "firing", ts: E(2), value: 50 },
    { series: key("/"), state: "resolved", ts: E(3), value: null },
  ]);
}

function scenarioEvents(t0: number): Ev[] {
  return [...minuteEvents(t0, "/cart", [30, 25, 5, 0, 30]), ...minuteEvents(t0, "/", [5, 50, 50])];
}

describe("views - rules on their results", () => {
  test("views - a rule on a view series: transitions exactly as its state machine makes them over the final view windows; a late part is merged and counted, not judged again; a restart goes on and repeats none", async () => {
    const dir = configDir();
    const data = join(dir, "data");
    const env = { WEIR_CONFIG: join(dir, "weir.json"), WEIR_LATENESS: "0", WEIR_CHECKPOINT_INTERVAL: "200ms" };
    let w: TestWeir = await startTestWeir(env, data);
    cleanups.push(() => w.stop());
    const t0 = Math.floor((Date.now() - 12 * minute) / minute) * minute;
    const events = scenarioEvents(t0);
    expect(new Set(events.map((e) => partitionOf(seriesKey(e.name, e.tags), 2))).size).toBe(2); // groups gather both partitions
    await post(w.url, events);
    const want = expected(t0);
    await waitFor(async () => (await transitions(w.url)).length >= want.length, 15_000);
    expect(await transitions(w.url)).toEqual(want);

    // A new series' event in minute 0: taken by its own windows, a part of a view window already judged.
    const before = parseMetrics(await (await fetch(`${w.url}/metrics`)).text());
    await post(w.url, [{ name: "shop.view", tags: { page: "/cart", user: "late-comer" }, value: 1, ts: t0 + 30_000 }]);
    await waitFor(async () => {
      const m = parseMetrics(await (await fetch(`${w.url}/metrics`)).text());
      return m.weir_view_parts_late_total === (before.weir_view_parts_late_total ?? 0) + 1;
    }, 10_000);
    await waitFor(async () => {
      const r = (await (await fetch(`${w.url}/api/v1/windows?series=${encodeURIComponent(key("/cart"))}&window=1m&limit=10`)).json()) as { windows: Array<{ start: number; count: number }> };
      return r.windows.find((x) => x.start === t0)?.count === 31;
    }, 10_000);
    expect(await transitions(w.url)).toEqual(want); // not judged again

    // A restart on the same data: its judging goes on from where it stopped and repeats nothing.
    const judged = w.engine.viewRules!.stats().judgedTo;
    await w.stop();
    w = await startTestWeir(env, data);
    const restored = w.engine.viewRules!.stats().judgedTo; // as the stop left it: it judged what its last commits made final
    expect(restored).toBeGreaterThanOrEqual(judged);
    await waitFor(() => w.engine.viewRules!.stats().judgedTo > restored, 10_000);
    expect(await transitions(w.url)).toEqual(want);
  }, 60_000);

  test("views - a kill -9 right after judged transitions are written: on restart they are there once, and the rest come once", async () => {
    const dir = configDir();
    const data = join(dir, "data");
    const port = freePort();
    const url = `http://127.0.0.1:${port}`;
    const spawn = (crashAt: string) => Bun.spawn(["bun", join(weirDir, "src/main.ts")], {
      cwd: weirDir,
      env: {
        ...process.env, WEIR_PORT: String(port), WEIR_DATA_DIR: data, WEIR_LOG_LEVEL: "error", WEIR_CONFIG: join(dir, "weir.json"),
        WEIR_LATENESS: "0", WEIR_CHECKPOINT_INTERVAL: "200ms", WEIR_PARTITIONS: "2", WEIR_CRASH_AT: crashAt,
      },
      stdout: "ignore", stderr: "ignore",
    });
    const ready = () => waitFor(async () => (await fetch(`${url}/ready`).catch(() => null))?.status === 200, 30_000);
    // The first judging that writes transitions kills the process after its transaction, before anyone hears of them.
    let proc = spawn("view-rules.after-alerts:1");
    cleanups.push(() => { proc.kill("SIGKILL"); });
    await ready();
    const t0 = Math.floor((Date.now() - 12 * minute) / minute) * minute;
    await post(url, scenarioEvents(t0));
    await proc.exited;
    expect(proc.signalCode).toBe("SIGKILL"); // it died at its crash point
    proc = spawn("");
    await ready();
    const want = expected(t0);
    await waitFor(async () => (await transitions(url)).length >= want.length, 20_000);
    expect(await transitions(url)).toEqual(want);
    proc.kill("SIGTERM");
    await proc.exited;
  }, 90_000);
});
