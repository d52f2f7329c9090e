/**
 * The ingest worker threads (WEIR_INGEST_THREADS): request bodies are
 * decoded, parsed and validated off the main thread. A body moves to a
 * worker (transferred, not copied), its events come back columnar
 * (ingest-parse.ts), their arrays moved too. Series
 * ids, de-duplication, the raw log and the rings stay on the main thread:
 * one writer keeps one order of the log, which replay, exactly-once and
 * group commit rely on (README "How it works" gives the measured reason).
 *
 * Bounded: at most limits.parseInFlightPerThreadMax bodies and
 * limits.parseInFlightBytesMax bytes wait on the workers; past either, a
 * request is refused with 503 + Retry-After before it is taken. A worker
 * that dies fails the bodies it held (503, nothing of them taken) and is
 * replaced.
 *
 * @example
 *   const pool = ParsePool.start(2, { maxEventAgeMs, maxFutureSkewMs }, log);
 *   const parsed = await pool.parse(body, "json", recvMs);
 *   pool.close();
 */
import type { BodyFormat } from "../actors/ingest-body.ts";
import { BodyError } from "../actors/ingest-body.ts";
import type { ParseBounds, ParsedEvents } from "../actors/ingest-parse.ts";
import { OverloadedError, TooLargeError } from "../engine/errors.ts";
import { limits } from "../runtime/limits.ts";
import type { Log } from "../runtime/log.ts";

export interface ParseRequest { id: number; bytes: Uint8Array; format: BodyFormat; recvMs: number }
export type ParseReply =
  | { id: number; ok: true; parsed: ParsedEvents }
  | { id: number; ok: false; code: string; message: string };

interface Waiting { resolve: (r: ParsedEvents) => void; reject: (e: Error) => void; bytes: number }

interface Thread { worker: Worker; waiting: Map<number, Waiting> }

export class ParsePool {
  private readonly threads: Thread[] = [];
  private nextId = 1;
  private inFlightBytes = 0;
  private closed = false;
  /** Worker replacements in the last minute (bounded by limits.parseThreadRestartsMax). */
  private restarts: number[] = [];
  /** Why the pool gave up replacing workers, or null. */
  private failed: string | null = null;

  private constructor(private readonly bounds: ParseBounds, private readonly log: Log, private readonly script: URL) {}

  /** `script` is the worker's entry (a test may give its own, which must answer as parse.worker.ts does). */
  static start(threads: number, bounds: ParseBounds, log: Log, script = new URL("./parse.worker.ts", import.meta.url)): ParsePool {
    if (!(threads >= 1)) throw new Error("a parse pool needs a thread"); // programmer error
    const pool = new ParsePool(bounds, log, script);
    for (let i = 0; i < threads; i++) pool.threads.push(pool.spawn());
    return pool;
  }

  get size(): number {
    return this.threads.length;
  }

  /** Bodies waiting on the workers now. */
  get inFlight(): number {
    let n = 0;
    for (const t of this.threads) n += t.waiting.size;
    return n;
  }

  /**
   * Parses a body on the least busy worker. The body's buffer moves there
   * (the caller must not use it after). Rejects with BodyError, TooLargeError, or OverloadedError (the pool full
   * or its worker dead: nothing of the request was taken).
   */
  parse(bytes: Uint8Array, format: BodyFormat, recvMs: number): Promise<ParsedEvents> {
    if (this.closed) return Promise.reject(new OverloadedError("shutting down", 503));
    if (this.failed !== null) return Promise.reject(new OverloadedError(`ingest threads failed: ${this.failed}`, 503));
    const t = this.leastBusy();
    if (t.waiting.size >= limits.parseInFlightPerThreadMax || this.inFlightBytes + bytes.byteLength > limits.parseInFlightBytesMax) {
      return Promise.reject(new OverloadedError("ingest threads busy", 503));
    }
    const id = this.nextId++;
    this.inFlightBytes += bytes.byteLength;
    return new Promise((resolve, reject) => {
      t.waiting.set(id, { resolve, reject, bytes: bytes.byteLength });
      // A view of part of a larger buffer cannot be moved alone; the body's own buffer is moved.
      const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
      const req: ParseRequest = { id, bytes: own, format, recvMs };
      t.worker.postMessage(req, [own.buffer as ArrayBuffer]);
    });
  }

  close(): void {
    this.closed = true;
    for (const t of this.threads) {
      this.failAll(t, new OverloadedError("shutting down", 503));
      t.worker.terminate();
    }
  }

  private leastBusy(): Thread {
    let best = this.threads[0];
    for (const t of this.threads) if (t.waiting.size < best.waiting.size) best = t;
    return best;
  }

  private spawn(): Thread {
    const worker = new Worker(this.script, { workerData: { bounds: this.bounds } } as WorkerOptions);
    const t: Thread = { worker, waiting: new Map() };
    worker.onmessage = (m: MessageEvent<ParseReply>) => this.settle(t, m.data);
    worker.onerror = (e) => this.replace(t, e.message);
    return t;
  }

  private settle(t: Thread, reply: ParseReply): void {
    const w = t.waiting.get(reply.id);
    if (w === undefined) return;
    t.waiting.delete(reply.id);
    this.inFlightBytes -= w.bytes;
    if (reply.ok) w.resolve(reply.parsed);
    else w.reject(errorOf(reply.code, reply.message));
  }

  /** A worker died (a programmer error, or out of memory): its bodies are refused, a new worker takes its place. */
  /**
   * A worker died: its bodies are refused and a new one takes its place, at
   * most limits.parseThreadRestartsMax times a minute: a worker that dies as
   * it starts (a broken install) must not be respawned in a tight loop.
   * Past that the pool is failed and refuses every body (503).
   */
  private replace(t: Thread, report: string): void {
    // Bun's report carries a frame of the source; a client is told the error's own line only.
    const why = /^error: (.*)$/m.exec(report)?.[1] ?? report.split("\n")[0];
    const requests = t.waiting.size;
    this.failAll(t, new OverloadedError(`ingest thread failed: ${why}`, 503));
    t.worker.terminate();
    const now = Date.now();
    this.restarts = this.restarts.filter((at) => at > now - 60_000);
    const failed = this.restarts.length >= limits.parseThreadRestartsMax;
    this.log.error(failed ? "ingest threads keep failing: ingest is refused until weir restarts" : "ingest thread failed; its requests are refused and it is replaced",
      { error: report, requests, restartsInLastMinute: this.restarts.length });
    if (this.closed) return;
    if (failed) {
      this.failed = why;
      return;
    }
    this.restarts.push(now);
    const i = this.threads.indexOf(t);
    if (i >= 0) this.threads[i] = this.spawn();
  }

  private failAll(t: Thread, e: Error): void {
    for (const w of t.waiting.values()) {
      this.inFlightBytes -= w.bytes;
      w.reject(e);
    }
    t.waiting.clear();
  }
}

/** The worker's error as the class the main thread answers with. */
function errorOf(code: string, message: string): Error {
  if (code === "bad_body") return new BodyError(message);
  if (code === "too_large") return new TooLargeError(message);
  return new Error(`ingest thread: ${message}`); // a programmer error there: a 500, logged
}
