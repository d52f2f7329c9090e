/**
 * The producer's client: `emit()` events from any program, they reach weir
 * in batches. Runs in Bun, in Node (18+, plain fetch) and in a browser (all
 * but the flush on exit); it imports nothing of weir at run time.
 *
 * What it promises:
 * - Events are buffered and POSTed as JSON arrays to `<url>/api/v1/events`
 *   when `batchEventsMax` are waiting, and every `flushIntervalMs`. One
 *   request is in flight at a time, so events arrive in the order emitted.
 * - Each event gets an `id` (a random prefix per client plus a counter) and
 *   a `ts` (the time of `emit`) unless given: a batch re-sent after its
 *   answer was lost is counted once by weir (ids within WEIR_DEDUPE_WINDOW),
 *   and a retried event keeps the time it happened, not the time it arrived.
 * - No answer, 408, 429 and 5xx are retried up to `retriesMax` times with
 *   exponential back-off and jitter, honouring `Retry-After` (retry.ts).
 *   Past that the batch counts as `failed`. Any other answer is final: a 202
 *   counts its `accepted` and `rejected` events; a 400, 401, 403, 413 or 415
 *   refuses the whole batch, counted as `rejected` with the server's words
 *   kept in `stats().rejections` (never silently).
 * - The buffer is bounded (`bufferEventsMax`, events waiting plus the batch
 *   in flight). When it is full, `emit` neither blocks nor grows: it returns
 *   false and counts the event in `stats().dropped`. We drop the newest
 *   rather than block because emit() is called from request handlers and
 *   game loops that must not wait on the network, and rather than evict the
 *   oldest because those are already in a batch being retried.
 * - `flush()` sends everything buffered and resolves once it is answered.
 *   In Node and Bun the client also flushes when the process runs out of
 *   work (`process.on("beforeExit")`). That event does not come on
 *   `process.exit()` or a signal: call `await client.close()` first there.
 *
 * @example
 *   const weir = createClient({ url: "http://127.0.0.1:8080", token: process.env.WEIR_TOKEN });
 *   weir.emit("complaint.response_time", 3600, { team: "support" });
 *   weir.emit("complaint.opened");
 *   await weir.close(); // flushes
 */
import { isRetryableStatus, retryAfterMs, retryDelayMs, sleep, unrefTimer, type FetchLike } from "./retry.ts";

export type { FetchLike } from "./retry.ts";

/** The client's bounds. They live here, not in src/runtime/limits.ts, because the client ships alone to producers and browsers. */
export const clientDefaults = {
  batchEventsMax: 1_000, // events per POST
  flushIntervalMs: 1_000, // a partial batch waits at most this long
  bufferEventsMax: 10_000, // events held (waiting + in flight); past it emit() drops and counts
  retriesMax: 8, // re-sends of one batch: ~25 s of back-off in all at the defaults below
  requestTimeoutMs: 10_000, // one POST, until its whole answer
  backoffBaseMs: 100,
  backoffMaxMs: 30_000,
  retryAfterMsMax: 30_000, // a longer Retry-After is cut to this, so every retry lands within weir's 10-minute dedupe window
  rejectionsKeptMax: 100, // newest rejection reasons in stats()
  errorCharsMax: 300, // a server's error text is cut to this
  eventsPerRequestMax: 100_000, // weir's own bound on one request (limits.eventsPerRequestMax)
} as const;

export interface ClientOptions {
  /** weir's base URL, e.g. "http://127.0.0.1:8080". */
  url: string;
  /** A token with role `ingest`, sent as `Authorization: Bearer <token>`. */
  token?: string;
  batchEventsMax?: number;
  flushIntervalMs?: number;
  bufferEventsMax?: number;
  retriesMax?: number;
  requestTimeoutMs?: number;
  /** Another fetch (a proxy agent, a test double); default globalThis.fetch. */
  fetch?: FetchLike;
  /** Flush on `beforeExit` in Node and Bun (default true). */
  flushOnExit?: boolean;
}

export interface EmitOptions {
  /** When it happened: epoch ms, an ISO-8601 string or a Date; default: now. */
  ts?: number | string | Date;
  /** De-duplication id (≤ 128 chars); default: generated. */
  id?: string;
  /** Kept in weir's raw zone, not aggregated (≤ 4 KiB encoded). */
  props?: Record<string, unknown>;
}

/** An event as sent (API.md "Events"). */
export interface ClientEvent {
  name: string;
  value?: number;
  ts: number | string;
  tags?: Record<string, string>;
  id: string;
  props?: Record<string, unknown>;
}

