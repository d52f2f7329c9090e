/**
 * `weir load`: generated events sent to a running weir over HTTP by
 * `connections` concurrent senders, at a target rate or as fast as weir
 * takes them, for a duration or an event count; what weir answered, how
 * long each acknowledgement took, how long after its end each closed window
 * reached a live subscriber (/ws/live), and weir's own figures from
 * /metrics before and after, so the report can be checked against them.
 *
 * - Events: `load.events{s="<k>"}` for k < series, value = i mod 1000,
 *   ts = the send time, id = `<run>-<i>`: a body re-sent after a 429/503
 *   (Retry-After honoured) or a lost answer is counted once by weir.
 * - Bounded: the run stops at its duration or count, each body is tried at
 *   most attemptsMax times, latencies are a reservoir of samplesMax.
 *
 * @example
 *   const report = await runLoad(parseLoadOptions(argv, process.env, false), (p) => console.error(p.line));
 */
import { WeirError } from "../runtime/errors.ts";
import type { LoadOptions } from "./load-options.ts";
import { type FrameAck, WsChannel } from "./ws-channel.ts";

/** weir did not answer where the load was pointed (exit status 1). */
export class UnreachableError extends WeirError {
  override name = "UnreachableError";
  constructor(message: string) {
    super("unreachable", message);
  }
}

const attemptsMax = 20;
const samplesMax = 100_000;
const retryDelayMsMin = 100;
const progressEveryMs = 1_000;
const liveOpenMs = 5_000;
const lastWindowWaitMs = 30_000; // after the last answer: for the window holding the last event to reach the subscriber

export interface LoadReport {
  url: string; transport: string; seconds: number; connections: number; batch: number; series: number; targetRatePerSec: number;
  sent: number; accepted: number; rejected: number; retried: number; failed: number; eventsPerSec: number;
  /** Answers by HTTP status ("none": no answer, the connection failed); over ws by ack kind (ack, refused, overloaded). */
  statuses: Record<string, number>;
  ackLatencyMs: Percentiles & { samples: number };
  windowDeliveryMs: Percentiles & { window: string | null; windows: number };
  server: { ingested: number; rssBytes: number | null; cpuSeconds: number | null; workerRestarts: number; matches: boolean };
}
interface Percentiles { p50: number | null; p95: number | null; p99: number | null }

export interface LoadProgress { line: string; fraction: number }

/** Runs the load; `progress` is called about once a second. */
export async function runLoad(o: LoadOptions, progress: (p: LoadProgress) => void): Promise<LoadReport> {
  const auth: Record<string, string> = o.token === undefined ? {} : { authorization: `Bearer ${o.token}` };
  const before = await scrape(o.url, auth);
  const live = await openLive(o);
  const run = Math.random().toString(36).slice(2, 10);
  const counts: LoadCounts = { sent: 0, accepted: 0, rejected: 0, retried: 0, failed: 0, statuses: {} };
  const ack = new Reservoir(samplesMax);
  const total = o.events ?? Infinity;
  const startMs = performance.now();
  const deadline = startMs + o.seconds * 1000;
  let next = 0;
  const timer = setInterval(() => progress(progressOf(o, counts, startMs, total)), progressEveryMs);
  const sender = async () => {
    const ws = o.transport === "ws" ? await WsChannel.open(o.url, o.token).catch((e: Error) => Promise.reject(new UnreachableError(e.message))) : null;
    try {
      await sendAll(ws);
    } finally {
      ws?.close();
    }
  };
  const sendAll = async (ws: WsChannel | null) => {
    for (;;) {
      const from = next;
      if (from >= total || performance.now() >= deadline) return;
      const n = Math.min(o.batch, total - from);
      next += n;
      if (o.ratePerSec > 0) {
        const due = startMs + (from / o.ratePerSec) * 1000;
        if (due >= deadline) return;
        if (due > performance.now()) await Bun.sleep(due - performance.now());
      }
      counts.sent += n;
      const body = bodyOf(run, from, n, o.series);
      await (ws === null ? send(o, auth, body, n, counts, ack) : sendFrame(ws, body, n, counts, ack));
    }
  };
  let seconds: number;
  try {
    await Promise.all(Array.from({ length: o.connections }, sender));
    seconds = (performance.now() - startMs) / 1000;
    progress(progressOf(o, counts, startMs, total));
    await live.lastWindow(Date.now(), lastWindowWaitMs);
  } finally {
    clearInterval(timer);
    live.close();
  }
  const after = await scrape(o.url, auth);
  const ingested = (after.get("weir_events_ingested_total") ?? 0) - (before.get("weir_events_ingested_total") ?? 0);
  return {
    url: o.url, transport: o.transport, seconds: +seconds.toFixed(3), connections: o.connections, batch: o.batch, series: o.series,
    targetRatePerSec: o.ratePerSec, ...counts, eventsPerSec: Math.round(counts.accepted / seconds),
    ackLatencyMs: { ...ack.percentiles(), samples: ack.seen },
    windowDeliveryMs: { ...live.delays.percentiles(), window: live.window, windows: live.delays.seen },
    server: {
      ingested, rssBytes: after.get("process_resident_memory_bytes") ?? null,
      cpuSeconds: after.has("process_cpu_seconds_total") ? +((after.get("process_cpu_seconds_total")! - (before.get("process_cpu_seconds_total") ?? 0)).toFixed(3)) : null,
      workerRestarts: (after.get("weir_actor_restarts_total") ?? 0) - (before.get("weir_actor_restarts_total") ?? 0),
      matches: ingested === counts.accepted,
    },
  };
}

