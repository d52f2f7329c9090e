/**
 * Cluster mode: any process answers queries for all series. Every process
 * publishes its partitions' results on `weir.out.*` (results-out.ts, with
 * a Nats-Msg-Id per result and its own name); stream WEIR_OUT keeps them
 * (each once within its duplicate window), and every process copies the
 * others' results from it into its own store, series listing and live
 * feed. Reads then stay local (a query never waits on another process, and
 * answers while one is down), at the price of each process storing every
 * result: at edge scale a window row is ~150 bytes.
 *
 * Why not ask the owner: a partition's history stays with whoever owned it
 * when it was computed, so after a takeover (or with its old owner dead)
 * the owner of now cannot answer for it; and every list query would need
 * all processes up.
 *
 * Read with an ordered consumer from the sequence after the last one
 * copied (kept in `<data>/replica.seq`, written after each batch is
 * stored), or, the first time, from the windows' retention back. A result
 * copied twice changes nothing (windows and trends replace, anomalies are
 * kept once per series and time).
 *
 * @example
 *   const replica = await startResultsReplica({ js, jsm, engine, node: cfg.nodeName, dataDir: cfg.dataDir, sinceMs, log });
 */
import { decode } from "@msgpack/msgpack";
import type { RuleTransition } from "../actors/rules/rule-set.ts";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AnomalyRecord, ReplicaRows, TrendRecord, WindowRecord } from "../actors/store.ts";
import { limits } from "../runtime/limits.ts";
import type { Log } from "../runtime/log.ts";
import { startOrderedRead } from "./ordered-read.ts";
import { nodeHeader } from "./results-out.ts";

export const outStreamName = "WEIR_OUT";

export interface ReplicaPort {
  acceptReplica(rows: ReplicaRows): Promise<void>;
}

export interface ReplicaOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  port: ReplicaPort;
  node: string;
  dataDir: string;
  /** The first time (no replica.seq): results from this time on are copied. */
  sinceMs: number;
  log: Log;
}

export interface ResultsReplica {
  /** Results copied from other processes since start. */
  copied(): number;
  /** The last WEIR_OUT sequence stored. */
  lastSeq(): number;
  stop(): Promise<void>;
}

export async function startResultsReplica(o: ReplicaOptions): Promise<ResultsReplica> {
  const seqFile = join(o.dataDir, "replica.seq");
  let last = existsSync(seqFile) ? Number(readFileSync(seqFile, "utf8")) || 0 : 0;
  let copied = 0;
  let stopping = false;
  let rows: ReplicaRows = { windows: [], anomalies: [], trends: [], alerts: [] };
  let batchSeq = last;
  let n = 0;
  const flush = async () => {
    if (n > 0) {
      // Until the store takes it (a failing disk), this waits here: the consumer's buffer, not this process's memory, holds the rest.
      for (let attempt = 0; ; attempt++) {
        try {
          await o.port.acceptReplica(rows);
          break;
        } catch (e) {
          if (stopping) return;
          o.log.warn("cluster: copied results not stored; trying again", { error: (e as Error).message });
          await Bun.sleep(Math.min(limits.natsRetryDelayMsMax, 100 * 2 ** attempt));
        }
      }
      copied += n;
    }
    if (batchSeq > last) {
      last = batchSeq;
      writeFileSync(`${seqFile}.tmp`, String(last));
      renameSync(`${seqFile}.tmp`, seqFile);
    }
    rows = { windows: [], anomalies: [], trends: [], alerts: [] };
    n = 0;
  };
  const reader = startOrderedRead({
    js: o.js, stream: outStreamName, log: o.log, what: "results replica",
    from: last > 0 ? { seq: last } : { timeMs: o.sinceMs },
    handle: async (m) => {
      batchSeq = m.seq;
      if (m.headers?.get(nodeHeader) !== o.node) {
        try {
          const body = decode(m.data) as Record<string, unknown> & { type?: string };
          if (body.type === "window") rows.windows.push(windowOf(body));
          else if (body.type === "anomaly") rows.anomalies.push(anomalyOf(body));
          else if (body.type === "trend") rows.trends.push(trendOf(body));
          else if (body.type === "alert" && body.kind === "rule") rows.alerts!.push(body as unknown as RuleTransition);
          if (body.type === "window" || body.type === "anomaly" || body.type === "trend" || (body.type === "alert" && body.kind === "rule")) n++; // an anomaly's alert: the anomaly itself is copied
        } catch (e) {
          o.log.warn("cluster: a result on WEIR_OUT not understood; skipped", { seq: m.seq, subject: m.subject, error: (e as Error).message });
        }
      }
      if (n >= limits.replicaBatchMax || m.info.pending === 0) await flush();
    },
  });
  return {
    copied: () => copied,
    lastSeq: () => last,
    async stop() {
      stopping = true;
      await reader.stop();
      await flush();
    },
  };
}

const num = (v: unknown) => (typeof v === "number" ? v : Number.NaN);
const str = (v: unknown) => (typeof v === "string" ? v : "");

function windowOf(b: Record<string, unknown>): WindowRecord {
  return {
    series: str(b.series), window: str(b.window), start: num(b.start), end: num(b.end), count: num(b.count), sum: num(b.sum), min: num(b.min), max: num(b.max),
    avg: num(b.avg), p50: num(b.p50), p95: num(b.p95), p99: num(b.p99), first: num(b.first), last: num(b.last),
  };
}

function anomalyOf(b: Record<string, unknown>): AnomalyRecord {
  return {
    series: str(b.series), ts: num(b.ts), value: num(b.value), z: num(b.z), mean: num(b.mean), std: num(b.std), severity: str(b.severity), source: str(b.source),
    baseline_n: num(b.baselineN), baseline_from: num(b.baselineFromTs),
    test: str(b.test) || "spike", expected_lo: num((b.expected as unknown[] | undefined)?.[0]), expected_hi: num((b.expected as unknown[] | undefined)?.[1]),
  };
}

function trendOf(b: Record<string, unknown>): TrendRecord {
  return { series: str(b.series), ts: num(b.ts), slope: num(b.slope), r2: num(b.r2), n: num(b.n), change: num(b.change), level: num(b.level), class: str(b.class) };
}