/** Why events were refused: per event (a 202's or 400's list), or a whole batch (`events` > 1). */
export interface Rejection {
  /** The HTTP status of the answer, or 0 for an event that could not be encoded and was never sent. */
  status: number;
  error: string;
  events: number;
  /** The event's id, or the batch's first. */
  id: string;
  name: string;
}

export interface ClientStats {
  /** Events taken into the buffer. */
  emitted: number;
  /** Events weir answered as accepted (a re-sent duplicate included, as weir counts it). */
  accepted: number;
  /** Events weir refused: listed in a 202, or a batch refused whole. */
  rejected: number;
  /** emit() calls turned away: buffer full, or the client closed. */
  dropped: number;
  /** Events given up on after `retriesMax` retries without an answer. */
  failed: number;
  /** Events held now: waiting plus in flight. */
  buffered: number;
  requests: number;
  retries: number;
  lastError: string | null;
  /** The newest rejections, oldest first. */
  rejections: Rejection[];
}

export interface FlushResult {
  accepted: number;
  rejected: number;
  failed: number;
  /** Events emitted during the flush, still held. */
  buffered: number;
}

export interface Client {
  /** Buffers one event; false when it was dropped (buffer full or client closed), counted in stats().dropped. */
  emit(name: string, value?: number, tags?: Record<string, string>, opts?: EmitOptions): boolean;
  /** Sends everything buffered; resolves once weir has answered it (or it failed). */
  flush(): Promise<FlushResult>;
  /** Flushes, stops the timer and the exit hook; later emits are dropped. */
  close(): Promise<void>;
  stats(): ClientStats;
}

interface Settings {
  endpoint: string;
  headers: Record<string, string>;
  batchEventsMax: number;
  flushIntervalMs: number;
  bufferEventsMax: number;
  retriesMax: number;
  requestTimeoutMs: number;
  fetch: FetchLike;
}

/**
 * A client for one weir.
 * @example const c = createClient({ url: "http://127.0.0.1:8080", batchEventsMax: 500 });
 */
export function createClient(options: ClientOptions): Client {
  const s = settingsOf(options);
  const sender = new Sender(s);
  const onBeforeExit = () => {
    if (sender.held() > 0) void sender.flush();
  };
  const hook = options.flushOnExit !== false && typeof process !== "undefined" && typeof process.on === "function";
  if (hook) process.on("beforeExit", onBeforeExit);
  return {
    emit: (name, value, tags, opts) => sender.emit(name, value, tags, opts),
    flush: () => sender.flush(),
    close: async () => {
      if (hook) process.off("beforeExit", onBeforeExit);
      await sender.close();
    },
    stats: () => sender.stats(),
  };
}

/** Options made whole; a bad one is the caller's bug and throws at once. */
function settingsOf(o: ClientOptions): Settings {
  const d = clientDefaults;
  const batchEventsMax = o.batchEventsMax ?? d.batchEventsMax;
  const bufferEventsMax = o.bufferEventsMax ?? Math.max(d.bufferEventsMax, batchEventsMax);
  const s: Settings = {
    endpoint: `${new URL(o.url).href.replace(/\/+$/, "")}/api/v1/events`,
    headers: { "content-type": "application/json", ...(o.token !== undefined ? { authorization: `Bearer ${o.token}` } : {}) },
    batchEventsMax,
    flushIntervalMs: o.flushIntervalMs ?? d.flushIntervalMs,
    bufferEventsMax,
    retriesMax: o.retriesMax ?? d.retriesMax,
    requestTimeoutMs: o.requestTimeoutMs ?? d.requestTimeoutMs,
    fetch: o.fetch ?? ((url, init) => globalThis.fetch(url, init)),
  };
  check(Number.isInteger(batchEventsMax) && batchEventsMax >= 1 && batchEventsMax <= d.eventsPerRequestMax, `batchEventsMax: 1–${d.eventsPerRequestMax}`);
  check(Number.isInteger(bufferEventsMax) && bufferEventsMax >= batchEventsMax, "bufferEventsMax: a whole number ≥ batchEventsMax");
  check(s.flushIntervalMs > 0 && s.requestTimeoutMs > 0, "flushIntervalMs and requestTimeoutMs: > 0");
  check(Number.isInteger(s.retriesMax) && s.retriesMax >= 0, "retriesMax: a whole number ≥ 0");
  return s;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new RangeError(`createClient: ${what}`);
}

