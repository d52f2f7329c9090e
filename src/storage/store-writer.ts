/**
 * The store writer thread's handle on the main thread: SQLite writes and
 * checkpoint commits run on a thread of their own, so a commit of 50,000 rows
 * and a 40 MB checkpoint (about a second at 100,000 series) never holds up
 * ingest, reads or live pushes. Jobs are answered in the order they were
 * sent; a failed one rejects with the writer's message and wrote nothing.
 * The engine keeps the jobs in flight bounded (one commit per partition).
 *
 * @example
 *   const w = await StoreWriter.start(dbPath, { "store.after-commit": 2 });
 *   await w.commit(job);            // rows + checkpoint in one transaction, on the writer thread
 *   await w.close();
 */
import type { AlertKey, CommitJob, CommitResult, DefinitionTable, ReplicaRows, ViewRulesCommit } from "../actors/store.ts";
import type { DeadLetter } from "../actors/deadletters.ts";
import type { SeriesInfo } from "../actors/series-registry.ts";

/** What the writer thread is asked: see store-writer.worker.ts. */
export type WriterRequest =
  | { id: number; k: "commit"; job: CommitJob }
  | { id: number; k: "series"; series: SeriesInfo[] }
  | { id: number; k: "replica"; rows: ReplicaRows }
  | { id: number; k: "deadletters"; rows: DeadLetter[]; keep: number }
  | { id: number; k: "prune"; nowMs: number; byLabel: Record<string, number>; anomaliesMs: number }
  | { id: number; k: "handed"; rows: AlertKey[] }
  | { id: number; k: "viewRules"; c: ViewRulesCommit }
  | { id: number; k: "definition"; table: DefinitionTable; name: string; def: unknown }
  | { id: number; k: "table"; name: string; key: string | null; version: number; rows: string | null }
  | { id: number; k: "close" }
  | { id: number; k: "hold"; flag: SharedArrayBuffer };
export type WriterReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

export class StoreWriter {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private failed: Error | null = null;

  private constructor(private readonly worker: Worker) {
    worker.onmessage = (m: MessageEvent<WriterReply>) => this.settle(m.data);
    // The writer died: every job waiting, and every later one, fails with why.
    worker.onerror = (e) => this.fail(new Error(`store writer thread failed: ${e.message}`));
  }

  /** Starts the writer on the store at `path` (already created by openStore); resolves once it has opened it. */
  static async start(path: string, crashAt: Record<string, number>): Promise<StoreWriter> {
    const worker = new Worker(new URL("./store-writer.worker.ts", import.meta.url), { workerData: { path, crashAt } } as WorkerOptions);
    const w = new StoreWriter(worker);
    await w.request({ id: 0, k: "series", series: [] }); // answered once the database is open
    return w;
  }

  /**
   * Writes a partition's results, the series with them and its checkpoint in
   * one transaction. The checkpoint's bytes are copied, not moved: the engine
   * keeps them, since a worker restarted while the job is in flight starts
   * from that checkpoint.
   */
  commit(job: CommitJob): Promise<CommitResult> {
    return this.request<CommitResult>({ id: 0, k: "commit", job });
  }

  /** Results copied from another weir process (cluster mode), in one transaction. */
  replicate(rows: ReplicaRows): Promise<number> {
    return this.request({ id: 0, k: "replica", rows });
  }

  /** Dead letters appended, the newest `keep` kept. */
  writeDeadletters(rows: DeadLetter[], keep: number): Promise<number> {
    return this.request({ id: 0, k: "deadletters", rows, keep });
  }

  writeSeries(series: SeriesInfo[]): Promise<number> {
    return this.request({ id: 0, k: "series", series });
  }

  /** Committed transitions handed to their actions. */
  markHanded(rows: AlertKey[]): Promise<number> {
    return this.request({ id: 0, k: "handed", rows });
  }

  /** The rules on views' transitions, state and judged-to point, in one transaction (src/engine/view-rules.ts). */
  commitViewRules(c: ViewRulesCommit): Promise<number> {
    return this.request({ id: 0, k: "viewRules", c });
  }

  /** An admin API change of a rule or a view, kept across restarts (null: deleted). */
  writeDefinition(table: DefinitionTable, name: string, def: unknown): Promise<number> {
    return this.request({ id: 0, k: "definition", table, name, def });
  }

  /** An admin API change of a reference table, kept across restarts: its key, version and rows as a JSON array of objects (null: deleted). */
  writeTable(name: string, key: string | null, version: number, rows: string | null): Promise<number> {
    return this.request({ id: 0, k: "table", name, key, version, rows });
  }

  prune(nowMs: number, byLabel: Record<string, number>, anomaliesMs: number): Promise<number> {
    return this.request({ id: 0, k: "prune", nowMs, byLabel, anomaliesMs });
  }

  /**
   * Failpoint (WEIR_FAILPOINTS=1, for tests): the writer blocks before its
   * next job until the returned function is called, so a commit stays in
   * flight as long as a test needs.
   */
  hold(): () => void {
    const flag = new Int32Array(new SharedArrayBuffer(4));
    void this.request({ id: 0, k: "hold", flag: flag.buffer as SharedArrayBuffer });
    return () => {
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
    };
  }

  /** Closes the database after the jobs sent before, then ends the thread. */
  async close(): Promise<void> {
    try {
      if (this.failed === null) await this.request({ id: 0, k: "close" });
    } finally {
      this.worker.terminate();
    }
  }

  private request<T = number>(r: WriterRequest): Promise<T> {
    if (this.failed !== null) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...r, id });
    });
  }

  private settle(reply: WriterReply): void {
    const w = this.waiting.get(reply.id);
    if (w === undefined) return;
    this.waiting.delete(reply.id);
    if (reply.ok) w.resolve(reply.value);
    else w.reject(new Error(reply.error));
  }

  private fail(e: Error): void {
    this.failed = e;
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }
}
