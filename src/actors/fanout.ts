/**
 * The fanout actor: live subscribers and what they asked for. Each result is
 * encoded to JSON once, whatever the number of clients; each client gets it
 * through a per-client throttle that conflates updates of the same series and
 * window to the latest. A client whose pending set or socket buffer passes
 * its bound is closed with 1013 (try again later): one slow client never
 * slows the pipeline or anyone else.
 *
 * @example
 *   const f = new Fanout({ windows: ["10s"], version: "0.1.0" });
 *   const id = f.add(client);                       // sends hello
 *   f.handleOp(id, '{"op":"subscribe","topics":["windows:10s:*"]}');
 *   f.publish("window", "10s", key, msg, closedMs); // queued, sent on flush(now)
 */
import { z } from "zod";
import { limits } from "../runtime/limits.ts";
import { issueText } from "../runtime/issue-text.ts";
import { compileGlob, type GlobMatcher } from "../runtime/series.ts";

export interface LiveClient {
  /** Queues one frame; false when the socket dropped it (Bun: its buffer is at backpressureLimit). */
  send(text: string): boolean | void;
  /** Runs fn with the client's writes batched into as few syscalls as possible (Bun's ws.cork); optional. */
  cork?(fn: () => void): void;
  close(code: number, reason: string): void;
  bufferedAmount(): number;
}

export type TopicKind = "windows" | "updates" | "anomalies" | "trends" | "alerts" | "stats";
/** `exact`: the series key when the pattern has no wildcard; `match`: its regex otherwise (undefined: everything). */
interface Subscription { topic: string; kind: TopicKind; spec: string | undefined; match: GlobMatcher | undefined; exact: string | undefined }
/** Shared by every client a result is queued to: never changed once made. */
interface Pending { readonly json: string; readonly closedMs: number }
interface ClientState {
  id: number;
  client: LiveClient;
  /** The publish() that last queued to this client: one queue per client per result. */
  stamp: number;
  /** Removed (closed, or dropped as too slow); set by remove(). */
  gone: boolean;
  subs: Subscription[];
  throttleMs: number;
  /** Opt-in: one frame per flush holding a JSON array of the messages, instead of one frame each. */
  batch: boolean;
  nextFlushMs: number;
  pending: Map<string, Pending>;
}

export const fanoutDefaults = { throttleMs: 100, throttleMsMax: 60_000 } as const;

const opSchema = z.discriminatedUnion("op", [
  z.strictObject({ op: z.literal("subscribe"), topics: z.array(z.string().min(1).max(512)).min(1).max(limits.wsTopicsPerClientMax) }),
  z.strictObject({ op: z.literal("unsubscribe"), topics: z.array(z.string().min(1).max(512)).min(1).max(limits.wsTopicsPerClientMax) }),
  z.strictObject({ op: z.literal("throttle"), ms: z.number().int().min(0).max(fanoutDefaults.throttleMsMax), batch: z.boolean().optional() }),
]);

export class Fanout {
  private readonly clients = new Map<number, ClientState>();
  /**
   * The latest window result per spec and series, sent to a new subscriber
   * at once so a page shows values without waiting for the next close.
   * Bounded by limits.fanoutRetainedMax (+ fanoutRetainedSlack between
   * evictions); the least recently updated (lowest seq) go first.
   */
  private readonly retained = new Map<string, { spec: string; series: string; json: string; seq: number }>();
  private retainedSeq = 0;
  /**
   * Subscriptions indexed so a result reaches its clients without testing
   * every client: exact series keys by `kind|spec|series`, patterns by
   * `kind|spec`. Bounded by clients × wsTopicsPerClientMax.
   */
  private readonly exactIndex = new Map<string, Set<ClientState>>();
  private readonly patternIndex = new Map<string, Set<[ClientState, Subscription]>>();
  private publishSeq = 0;
  private nextId = 1;
  /** Clients closed with 1013, by reason: `slow` (send buffer over its bound), `full` (past limits.wsClientsMax). */
  readonly closed = { slow: 0, full: 0 };
  /** Running-values subscriptions (updates:<spec>:<glob>) by `spec\u0000glob`, counted over clients. */
  private readonly updatesRefs = new Map<string, number>();
  /** Called when the set of running-values subscriptions changes (the engine tells the partitions, which compute them). */
  onUpdatesInterest: (subs: Array<{ spec: string; glob: string }>) => void = () => {};
  /** Observes delivery latency (ms) of window results, for weir_e2e_latency_seconds. */
  onDelivered: (latencyMs: number) => void = () => {};

