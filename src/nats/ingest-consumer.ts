/**
 * Ingest from JetStream: a durable pull consumer on stream WEIR_INGEST,
 * whose messages (JSON or MessagePack, one event or an array) take the same
 * path as HTTP bodies. A message is acknowledged only once the checkpoints
 * of every partition its events reached are committed (commit-then-ack);
 * until then JetStream holds it, and a crash gets it redelivered.
 *
 * - Malformed (not JSON or MessagePack) or with no valid event: terminated
 *   (`term()`: never redelivered; nats-server 2.9 ignores a reason, so the
 *   reason is in weir's dead-letter list, with the stream sequence).
 * - Redelivered after its record was logged (a crash, a slow commit): known
 *   by its stream sequence or Nats-Msg-Id (de-duplicated like event ids,
 *   and written in its record, so known after a restart too): nothing is
 *   taken again; it is acknowledged, its record being in the raw log.
 * - Full (a ring, the disk): the consumer stops taking messages and tries
 *   the same one again with back-off; JetStream holds the rest.
 * - Any other failure: `nak` with back-off (100 ms doubling to
 *   limits.natsRetryDelayMsMax), at most limits.natsMaxDeliver deliveries.
 *
 * @example
 *   const c = await startIngestConsumer({ js, jsm, port: engine, log, stream: "WEIR_INGEST" });
 *   await c.stop();
 */
import { AckPolicy, type ConsumerMessages, DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { BodyError, type BodyFormat, formatOf } from "../actors/ingest-body.ts";
import { OverloadedError, TooLargeError } from "../engine/errors.ts";
import type { EngineOutcome, MessageOrigin } from "../engine/ingest-path.ts";
import { limits } from "../runtime/limits.ts";
import type { Log } from "../runtime/log.ts";
import { asUnavailable } from "./errors.ts";

/** What the consumer needs of the engine. */
export interface NatsIngestPort {
  ingestMessage(bytes: Uint8Array, format: BodyFormat, origin: MessageOrigin): Promise<EngineOutcome & { known: boolean }>;
  whenCommitted(logged: { position: number; partitions: readonly number[] }, done: () => void): void;
  /** A message refused whole (malformed): listed with its reason and source. */
  deadLetter(reason: string, event: unknown, source: Record<string, unknown>): void;
  countRejected(reason: "invalid", n: number): void;
}

export interface IngestConsumerOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  port: NatsIngestPort;
  log: Log;
  stream: string;
  /** The durable consumer's name; one per weir deployment reading the stream. */
  durable?: string;
}

/** Header a weir HTTP front end sets: when it received the body (the default event time). */
export const recvMsHeader = "Weir-Recv-Ms";
/** The durable consumer on WEIR_INGEST (one process takes from it; in cluster mode every process splits from it). */
export const ingestDurable = "weir-ingest";
const retryDelayMsMin = 100;
const previewBytesMax = 256; // of a malformed message, in its dead letter

export interface IngestConsumer {
  /** Messages taken: acknowledged, waiting for their commit, terminated. */
  counts(): { acked: number; waiting: number; terminated: number; retried: number };
  /** Whether the message at stream sequence `seq` is taken here and awaits its checkpoint (the upstream floor skips it). */
  holds(seq: number): boolean;
  stop(): Promise<void>;
}

/** Creates (or finds) the durable consumer and starts taking messages. */
export async function startIngestConsumer(o: IngestConsumerOptions): Promise<IngestConsumer> {
  const messages = await consumeDurable(o.js, o.jsm, o.stream, o.durable ?? ingestDurable);
  const counts = { acked: 0, waiting: 0, terminated: 0, retried: 0 };
  const waiting = new Set<number>(); // stream sequences taken, awaiting their commit: bounded by the consumer's max_ack_pending
  let stopping = false;
  const loop = (async () => {
    for await (const m of messages) {
      if (stopping) break;
      await handle(o, m, counts, waiting, () => stopping);
    }
  })().catch((e: Error) => o.log.error("nats ingest consumer stopped", { error: e.message }));
  return {
    counts: () => ({ ...counts }),
    holds: (seq) => waiting.has(seq),
    async stop() {
      stopping = true;
      await messages.close();
      await loop;
    },
  };
}

/**
 * Creates (or finds) durable pull consumer `durable` on `stream` with
 * weir's bounds (explicit acks, limits.natsAckPendingMax unacknowledged,
 * limits.natsMaxDeliver deliveries, limits.natsAckWaitMs) and starts
 * consuming it in pulls of limits.natsPullBatchMax.
 */