/** One body, sent until weir takes it (202), refuses its events (400) or the attempts run out. */
async function send(o: LoadOptions, auth: Record<string, string>, body: string, n: number, counts: LoadCounts, ack: Reservoir): Promise<void> {
  for (let attempt = 1; attempt <= attemptsMax; attempt++) {
    const t0 = performance.now();
    let wait = retryDelayMsMin * 2 ** Math.min(attempt - 1, 6);
    try {
      const res = await fetch(`${o.url}/api/v1/events`, { method: "POST", body, headers: { "content-type": "application/json", ...auth } });
      const text = await res.text();
      counts.statuses[res.status] = (counts.statuses[res.status] ?? 0) + 1;
      if (res.status === 202 || res.status === 400) {
        ack.add(performance.now() - t0);
        const r = JSON.parse(text) as { accepted?: number; rejected?: number };
        counts.accepted += r.accepted ?? 0;
        counts.rejected += r.rejected ?? n;
        return;
      }
      if (res.status !== 429 && res.status !== 503) break; // 401, 403, 413, …: re-sending changes nothing
      wait = Math.max(wait, Number(res.headers.get("retry-after") ?? 1) * 1000);
    } catch {
      // no answer (refused, reset): the body may have landed; its ids make the retry harmless
      counts.statuses.none = (counts.statuses.none ?? 0) + 1;
    }
    counts.retried++;
    await Bun.sleep(wait);
  }
  counts.failed += n;
}

/** One body as a /ws/ingest frame, sent again after an ack that says overloaded (its retryAfter honoured). */
async function sendFrame(ws: WsChannel, body: string, n: number, counts: LoadCounts, ack: Reservoir): Promise<void> {
  for (let attempt = 1; attempt <= attemptsMax; attempt++) {
    const t0 = performance.now();
    let a: FrameAck;
    try {
      a = await ws.send(body);
    } catch {
      counts.statuses.none = (counts.statuses.none ?? 0) + 1;
      break; // the socket closed: what it had not acked is counted failed (the ids make a later re-send harmless)
    }
    const kind = a.retryAfter !== undefined ? "overloaded" : a.error !== undefined ? "refused" : "ack";
    counts.statuses[kind] = (counts.statuses[kind] ?? 0) + 1;
    if (a.retryAfter === undefined) {
      ack.add(performance.now() - t0);
      counts.accepted += a.accepted;
      counts.rejected += a.rejected;
      return;
    }
    counts.retried++;
    await Bun.sleep(a.retryAfter * 1000);
  }
  counts.failed += n;
}

type LoadCounts = { sent: number; accepted: number; rejected: number; retried: number; failed: number; statuses: Record<string, number> };

function bodyOf(run: string, from: number, n: number, series: number): string {
  const ts = Date.now();
  let s = "[";
  for (let i = from; i < from + n; i++) {
    if (i > from) s += ",";
    s += `{"name":"load.events","tags":{"s":"${i % series}"},"value":${i % 1000},"ts":${ts},"id":"${run}-${i}"}`;
  }
  return s + "]";
}