  /**
   * `windows`: the configured specs, announced in hello; `rollups`: further
   * labels (1m, 1h) one may subscribe to as well.
   */
  /** Window labels besides the configured specs and rollups that topics may name: the views' windows (set by the engine). */
  extraSpecs: () => readonly string[] = () => [];

  constructor(private readonly opts: { windows: string[]; rollups?: string[]; version: string; now?: () => number }) {}

  get size(): number {
    return this.clients.size;
  }

  /** Registers a client and sends its hello; returns its id, or -1 (and closes it) past wsClientsMax. */
  add(client: LiveClient): number {
    if (this.clients.size >= limits.wsClientsMax) {
      this.closed.full++;
      client.close(1013, "too many live clients");
      return -1;
    }
    const id = this.nextId++;
    this.clients.set(id, { id, client, stamp: 0, gone: false, subs: [], throttleMs: fanoutDefaults.throttleMs, batch: false, nextFlushMs: 0, pending: new Map() });
    client.send(JSON.stringify({ type: "hello", version: this.opts.version, windows: this.opts.windows }));
    return id;
  }

  remove(id: number): void {
    const c = this.clients.get(id);
    if (!c) return;
    this.unindex(c, c.subs);
    this.clients.delete(id);
    c.gone = true; // a publish under way never queues to it again
  }

  /** Subscribes a client to topics (the SSE route's query); returns the error naming the bad topic, or null. */
  subscribe(id: number, topics: string[]): string | null {
    const c = this.clients.get(id);
    if (!c) return "client: gone";
    return this.applyOp(c, JSON.stringify({ op: "subscribe", topics }));
  }

  /** Applies one client frame; answers errors to the client as {"type":"error"}. */
  handleOp(id: number, text: string): void {
    const c = this.clients.get(id);
    if (!c) return;
    const error = this.applyOp(c, text);
    if (error !== null) c.client.send(JSON.stringify({ type: "error", error }));
  }

  /** Queues a result for every client subscribed to it. `conflateKey` identifies "the same series and window". */
  publish(kind: TopicKind, spec: string | undefined, series: string, msg: object, closedMs: number, conflateKey = series): void {
    let json: string | undefined;
    if (kind === "windows" && spec !== undefined) {
      json = JSON.stringify(msg);
      this.retain(spec, series, json);
    }
    const stamp = ++this.publishSeq;
    const at = kind + "|" + (spec ?? "");
    const pendingKey = at + "|" + conflateKey;
    let entry: Pending | undefined; // one per result, shared by every client it is queued to
    const queue = (c: ClientState) => {
      if (c.stamp === stamp || c.gone) return;
      c.stamp = stamp;
      entry ??= { json: (json ??= JSON.stringify(msg)), closedMs };
      // A burst beyond the pending bound is sent at once, throttle or not; only a socket that cannot take it drops the client.
      if (c.pending.size >= limits.wsPendingPerClientMax && !this.flushClient(c, (this.opts.now ?? Date.now)())) return;
      c.pending.set(pendingKey, entry);
    };
    const exact = this.exactIndex.get(at + "|" + series);
    if (exact) for (const c of exact) queue(c);
    const patterns = this.patternIndex.get(at);
    if (patterns) for (const [c, sub] of patterns) if (sub.match === undefined || sub.match.test(series)) queue(c);
  }

  /** Sends what is due; called by a timer every few ms. */
  flush(nowMs: number = (this.opts.now ?? Date.now)()): void {
    this.lastFrame = null;
    for (const c of this.clients.values()) {
      if (c.pending.size > 0 && nowMs >= c.nextFlushMs) this.flushClient(c, nowMs);
    }
    this.lastFrame = null; // frees the strings until the next pass
  }

  /**
   * The last batch frame built in this flush pass and the messages in it.
   * Clients with the same subscriptions and throttle are flushed in the same
   * pass (one `nowMs` keeps them in step) and hold the same messages in the
   * same order, so the next one reuses the frame rather than building its
   * own: a frame of N clients' worth is built once.
   */
  private lastFrame: { jsons: string[]; frame: string } | null = null;
  /** Batch frames built (not reused) since start. */
  batchFramesBuilt = 0;

