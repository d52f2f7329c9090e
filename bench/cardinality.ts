/**
 * Cardinality (issue 19 item 3): weir as a child process (127.0.0.1, port
 * 0, 2 partitions or --partitions) with WEIR_MAX_SERIES (default here 100,000) and
 * WEIR_NEW_SERIES_RATE (here 2,000/s, bursts of 10 s of it: below the
 * default 5,000/s, so registering shows the limit), driven to the limit and
 * past it over HTTP.
 *
 * 1. Registration: new series in 5,000-event requests as fast as weir takes
 *    them; events refused with `series_rate` are sent again (as the error
 *    says), so the rate limit shows as refusals and time, not loss.
 * 2. At 0 / 10k / 50k / 100k series: one event for every series (each has
 *    an open window), then RSS (`process_resident_memory_bytes`) once the
 *    rings are empty; per-series cost = ΔRSS / Δseries.
 * 3. Once the last round's windows are closed and stored, a control for
 *    `--seconds`: each second one event of each of 100 tracked (existing)
 *    series; then past the limit, as long: each second the same plus 5,000
 *    events of brand-new series, which must be refused per event
 *    (`series_limit`, naming WEIR_MAX_SERIES), the tracked ones taken. RSS
 *    sampled each second in both.
 * 4. The tracked series' 10 s windows of phase 3 against a recount of the
 *    events acknowledged for them.
 *
 * Throughout, the supervisor's log lines are tallied (sampled from the
 * child's log tail every second): workers found hung (a missed heartbeat),
 * restarted, failed for good; and the run ends early, saying so, if a
 * partition is failed (its series would be refused from then on).
 *
 *   bun bench/cardinality.ts                       # 100,000 series, 60 s past the limit
 *   bun bench/cardinality.ts --series=20000 --seconds=20 --partitions=4 --rate=5000
 */
import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { WeirProcess } from "../test/ledger/process.ts";
import { recountWindow } from "../test/helpers/recount.ts";
import { waitFor } from "../test/helpers/wait.ts";

function option(name: string, fallback: string): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return Number(a === undefined ? fallback : a.slice(name.length + 3));
}

const seriesMax = option("series", "100000");
const seconds = option("seconds", "60");
const newSeriesRate = option("rate", "2000");
const partitions = option("partitions", "2");
assert(seriesMax >= 10_000 && seriesMax <= 1_000_000 && Number.isInteger(seriesMax), "--series within [10,000, 1,000,000]");
assert(seconds >= 10 && seconds <= 600, "--seconds within [10, 600]");
const requestEvents = 5_000;
const tracked = 100;
const milestones = [0, 10_000, 50_000, seriesMax].filter((m, i, a) => m <= seriesMax && a.indexOf(m) === i);
const mib = (b: number) => b / 2 ** 20;

interface Metrics { rss: number; series: number; queued: number; rejected: Record<string, number>; ingested: number; restarts: number; windows: number; late: number }

async function metrics(url: string): Promise<Metrics> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const one = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
  const rejected: Record<string, number> = {};
  for (const m of text.matchAll(/^weir_events_rejected_total\{reason="([^"]+)"\} (\S+)$/gm)) rejected[m[1]] = Number(m[2]);
  let queued = 0;
  for (const m of text.matchAll(/^weir_queue_depth\{[^}]*\} (\S+)$/gm)) queued += Number(m[1]);
  let restarts = 0;
  for (const m of text.matchAll(/^weir_actor_restarts_total\{[^}]*\} (\S+)$/gm)) restarts += Number(m[1]);
  return {
    rss: one("process_resident_memory_bytes"), series: one("weir_series"), queued, rejected, ingested: one("weir_events_ingested_total"), restarts,
    windows: one("weir_windows_emitted_total"), late: one("weir_events_late_total"),
  };
}

interface Answer { status: number; accepted: number; rejected: number; errors: Array<{ index: number; error: string }>; error?: string; retryAfterS: number }

