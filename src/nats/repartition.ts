/**
 * Cluster mode's first hop (WEIR_NATS_CLUSTER): a producer's message may
 * hold events of many series, and each partition has one owner among the
 * weir processes. Whichever process pulls a message from WEIR_INGEST (one
 * durable consumer shared by all, so each message goes to one of them)
 * validates it, splits its valid events by partition (the series key's
 * hash, as in one process), and publishes each share to
 * `weir.part.<partition>` in stream WEIR_PARTS; it acknowledges the message
 * once JetStream has stored every share. The partition's owner reads its
 * subject in stream order (partition-feed.ts). This is Kafka Streams'
 * repartition topic: the log a partition is rebuilt from is its own subject.
 *
 * - A share's `Nats-Msg-Id` names the message and the partition, so a
 *   message delivered again (the splitter died before its ack) stores no
 *   share twice within WEIR_PARTS' duplicate window; beyond it the owner
 *   knows the share's origin keys (the same stream sequence, the same
 *   producer Msg-Id) and takes nothing twice.
 * - Events keep their receive time: an event without `ts` gets the one the
 *   message arrived with (its Weir-Recv-Ms header, else the pull's time).
 * - A share is the validated events, columnar (share-codec.ts): its owner
 *   takes them without decoding and validating each again.
 * - Malformed, or without one valid event: terminated and dead-lettered,
 *   as in one process; invalid events of a valid message are listed once
 *   (not again on a redelivery).
 *
 * @example
 *   const r = await startRepartitioner({ js, jsm, partitions: 8, bounds: cfg, port, log });
 */
import type { JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { BodyError, formatOf } from "../actors/ingest-body.ts";
import type { ParseBounds, ParsedEvents, ParseReject } from "../actors/ingest-parse.ts";
import { parseBody } from "../ingest/parse-body.ts";
import { TooLargeError } from "../engine/errors.ts";
import { limits } from "../runtime/limits.ts";
import type { Log } from "../runtime/log.ts";
import { consumeDurable, ingestDurable, recvMsHeader, sniffFormat } from "./ingest-consumer.ts";
import { encodeShare, shareContentType, splitParsed } from "./share-codec.ts";
import { partitionSubject } from "./subjects.ts";

/** Headers of a share: the producer's Msg-Id (the owner's de-duplication beyond the stream's window) and the message it came from. */
export const originMsgIdHeader = "Weir-Origin-Msg-Id";
export const originHeader = "Weir-Origin";

export interface RepartitionPort {
  /** Events of a message refused by validation (counted, dead-lettered with the message's source). */
  refused(rejects: readonly ParseReject[], recvMs: number, source: Record<string, unknown>): void;
  /** A message refused whole (malformed). */
  deadLetter(reason: string, event: unknown, source: Record<string, unknown>): void;
  countRejected(reason: "invalid", n: number): void;
}

export interface RepartitionOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  partitions: number;
  bounds: ParseBounds;
  port: RepartitionPort;
  log: Log;
  durable?: string;
}

export interface Repartitioner {
  counts(): { acked: number; terminated: number; retried: number; shares: number };
  stop(): Promise<void>;
}

const retryDelayMsMin = 100;
const previewBytesMax = 256;

/** Creates (or finds) the shared durable consumer on WEIR_INGEST and starts splitting its messages. */
export async function startRepartitioner(o: RepartitionOptions): Promise<Repartitioner> {
  const messages = await consumeDurable(o.js, o.jsm, o.stream, o.durable ?? ingestDurable);
  const counts = { acked: 0, terminated: 0, retried: 0, shares: 0 };
  let stopping = false;
  // Messages are split one after another (their shares are published in pull order, so a partition's subject
  // keeps it), and their acknowledgements awaited together: at most limits.natsSplitsInFlightMax at a time.
  const inFlight = new Set<Promise<void>>();
  const loop = (async () => {
    for await (const m of messages) {
      if (stopping) break;
      const done: Promise<void> = split(o, m, counts).finally(() => inFlight.delete(done));
      inFlight.add(done);
      if (inFlight.size >= limits.natsSplitsInFlightMax) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  })().catch((e: Error) => o.log.error("nats repartition consumer stopped", { error: e.message }));
  return {
    counts: () => ({ ...counts }),
    async stop() {
      stopping = true;
      await messages.close();
      await loop;
    },
  };
}

async function split(o: RepartitionOptions, m: JsMsg, counts: { acked: number; terminated: number; retried: number; shares: number }): Promise<void> {
  const source = { nats: { stream: m.info.stream, seq: m.seq, subject: m.subject } };
  const headerMs = Number(m.headers?.get(recvMsHeader) ?? "");
  const recvMs = Number.isFinite(headerMs) && headerMs > 0 && headerMs <= Date.now() ? headerMs : Date.now();
  const format = formatOf(m.headers?.get("Content-Type")) ?? sniffFormat(m.data);
  let parsed: ParsedEvents;
  try {
    parsed = parseBody(m.data, format, recvMs, o.bounds);
  } catch (e) {
    if (!(e instanceof BodyError || e instanceof TooLargeError)) throw e;
    m.term();
    counts.terminated++;
    o.port.deadLetter(e.message, new TextDecoder().decode(m.data.subarray(0, previewBytesMax)), source);
    o.port.countRejected("invalid", 1);
    return;
  }
  if (parsed.rejects.length > 0 && !m.redelivered) o.port.refused(parsed.rejects, recvMs, source);
  if (parsed.n === 0) {
    m.term(); // not one valid event: each is in the dead-letter list with its reason
    counts.terminated++;
    return;
  }
  const msgId = m.headers?.get("Nats-Msg-Id") ?? "";
  const publishes: Promise<unknown>[] = [];
  for (const [p, share] of splitParsed(parsed, o.partitions)) {
    encodeShare(share).forEach((bytes, chunk) => {
      const h = headers();
      h.set("Nats-Msg-Id", `${m.info.stream}:${m.seq}:${p}:${chunk}`);
      h.set("Content-Type", shareContentType);
      h.set(recvMsHeader, String(recvMs));
      h.set(originHeader, `${m.info.stream}:${m.seq}:${chunk}`);
      if (msgId !== "") h.set(originMsgIdHeader, `${msgId}:${chunk}`);
      publishes.push(o.js.publish(partitionSubject(p), bytes, { headers: h, timeout: limits.natsPublishTimeoutMs }));
    });
  }
  try {
    await Promise.all(publishes);
  } catch (e) {
    // Some shares may be stored: the message comes again, and the stream (or the owner) takes no share twice.
    const delay = Math.min(limits.natsRetryDelayMsMax, retryDelayMsMin * 2 ** Math.max(0, m.info.deliveryCount - 1));
    counts.retried++;
    o.log.warn("nats message not split; it comes again", { stream: m.info.stream, seq: m.seq, error: (e as Error).message, retryInMs: delay });
    m.nak(delay);
    return;
  }
  counts.shares += publishes.length;
  m.ack();
  counts.acked++;
}