export async function consumeDurable(js: JetStreamClient, jsm: JetStreamManager, stream: string, durable: string): Promise<ConsumerMessages> {
  try {
    await jsm.consumers.add(stream, {
      durable_name: durable, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All,
      max_ack_pending: limits.natsAckPendingMax, max_deliver: limits.natsMaxDeliver, ack_wait: nanos(limits.natsAckWaitMs),
    });
  } catch (e) {
    throw asUnavailable(e, `nats: consumer ${durable} on ${stream}`);
  }
  const consumer = await js.consumers.get(stream, durable);
  return consumer.consume({ max_messages: limits.natsPullBatchMax });
}

/** One message: ingested and acknowledged once committed, terminated, or retried. */
async function handle(
  o: IngestConsumerOptions, m: JsMsg, counts: { acked: number; waiting: number; terminated: number; retried: number }, waiting: Set<number>, stopping: () => boolean,
): Promise<void> {
  const source = { nats: { stream: m.info.stream, seq: m.seq, subject: m.subject } };
  const msgId = m.headers?.get("Nats-Msg-Id") ?? "";
  const recvMs = Number(m.headers?.get(recvMsHeader) ?? "");
  const origin: MessageOrigin = {
    keys: [`nats-seq:${m.info.stream}:${m.seq}`, ...(msgId !== "" ? [`nats-msg:${m.info.stream}:${msgId}`] : [])],
    eventTimeMs: Number.isFinite(recvMs) && recvMs > 0 && recvMs <= Date.now() ? recvMs : undefined,
    source,
  };
  const format = formatOf(m.headers?.get("Content-Type")) ?? sniffFormat(m.data);
  const preview = () => new TextDecoder().decode(m.data.subarray(0, previewBytesMax));
  for (let attempt = 0; ; attempt++) {
    let out: EngineOutcome & { known: boolean };
    try {
      out = await o.port.ingestMessage(new Uint8Array(m.data), format, origin); // a copy (Buffer.slice would be a view): the bytes may move to an ingest thread
    } catch (e) {
      if (e instanceof BodyError || e instanceof TooLargeError) {
        m.term();
        counts.terminated++;
        o.port.deadLetter(e.message, preview(), source);
        o.port.countRejected("invalid", 1);
        return;
      }
      const delay = Math.min(limits.natsRetryDelayMsMax, retryDelayMsMin * 2 ** attempt);
      if (e instanceof OverloadedError && !stopping()) {
        await Bun.sleep(delay); // full: stop taking messages, try this one again
        continue;
      }
      counts.retried++;
      o.log.warn("nats message not taken; it comes again", { stream: m.info.stream, seq: m.seq, error: (e as Error).message, retryInMs: delay });
      m.nak(delay);
      return;
    }
    if (out.logged !== undefined) {
      const logged = out.logged;
      counts.waiting++;
      waiting.add(m.seq);
      const watch = () => o.port.whenCommitted(logged, () => {
        m.ack();
        waiting.delete(m.seq);
        counts.waiting--;
        counts.acked++;
      });
      // Under WEIR_DURABILITY=durable the record counts once its group is fsynced; a failed fsync cuts it off the
      // log (its position is taken again by later records), so only then is its commit watched.
      if (out.durable === undefined) watch();
      else out.durable.then(watch, () => {
        waiting.delete(m.seq);
        counts.waiting--;
        counts.retried++;
        m.nak(retryDelayMsMin);
      });
    } else if (out.known || out.accepted > 0) {
      // Logged before (a redelivery), or only re-sent event ids (under `durable`, answered with their group).
      const ack = () => {
        m.ack();
        counts.acked++;
      };
      if (out.durable === undefined) ack();
      else out.durable.then(ack, () => m.nak(retryDelayMsMin));
    } else {
      m.term(); // not one valid event: its events are in the dead-letter list, each with its reason
      counts.terminated++;
    }
    return;
  }
}

/** A message without a Content-Type: JSON when it starts (after white space) with { or [, line protocol (ns) with a letter, _ or #, else MessagePack. */
export function sniffFormat(bytes: Uint8Array): BodyFormat {
  for (const b of bytes) {
    if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) continue;
    if (b === 0x7b || b === 0x5b) return "json";
    // A letter, _ or # (a comment) starts line protocol (Telegraf's NATS output, nanoseconds); MessagePack never starts so.
    return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x5f || b === 0x23 ? "line-ns" : "msgpack";
  }
  return "json";
}