async function post(url: string, events: object[]): Promise<Answer> {
  const res = await fetch(`${url}/api/v1/events`, { method: "POST", body: JSON.stringify(events), headers: { "content-type": "application/json" } });
  const body = await res.json() as Partial<Answer>;
  return {
    status: res.status, accepted: body.accepted ?? 0, rejected: body.rejected ?? (res.status === 202 ? 0 : events.length), errors: body.errors ?? [],
    error: body.error, retryAfterS: Number(res.headers.get("retry-after") ?? 1),
  };
}

/** Posts until the answer is not 429/503, waiting Retry-After between (as a producer does); resolves the answer and the refusals seen. */
async function postRetrying(url: string, events: object[], overloads: string[]): Promise<Answer> {
  for (let attempt = 0; ; attempt++) {
    const a = await post(url, events);
    if ((a.status !== 429 && a.status !== 503) || attempt >= 10) return a;
    overloads.push(a.error ?? String(a.status));
    await Bun.sleep(Math.min(5, a.retryAfterS) * 1000);
  }
}

const event = (s: number, ts: number, value = 1) => ({ name: "card.load", tags: { s: `s${s}` }, value, ts });

/** Registers series [from, to): refused ones (series_rate) go again after a pause; resolves the refusals seen. */
async function register(url: string, from: number, to: number, overloads: string[]): Promise<{ rateRefusals: number; ms: number }> {
  const t0 = performance.now();
  let pending = Array.from({ length: to - from }, (_, i) => from + i);
  let rateRefusals = 0;
  while (pending.length > 0) {
    const take = pending.slice(0, requestEvents);
    const a = await postRetrying(url, take.map((s) => event(s, Date.now())), overloads);
    assert(a.status === 202 || a.status === 400, `registration answered ${a.status}`);
    rateRefusals += a.rejected;
    if (a.rejected === 0) {
      pending = pending.slice(take.length);
      continue;
    }
    // Only the first 100 errors are listed: what is not known taken goes again (a series taken already is just an event).
    const refused = new Set(a.errors.map((e) => e.index));
    if (a.rejected > a.errors.length) for (let i = 0; i < take.length; i++) refused.add(i);
    pending = [...take.filter((_, i) => refused.has(i)), ...pending.slice(take.length)];
    await Bun.sleep(250); // the producer backs off, as `send it again later` asks
  }
  return { rateRefusals, ms: performance.now() - t0 };
}

/** One event for each of series [0, n), then waits for the rings to drain; resolves RSS. */
async function touchAll(w: WeirProcess, n: number, overloads: string[]): Promise<number> {
  for (let from = 0; from < n; from += requestEvents) {
    const a = await postRetrying(w.url, Array.from({ length: Math.min(requestEvents, n - from) }, (_, i) => event(from + i, Date.now())), overloads);
    assert(a.status === 202 && a.rejected === 0, `a round over known series answered ${a.status} with ${a.rejected} refused`);
  }
  await waitFor(async () => (await metrics(w.url)).queued === 0, 180_000, "rings drained");
  await Bun.sleep(5_000); // checkpoints and the store's commits after the round, as in steady state
  return (await metrics(w.url)).rss;
}