  private batchFrame(c: ClientState): string {
    const last = this.lastFrame;
    if (last !== null && last.jsons.length === c.pending.size) {
      let i = 0;
      let same = true;
      for (const p of c.pending.values()) {
        if (p.json !== last.jsons[i++]) {
          same = false;
          break;
        }
      }
      if (same) return last.frame; // nothing allocated for a client like the one before
    }
    const jsons = Array.from(c.pending.values(), (p) => p.json);
    const frame = "[" + jsons.join(",") + "]";
    this.batchFramesBuilt++;
    this.lastFrame = { jsons, frame };
    return frame;
  }

  /** Sends a client's pending updates; false (and the client closed with 1013) when its socket buffer is over the bound. */
  private flushClient(c: ClientState, nowMs: number): boolean {
    if (c.client.bufferedAmount() > limits.wsBackpressureBytesMax) {
      return this.dropSlow(c);
    }
    // A socket at its buffer bound drops what it is given (Bun's send answers 0): the client is then
    // closed as too slow, never left to miss messages quietly.
    let dropped = false;
    const sendAll = () => {
      if (c.batch) dropped = c.client.send(this.batchFrame(c)) === false;
      for (const p of c.pending.values()) {
        if (dropped) return;
        if (!c.batch) dropped = c.client.send(p.json) === false;
        if (p.closedMs > 0 && !dropped) this.onDelivered(nowMs - p.closedMs);
      }
    };
    if (c.client.cork) c.client.cork(sendAll);
    else sendAll();
    if (dropped) {
      return this.dropSlow(c);
    }
    c.pending.clear();
    c.nextFlushMs = nowMs + c.throttleMs;
    return true;
  }

  /** Closes a client that cannot keep up with 1013 and counts it; false, for flushClient's answer. */
  private dropSlow(c: ClientState): false {
    this.closed.slow++;
    this.drop(c.id, c, "client too slow: send buffer over limit");
    return false;
  }

  private drop(id: number, c: ClientState, reason: string): void {
    this.remove(id);
    c.client.close(1013, reason);
  }

  /** The running-values subscriptions of every client, each (spec, glob) once. */
  updatesInterest(): Array<{ spec: string; glob: string }> {
    return [...this.updatesRefs.keys()].map((k) => {
      const [spec, glob] = k.split("\u0000");
      return { spec, glob };
    });
  }

  /** Counts a client's running-values subscriptions in or out; tells onUpdatesInterest when the set changed. */
  private countUpdates(subs: Subscription[], by: 1 | -1): void {
    let changed = false;
    for (const sub of subs) {
      if (sub.kind !== "updates") continue;
      const k = `${sub.spec}\u0000${sub.topic.split(":").slice(2).join(":")}`;
      const n = (this.updatesRefs.get(k) ?? 0) + by;
      if (n <= 0) this.updatesRefs.delete(k);
      else this.updatesRefs.set(k, n);
      if (n === 0 || (n === 1 && by === 1)) changed = true;
    }
    if (changed) this.onUpdatesInterest(this.updatesInterest());
  }

  private index(c: ClientState, subs: Subscription[]): void {
    this.countUpdates(subs, 1);
    for (const sub of subs) {
      const at = sub.kind + "|" + (sub.spec ?? "");
      if (sub.exact !== undefined) setIn(this.exactIndex, at + "|" + sub.exact).add(c);
      else setIn(this.patternIndex, at).add([c, sub]);
    }
  }

  private unindex(c: ClientState, subs: Subscription[]): void {
    this.countUpdates(subs, -1);
    for (const sub of subs) {
      const at = sub.kind + "|" + (sub.spec ?? "");
      if (sub.exact !== undefined) deleteIn(this.exactIndex, at + "|" + sub.exact, c);
      else {
        const set = this.patternIndex.get(at);
        if (!set) continue;
        for (const e of set) if (e[0] === c && e[1] === sub) set.delete(e);
        if (set.size === 0) this.patternIndex.delete(at);
      }
    }
  }