function progressOf(o: LoadOptions, c: LoadCounts, startMs: number, total: number): LoadProgress {
  const elapsed = (performance.now() - startMs) / 1000;
  const fraction = Math.min(1, Math.max(elapsed / o.seconds, Number.isFinite(total) ? c.sent / total : 0));
  const line = `${elapsed.toFixed(1)} s: sent ${c.sent}, accepted ${c.accepted}, rejected ${c.rejected}, retried ${c.retried}, failed ${c.failed}, ${Math.round(c.accepted / Math.max(elapsed, 0.001))} events/s`;
  return { line, fraction };
}

/** A uniform sample of at most `size` values (Vitter's algorithm R), for percentiles of an unbounded stream. */
class Reservoir {
  private readonly values: Float64Array;
  seen = 0;
  constructor(private readonly size: number) {
    this.values = new Float64Array(size);
  }
  add(v: number): void {
    const i = this.seen++;
    if (i < this.size) this.values[i] = v;
    else {
      const j = Math.floor(Math.random() * (i + 1));
      if (j < this.size) this.values[j] = v;
    }
  }
  percentiles(): Percentiles {
    const n = Math.min(this.seen, this.size);
    if (n === 0) return { p50: null, p95: null, p99: null };
    const sorted = this.values.slice(0, n).sort();
    const at = (q: number) => +sorted[Math.min(n - 1, Math.ceil(q * n) - 1)].toFixed(2);
    return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
  }
}

/** weir's /metrics as name → value (labelled series summed). */
async function scrape(url: string, auth: Record<string, string>): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`, { headers: auth }).catch((e: Error) => {
    throw new UnreachableError(`no weir answers at ${url} (${e.message.split(".")[0]}); start one (weir start) or pass --url`);
  });
  if (!res.ok) throw new UnreachableError(`GET ${url}/metrics answered ${res.status}${res.status === 401 || res.status === 403 ? ": pass a token with --token" : ""}`);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const name = line.slice(0, line.search(/[ {]/));
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (Number.isFinite(value)) out.set(name, (out.get(name) ?? 0) + value);
  }
  return out;
}

interface Live {
  delays: Reservoir;
  window: string | null;
  /** Resolves once a window ending after `tsMs` has come, or after `waitMs`. */
  lastWindow(tsMs: number, waitMs: number): Promise<void>;
  close(): void;
}

/** A /ws/live subscriber to the load's windows: each window's delivery after its end. */
async function openLive(o: LoadOptions): Promise<Live> {
  const delays = new Reservoir(samplesMax);
  const startMs = Date.now();
  const url = `${o.url.replace(/^http/, "ws")}/ws/live${o.token === undefined ? "" : `?token=${encodeURIComponent(o.token)}`}`;
  const ws = new WebSocket(url);
  let newestEnd = 0;
  let onWindow = () => {};
  const state: Live = {
    delays, window: o.window, close: () => ws.close(),
    lastWindow: (tsMs, waitMs) => new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, waitMs);
      onWindow = () => {
        if (newestEnd <= tsMs) return;
        clearTimeout(timer);
        resolve();
      };
      onWindow();
    }),
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new UnreachableError(`${url}: no hello within ${liveOpenMs} ms`)), liveOpenMs);
    ws.onerror = () => reject(new UnreachableError(`${url}: the live socket failed`));
    ws.onmessage = (e) => {
      const m = JSON.parse(String(e.data)) as { type: string; windows?: string[]; series?: string; end?: number };
      if (m.type === "hello") {
        clearTimeout(timer);
        state.window ??= m.windows?.[0] ?? null;
        ws.send(JSON.stringify({ op: "subscribe", topics: [`windows:${state.window}:load.events*`] }));
        resolve();
      } else if (m.type === "window" && m.end !== undefined && m.end >= startMs) {
        delays.add(Date.now() - m.end); // windows of earlier runs, retained by the server, are not this run's
        newestEnd = Math.max(newestEnd, m.end);
        onWindow();
      } else if (m.type === "error") {
        reject(new UnreachableError(`/ws/live refused the subscription: ${JSON.stringify(m)}`));
      }
    };
  });
  return state;
}
