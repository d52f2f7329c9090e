/**
 * Cluster mode: a partition's owner reads its subject of WEIR_PARTS
 * (`weir.part.<p>`, written by repartition.ts) in stream order, from just
 * after the sequence its checkpoint holds, into the local engine, message
 * by message. An ordered consumer: no acknowledgements, since the owner's
 * checkpoint (shared, with the last sequence it holds) says what is done;
 * a new owner starts after it, so each share is applied exactly once.
 *
 * - De-duplication across owners: a takeover starts reading at the start of
 *   the de-duplication window (WEIR_DEDUPE_WINDOW) when the checkpoint is
 *   younger than that, and the shares up to the checkpoint only teach the
 *   engine their event ids and origin keys; the shares after it are taken.
 * - Which sequence a committed checkpoint holds: each taken share's raw-log
 *   position is remembered until a checkpoint of the partition at or past it
 *   commits (at most limits.natsFeedPendingMax; past it the feed waits).
 * - Full rings or disk: the same share is tried again with back-off
 *   (nothing later is read meanwhile: order is kept).
 *
 * @example
 *   const feed = await startPartitionFeed({ js, jsm, partition: 3, from: { seq: 120, recvMs }, dedupeWindowMs, port, log });
 *   engine.onPartitionCommitted((p, ck) => p === 3 && feed.committed(ck.pos));
 *   feed.applied() // { seq, recvMs } of the last share a committed checkpoint holds
 */
import { JetStreamApiCodes, JetStreamApiError, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { BodyError } from "../actors/ingest-body.ts";
import type { ParsedEvents } from "../actors/ingest-parse.ts";
import { OverloadedError, TooLargeError } from "../engine/errors.ts";
import type { EngineOutcome, MessageOrigin } from "../engine/ingest-path.ts";
import { limits } from "../runtime/limits.ts";
import type { Log } from "../runtime/log.ts";
import { recvMsHeader } from "./ingest-consumer.ts";
import { startOrderedRead } from "./ordered-read.ts";
import { originHeader, originMsgIdHeader } from "./repartition.ts";
import { decodeShare } from "./share-codec.ts";
import { partitionSubject } from "./subjects.ts";

export interface FeedPort {
  ingestParsed(parsed: ParsedEvents, origin: MessageOrigin): Promise<EngineOutcome & { known: boolean }>;
  /** A share the checkpoint holds already, inside the de-duplication window: its keys and event ids are known from now on. */
  remember(keys: readonly string[], ids: readonly string[], recvMs: number): void;
}

/** Where a partition's checkpoint stands on its subject: the last sequence it holds (0: none) and that share's receive time. */
export interface FeedPosition { seq: number; recvMs: number }

export interface FeedOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  partition: number;
  from: FeedPosition;
  dedupeWindowMs: number;
  port: FeedPort;
  log: Log;
  /** Once every share that was in the stream when the feed started is taken. */
  onCaughtUp?: () => void;
}

export interface PartitionFeed {
  /** A checkpoint of the partition at raw-log position `pos` committed. */
  committed(pos: number): void;
  /** The last share a committed checkpoint holds. */
  applied(): FeedPosition;
  /** Shares taken since start (not counting those only remembered). */
  taken(): number;
  /** The sequence of the last share taken (or the start position's). */
  lastTaken(): number;
  /** Takes no more shares; resolves once the one being taken is in. */
  stop(): Promise<void>;
}

const retryDelayMsMin = 50;