type Answer =
  | { kind: "answered"; status: number; body: unknown }
  | { kind: "retry"; error: string; retryAfterMs: number | null };

/** The buffer and the one loop that sends it. */
class Sender {
  /** A ring of events waiting, allocated once at its full size. */
  private readonly ring: (ClientEvent | undefined)[];
  private head = 0;
  private waiting = 0;
  private inFlight = 0;
  /** Events ever buffered, taken into a batch, and answered: sequence numbers, since the ring is FIFO and one batch is in flight. */
  private enqueued = 0;
  private taken = 0;
  private settled = 0;
  /** Events before this sequence number go out without waiting for a full batch. */
  private flushTo = 0;
  private pumping = false;
  private closed = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly waiters: Array<{ seq: number; resolve: () => void }> = [];
  private readonly idPrefix = randomPrefix();
  private idCounter = 0;
  private readonly counts = { emitted: 0, accepted: 0, rejected: 0, dropped: 0, failed: 0, requests: 0, retries: 0 };
  private lastError: string | null = null;
  private readonly rejections: Rejection[] = [];

  constructor(private readonly s: Settings) {
    this.ring = new Array(s.bufferEventsMax);
  }

  emit(name: string, value?: number, tags?: Record<string, string>, opts?: EmitOptions): boolean {
    if (this.closed || this.held() >= this.s.bufferEventsMax) {
      this.counts.dropped++;
      return false;
    }
    const ts = opts?.ts === undefined ? Date.now() : opts.ts instanceof Date ? opts.ts.getTime() : opts.ts;
    const ev: ClientEvent = { name, ts, id: opts?.id ?? `${this.idPrefix}-${(this.idCounter++).toString(36)}` };
    if (value !== undefined) ev.value = value;
    if (tags !== undefined) ev.tags = tags;
    if (opts?.props !== undefined) ev.props = opts.props;
    this.ring[(this.head + this.waiting) % this.ring.length] = ev;
    this.waiting++;
    this.enqueued++;
    this.counts.emitted++;
    // The batch goes out after the caller's synchronous work, so emit() stays a few stores.
    if (this.waiting >= this.s.batchEventsMax) {
      if (!this.pumping) queueMicrotask(() => void this.pump());
    } else this.armTimer();
    return true;
  }

  async flush(): Promise<FlushResult> {
    const before = { ...this.counts };
    const target = this.enqueued;
    this.flushTo = target;
    const answered = new Promise<void>((resolve) => {
      if (this.settled >= target) resolve();
      else this.waiters.push({ seq: target, resolve });
    });
    void this.pump();
    await answered;
    return {
      accepted: this.counts.accepted - before.accepted,
      rejected: this.counts.rejected - before.rejected,
      failed: this.counts.failed - before.failed,
      buffered: this.held(),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.flush();
  }

  held(): number {
    return this.waiting + this.inFlight;
  }

  stats(): ClientStats {
    return { ...this.counts, buffered: this.held(), lastError: this.lastError, rejections: [...this.rejections] };
  }

  /** Sends batches while a full one waits or a flush asks for more; one at a time. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.waiting >= this.s.batchEventsMax || (this.waiting > 0 && this.taken < this.flushTo)) {
        const batch = this.take(Math.min(this.s.batchEventsMax, this.waiting));
        await this.send(batch);
        this.inFlight = 0;
        this.settled += batch.length;
        this.wake();
      }
    } finally {
      this.pumping = false;
    }
    this.armTimer();
  }

  private take(n: number): ClientEvent[] {
    const batch = new Array<ClientEvent>(n); // one array per batch: the unit JSON.stringify encodes
    for (let i = 0; i < n; i++) {
      batch[i] = this.ring[this.head]!;
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % this.ring.length;
    }
    this.waiting -= n;
    this.inFlight = n;
    this.taken += n;
    return batch;
  }

  private wake(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.waiters[i].seq <= this.settled) this.waiters.splice(i, 1)[0].resolve();
    }
  }

  /** A partial batch goes out within flushIntervalMs; the timer alone never keeps a process alive. */
  private armTimer(): void {
    if (this.timer !== null || this.waiting === 0 || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flushTo = this.enqueued;
      void this.pump();
    }, this.s.flushIntervalMs);
    unrefTimer(this.timer);
  }