const dataDir = mkdtempSync(join(tmpdir(), "issue19-cardinality-"));
const load0 = loadavg()[0];
const w = await WeirProcess.start({ dataDir, env: { WEIR_LAKE: "0", WEIR_MAX_SERIES: String(seriesMax), WEIR_NEW_SERIES_RATE: String(newSeriesRate), WEIR_PARTITIONS: String(partitions) } });
/** The supervisor's log lines seen (each line once: they carry their time), by kind. */
const seenLines = new Set<string>();
const supervision = { hung: 0, restarting: 0, failed: 0 };
const tallyLog = () => {
  for (const line of w.logTail(300).split("\n")) {
    if (seenLines.has(line)) continue;
    seenLines.add(line);
    if (line.includes('"child hung')) supervision.hung++;
    else if (line.includes('"child restarting"')) supervision.restarting++;
    else if (line.includes('"child failed')) supervision.failed++;
  }
};
const tally = setInterval(tallyLog, 1_000);
const supervisionText = () => `workers hung (missed heartbeat) ${supervision.hung}, restarting ${supervision.restarting}, failed ${supervision.failed}`;
try {
  const rssAt: Array<{ series: number; rss: number; registerMs: number; rateRefusals: number }> = [];
  let registered = 0;
  const overloads: string[] = []; // 429/503 answers, each waited out and sent again
  for (const m of milestones) {
    const r = await register(w.url, registered, m, overloads);
    registered = m;
    const got = await metrics(w.url);
    assert(got.series === m, `weir_series ${got.series}, expected ${m}`);
    rssAt.push({ series: m, rss: await touchAll(w, m, overloads), registerMs: r.ms, rateRefusals: r.rateRefusals });
    tallyLog();
    console.log(`  ${m} series: RSS ${mib(rssAt.at(-1)!.rss).toFixed(0)} MiB; registered in ${(r.ms / 1000).toFixed(1)} s with ${r.rateRefusals} series_rate refusals; worker restarts ${(await metrics(w.url)).restarts}; ${supervisionText()}`);
  }

  // The last round's windows close (the quiet rule) and are stored first: the next phases' RSS is theirs alone.
  let lastWindows = -1;
  let stillSince = performance.now();
  await waitFor(async () => {
    const n = (await metrics(w.url)).windows;
    if (n !== lastWindows) [lastWindows, stillSince] = [n, performance.now()];
    return performance.now() - stillSince > 10_000;
  }, 300_000, "the last round's windows closed");
  const settled = await metrics(w.url);
  const overloadsBefore = overloads.length;
  const sent: Array<Array<{ ts: number; value: number }>> = Array.from({ length: tracked }, () => []);
  let fresh = seriesMax;
  let refusedAnswered = 0;
  let limitNamed = 0;
  const phaseFrom = Math.ceil(Date.now() / 10_000) * 10_000 + 10_000; // whole 10 s windows inside the phases
  /** One request a second for `seconds`: the tracked series' events, with `newPerRequest` events of new series; resolves RSS each second. */
  const phase = async (newPerRequest: number): Promise<number[]> => {
    const rss: number[] = [];
    const t0 = Date.now();
    for (let k = 0; k < seconds; k++) {
      const due = t0 + k * 1000;
      if (due > Date.now()) await Bun.sleep(due - Date.now()); // one request a second
      const ts = Date.now();
      const newOnes = Array.from({ length: newPerRequest }, () => event(fresh++, ts));
      const known = Array.from({ length: tracked }, (_, s) => event(s, ts, k % 100));
      const a = await postRetrying(w.url, [...newOnes, ...known], overloads);
      assert(a.status === 202, `a request answered ${a.status}: ${a.error}`);
      refusedAnswered += a.rejected;
      limitNamed += a.errors.filter((e) => e.error.includes("WEIR_MAX_SERIES")).length;
      if (a.accepted === tracked) for (let s = 0; s < tracked; s++) sent[s].push({ ts, value: k % 100 });
      rss.push((await metrics(w.url)).rss);
    }
    return rss;
  };
  // A control first (known series only), then the same with new series past the limit: the difference is the refusals'.
  const controlRss = await phase(0);
  const before = await metrics(w.url);
  const rss = await phase(requestEvents);
  const after = await metrics(w.url);
  const phaseTo = Math.floor(Date.now() / 10_000) * 10_000 - 10_000;

  // The tracked series' windows of the phase, against the recount (closed by the quiet rule once traffic stops).
  let equal = 0;
  let differing = 0;
  let missing = 0;
  const windowsDeadline = performance.now() + 120_000; // one bound for all of them: the quiet rule closes their last window
  for (let s = 0; s < tracked; s++) {
    const key = `card.load{s="s${s}"}`;
    const want = [];
    for (let start = phaseFrom; start < phaseTo; start += 10_000) want.push(recountWindow(sent[s], start, start + 10_000));
    let got: Array<Record<string, number>> = [];
    // A window that never comes counts as differing (the loop goes on to the others).
    await waitFor(async () => {
      const res = await fetch(`${w.url}/api/v1/windows?series=${encodeURIComponent(key)}&window=10s&from=${phaseFrom}&to=${phaseTo - 1}`);
      got = (await res.json()).windows;
      return got.length >= want.length;
    }, Math.max(1, windowsDeadline - performance.now()), `windows of ${key}`).catch(() => {});
    for (let i = 0; i < want.length; i++) {
      const x = want[i]!;
      const g = got.find((r) => r.start === x.start);
      if (g === undefined) missing++;
      else if (g.count === x.count && g.sum === x.sum && g.min === x.min && g.max === x.max) equal++;
      else differing++;
    }
  }
  const load1 = loadavg()[0];
  tallyLog();

  const rows = rssAt.map((r, i) => {
    const prev = rssAt[i - 1];
    const per = prev === undefined ? "—" : `${Math.round((r.rss - prev.rss) / (r.series - prev.series)).toLocaleString("en")}`;
    const fromZero = i === 0 ? "—" : `${Math.round((r.rss - rssAt[0].rss) / r.series).toLocaleString("en")}`;
    return `| ${r.series.toLocaleString("en")} | ${mib(r.rss).toFixed(0)} | ${per} | ${fromZero} | ${(r.registerMs / 1000).toFixed(1)} s, ${r.rateRefusals.toLocaleString("en")} |`;
  });
  const refusedByReason = Object.fromEntries(Object.entries(after.rejected).map(([k, v]) => [k, v - (before.rejected[k] ?? 0)]));
  console.log([
    "",
    `WEIR_MAX_SERIES=${seriesMax}, WEIR_NEW_SERIES_RATE=${newSeriesRate}; ${partitions} partitions, windows 10s,60s/10s; every series one event per round`,
    "",
    "| series | RSS MiB | bytes per series since the row before | bytes per series since 0 | registered in, series_rate refusals on the way |",
    "|---|---|---|---|---|",
    ...rows,
    "",
    `past the limit, ${seconds} s: ${seconds} requests of ${requestEvents} new-series events + ${tracked} events of known series`,
    `  new-series events refused: ${refusedAnswered.toLocaleString("en")} of ${(seconds * requestEvents).toLocaleString("en")} (answers' "rejected"); /metrics series_limit +${refusedByReason.series_limit ?? 0}, other reasons ${JSON.stringify(Object.fromEntries(Object.entries(refusedByReason).filter(([k]) => k !== "series_limit")))}`,
    `  listed errors naming WEIR_MAX_SERIES: ${limitNamed} (${seconds} answers list at most 100 errors each)`,
    `  known series' events taken: ${after.ingested - before.ingested} (sent ${seconds * tracked}); weir_series ${after.series}`,
    `  429/503 answers (waited out, sent again): ${overloads.length - overloadsBefore} in this phase, ${overloadsBefore} before it${overloads.length > 0 ? ` (${[...new Set(overloads)].slice(0, 3).join("; ")})` : ""}; worker restarts ${after.restarts}`,
    `  RSS once the last round's windows were stored ${mib(settled.rss).toFixed(0)} MiB; control (${seconds} s, known series only): first ${mib(controlRss[0]).toFixed(0)} MiB, max ${mib(Math.max(...controlRss)).toFixed(0)} MiB, last ${mib(controlRss.at(-1)!).toFixed(0)} MiB`,
    `  RSS during the refusals: first ${mib(rss[0]).toFixed(0)} MiB, max ${mib(Math.max(...rss)).toFixed(0)} MiB, last ${mib(rss.at(-1)!).toFixed(0)} MiB`,
    `  tracked series' 10 s windows inside the phase: ${equal} equal to the recount, ${differing} differing, ${missing} not there; late events in the run ${(await metrics(w.url)).late}`,
    `  supervision over the run: ${supervisionText()}`,
    `load average (1 min) at start ${load0.toFixed(2)}, at end ${load1.toFixed(2)}; ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, Bun ${Bun.version}`,
  ].join("\n"));
} catch (e) {
  tallyLog();
  console.error(w.logTail(40));
  console.error(`supervision until the failure: ${supervisionText()}`);
  throw e;
} finally {
  clearInterval(tally);
  await w.close();
  rmSync(dataDir, { recursive: true, force: true });
}