  private applyOp(c: ClientState, text: string): string | null {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return "frame: invalid JSON";
    }
    const parsed = opSchema.safeParse(raw);
    if (!parsed.success) {
      return issueText(parsed.error.issues[0], raw, "op");
    }
    const op = parsed.data;
    if (op.op === "throttle") {
      c.throttleMs = op.ms;
      c.batch = op.batch ?? c.batch;
      c.nextFlushMs = 0;
      return null;
    }
    if (op.op === "unsubscribe") {
      const gone = c.subs.filter((s) => op.topics.includes(s.topic));
      this.unindex(c, gone);
      c.subs = c.subs.filter((s) => !op.topics.includes(s.topic));
      return null;
    }
    const added: Subscription[] = [];
    for (const t of op.topics) {
      if (c.subs.some((s) => s.topic === t) || added.some((s) => s.topic === t)) continue;
      const sub = this.parseTopic(t);
      if (typeof sub === "string") return sub;
      added.push(sub);
    }
    if (c.subs.length + added.length > limits.wsTopicsPerClientMax) return `topics: at most ${limits.wsTopicsPerClientMax} a client`;
    c.subs.push(...added);
    this.index(c, added);
    this.sendRetained(c, added);
    return null;
  }

  /**
   * Updates in place: deleting and re-inserting each key to keep Map order
   * cost ~18 µs a result in a mass close of 100,000 series (profiled), so
   * recency is a sequence number and eviction goes in bulk.
   */
  private retain(spec: string, series: string, json: string): void {
    const key = spec + "|" + series;
    const seq = ++this.retainedSeq;
    const r = this.retained.get(key);
    if (r !== undefined) {
      r.json = json;
      r.seq = seq;
      return;
    }
    this.retained.set(key, { spec, series, json, seq });
    if (this.retained.size > limits.fanoutRetainedMax + limits.fanoutRetainedSlack) this.evictRetained();
  }

  /** Drops the least recently updated down to fanoutRetainedMax: once per fanoutRetainedSlack new series. */
  private evictRetained(): void {
    const seqs = Array.from(this.retained.values(), (r) => r.seq).sort((a, b) => a - b);
    const keepFrom = seqs[seqs.length - limits.fanoutRetainedMax];
    for (const [key, r] of this.retained) if (r.seq < keepFrom) this.retained.delete(key);
  }

  /** Queues the retained latest window of every series a new windows subscription matches. */
  private sendRetained(c: ClientState, subs: Subscription[]): void {
    const windows = subs.filter((s) => s.kind === "windows");
    if (windows.length === 0) return;
    for (const r of this.retained.values()) {
      if (!matches(windows, "windows", r.spec, r.series)) continue;
      if (c.pending.size >= limits.wsPendingPerClientMax) break; // the rest arrive as their windows close
      c.pending.set("retained|" + r.spec + "|" + r.series, { json: r.json, closedMs: 0 });
    }
    c.nextFlushMs = 0;
  }

  private parseTopic(topic: string): Subscription | string {
    const [kind, ...rest] = topic.split(":");
    if (kind === "windows" || kind === "updates") {
      const spec = rest[0];
      const known = [...this.opts.windows, ...(this.opts.rollups ?? []), ...this.extraSpecs()];
      if (!spec || !known.includes(spec)) return `topics: "${topic}": unknown window spec (have ${[...new Set(known)].join(", ")})`;
      return { topic, kind, spec, ...seriesPattern(rest.slice(1).join(":")) };
    }
    if (kind === "anomalies" || kind === "trends") return { topic, kind, spec: undefined, ...seriesPattern(rest.join(":")) };
    if ((kind === "alerts" || kind === "stats") && rest.length === 0) return { topic, kind, spec: undefined, match: undefined, exact: undefined };
    return `topics: "${topic}": unknown topic (windows:<spec>:<glob>, updates:<spec>:<glob>, anomalies[:<glob>], trends[:<glob>], alerts, stats)`;
  }
}

/** A series pattern: an exact key (no `*` or `?`), everything (`*` or empty), or a glob. */
function seriesPattern(glob: string): { match: GlobMatcher | undefined; exact: string | undefined } {
  if (glob === "" || glob === "*") return { match: undefined, exact: undefined };
  if (!/[*?]/.test(glob)) return { match: undefined, exact: glob };
  return { match: compileGlob(glob), exact: undefined };
}

function setIn<K, V>(m: Map<K, Set<V>>, k: K): Set<V> {
  let set = m.get(k);
  if (!set) m.set(k, (set = new Set()));
  return set;
}

function deleteIn<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  const set = m.get(k);
  if (!set) return;
  set.delete(v);
  if (set.size === 0) m.delete(k);
}

function matches(subs: Subscription[], kind: TopicKind, spec: string | undefined, series: string): boolean {
  for (const s of subs) {
    if (s.kind !== kind || s.spec !== spec) continue;
    if (s.exact !== undefined ? s.exact === series : s.match === undefined || s.match.test(series)) return true;
  }
  return false;
}