  /** One batch, retried until answered or given up on. */
  private async send(taken: ClientEvent[]): Promise<void> {
    const [batch, body] = this.encode(taken); // encoded once: every attempt sends the same bytes, so the same ids
    if (batch.length === 0) return;
    for (let attempt = 0; ; attempt++) {
      const answer = await this.post(body);
      if (answer.kind === "answered") return this.count(answer.status, answer.body, batch);
      this.lastError = answer.error;
      if (attempt >= this.s.retriesMax) {
        this.counts.failed += batch.length;
        return;
      }
      this.counts.retries++;
      const c = clientDefaults;
      await sleep(retryDelayMs({ attempt, retryAfterMs: answer.retryAfterMs, backoffBaseMs: c.backoffBaseMs, backoffMaxMs: c.backoffMaxMs, random: Math.random }));
    }
  }

  /** The batch as JSON; an event that cannot be (a BigInt or a cycle in props) is left out, counted as rejected. */
  private encode(batch: ClientEvent[]): [ClientEvent[], string] {
    try {
      return [batch, JSON.stringify(batch)];
    } catch {
      const ok = batch.filter((ev) => {
        try {
          JSON.stringify(ev);
          return true;
        } catch (e) {
          this.counts.rejected++;
          this.keep({ status: 0, error: cut(`event: cannot be sent as JSON: ${(e as Error).message}`), events: 1, id: ev.id, name: ev.name });
          return false;
        }
      });
      return [ok, JSON.stringify(ok)];
    }
  }

  private async post(body: string): Promise<Answer> {
    this.counts.requests++;
    const s = this.s;
    try {
      const res = await s.fetch(s.endpoint, { method: "POST", headers: s.headers, body, signal: AbortSignal.timeout(s.requestTimeoutMs) });
      const text = await res.text();
      if (!isRetryableStatus(res.status)) return { kind: "answered", status: res.status, body: parseJson(text) };
      const wait = retryAfterMs(res.headers.get("retry-after"), Date.now(), clientDefaults.retryAfterMsMax);
      return { kind: "retry", error: `HTTP ${res.status}: ${errorOf(parseJson(text), text)}`, retryAfterMs: wait };
    } catch (e) {
      const timedOut = e instanceof Error && (e.name === "TimeoutError" || e.name === "AbortError");
      return { kind: "retry", error: timedOut ? `no answer within ${s.requestTimeoutMs} ms` : `network: ${cut((e as Error)?.message ?? String(e))}`, retryAfterMs: null };
    }
  }

  /** Counts a final answer: a 2xx by its accepted/rejected, anything else as the whole batch refused. */
  private count(status: number, body: unknown, batch: ClientEvent[]): void {
    const b = (typeof body === "object" && body !== null ? body : {}) as { accepted?: unknown; rejected?: unknown; errors?: unknown };
    const listed = Array.isArray(b.errors) ? (b.errors as Array<{ index?: unknown; error?: unknown }>) : [];
    if (status >= 200 && status < 300) {
      const rejected = typeof b.rejected === "number" ? b.rejected : 0;
      this.counts.accepted += typeof b.accepted === "number" ? b.accepted : batch.length - rejected;
      this.counts.rejected += rejected;
      if (rejected > 0) this.lastError = `HTTP ${status}: ${rejected} of ${batch.length} events rejected`;
    } else {
      this.counts.rejected += batch.length;
      this.lastError = `HTTP ${status}: ${errorOf(body, "")}`;
      if (listed.length === 0) this.keep({ status, error: errorOf(body, ""), events: batch.length, id: batch[0].id, name: batch[0].name });
    }
    for (const e of listed) {
      const ev = typeof e.index === "number" ? batch[e.index] : undefined;
      if (ev !== undefined) this.keep({ status, error: cut(String(e.error)), events: 1, id: ev.id, name: ev.name });
    }
  }

  private keep(r: Rejection): void {
    this.rejections.push(r);
    if (this.rejections.length > clientDefaults.rejectionsKeptMax) this.rejections.shift();
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** The server's `error` field, else its text: what a person needs to see. */
function errorOf(body: unknown, text: string): string {
  const e = (body as { error?: unknown } | null)?.error;
  return cut(typeof e === "string" ? e : text.length > 0 ? text : "no error text");
}

function cut(text: string): string {
  return text.length > clientDefaults.errorCharsMax ? `${text.slice(0, clientDefaults.errorCharsMax)}…` : text;
}

/** 64 random bits as 16 hex digits: ids of two clients do not meet within a dedupe window. */
function randomPrefix(): string {
  const bytes = new Uint8Array(8);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}