export async function startPartitionFeed(o: FeedOptions): Promise<PartitionFeed> {
  const subject = partitionSubject(o.partition);
  const lastSeq = await lastSequence(o.jsm, o.stream, subject);
  const scanFromMs = Date.now() - o.dedupeWindowMs;
  // A checkpoint younger than the window: read from the window's start (the shares it holds teach ids only).
  const byTime = o.from.seq > 0 && o.from.recvMs >= scanFromMs && o.dedupeWindowMs > 0;
  const pending: Array<{ pos: number; seq: number; recvMs: number }> = [];
  let applied: FeedPosition = { ...o.from };
  let caughtUp = false;
  let taken = 0;
  let lastTaken = o.from.seq;
  let stopping = false;
  const caughtUpNow = () => {
    if (caughtUp) return;
    caughtUp = true;
    o.onCaughtUp?.();
  };
  if (lastSeq <= o.from.seq) caughtUpNow();
  const reader = startOrderedRead({
    js: o.js, stream: o.stream, subject, log: o.log, what: `partition ${o.partition}'s feed`,
    from: byTime ? { timeMs: scanFromMs } : { seq: o.from.seq },
    handle: async (m) => {
      if (m.seq <= o.from.seq) {
        remember(o, m);
      } else if (m.seq > lastTaken) { // a reader made again may deliver the last one twice
        while (pending.length >= limits.natsFeedPendingMax && !stopping) await Bun.sleep(limits.storeFlushMs);
        const pos = await take(o, m, () => stopping);
        if (pos === null) throw new Error("stopping"); // not taken: not past it
        pending.push({ pos, seq: m.seq, recvMs: recvMsOf(m) });
        taken++;
        lastTaken = m.seq;
      }
      if (m.seq >= lastSeq || m.info.pending === 0) caughtUpNow();
    },
  });
  return {
    committed(pos: number) {
      while (pending.length > 0 && pending[0].pos <= pos) {
        const x = pending.shift()!;
        applied = { seq: x.seq, recvMs: x.recvMs };
      }
    },
    applied: () => ({ ...applied }),
    taken: () => taken,
    lastTaken: () => lastTaken,
    async stop() {
      stopping = true;
      await reader.stop();
    },
  };
}

/** The keys a share is known by: the message and chunk it came from, and the producer's Msg-Id (per partition: a message feeds several). */
function originKeys(o: FeedOptions, m: JsMsg): string[] {
  const keys = [`part:${o.partition}:${m.headers?.get(originHeader) ?? `${m.info.stream}:${m.seq}`}`];
  const msgId = m.headers?.get(originMsgIdHeader) ?? "";
  if (msgId !== "") keys.push(`partmsg:${o.partition}:${msgId}`);
  return keys;
}

function recvMsOf(m: JsMsg): number {
  const v = Number(m.headers?.get(recvMsHeader) ?? "");
  return Number.isFinite(v) && v > 0 ? v : Math.floor(m.info.timestampNanos / 1e6);
}

function remember(o: FeedOptions, m: JsMsg): void {
  let ids: string[] = [];
  try {
    ids = (decodeShare(m.data).ids ?? []).flatMap((id) => (id === undefined ? [] : [id]));
  } catch {
    // a share weir did not write: taking it (take()) refuses it the same way
  }
  o.port.remember(originKeys(o, m), ids, recvMsOf(m));
}

/** Takes one share into the engine; resolves to its raw-log position (-1: nothing logged), or null when stopping. */
async function take(o: FeedOptions, m: JsMsg, stopping: () => boolean): Promise<number | null> {
  const origin: MessageOrigin = {
    keys: originKeys(o, m), eventTimeMs: recvMsOf(m),
    source: { nats: { stream: m.info.stream, seq: m.seq, subject: m.subject } },
  };
  for (let attempt = 0; ; attempt++) {
    if (stopping()) return null;
    try {
      const out = await o.port.ingestParsed(decodeShare(m.data), origin);
      if (out.durable !== undefined) await out.durable; // a failed fsync cuts the record off: taken again below
      return out.logged?.position ?? -1;
    } catch (e) {
      if (e instanceof BodyError || e instanceof TooLargeError) {
        o.log.error("nats share malformed (not written by weir?): skipped", { partition: o.partition, seq: m.seq, error: e.message });
        return -1;
      }
      const delay = Math.min(limits.natsRetryDelayMsMax, retryDelayMsMin * 2 ** attempt);
      if (!(e instanceof OverloadedError)) {
        o.log.warn("nats share not taken; trying again", { partition: o.partition, seq: m.seq, error: (e as Error).message, retryInMs: delay });
      }
      await Bun.sleep(delay);
    }
  }
}

/** The last sequence stored on `subject`, or 0. */
async function lastSequence(jsm: JetStreamManager, stream: string, subject: string): Promise<number> {
  try {
    const m = await jsm.streams.getMessage(stream, { last_by_subj: subject });
    return m?.seq ?? 0;
  } catch (e) {
    if (e instanceof JetStreamApiError && (e.code === JetStreamApiCodes.NoMessageFound || e.code === 10037)) return 0;
    throw e;
  }
}
