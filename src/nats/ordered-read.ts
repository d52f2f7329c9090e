/**
 * Reads a stream (or one subject of it) in order, from a sequence on, for
 * as long as asked, across NATS outages: an ordered consumer, made again
 * from just after the last message handled whenever the client's own gives
 * up or stalls. Measured against Debian's nats-server 2.9 restarted under
 * a reader: the client's ordered consumer either came back after ~5 s or
 * reset over and over and ended its iterator; this one is back within
 * about a second of the server (limits.natsReadExpiresMs, its heartbeats
 * at half of it).
 *
 * @example
 *   const r = startOrderedRead({ js, stream: "WEIR_PARTS", subject: "weir.part.3", from: { seq: 120 }, log, handle: async (m) => { … } });
 *   await r.stop();
 */
import { type ConsumerMessages, DeliverPolicy, type JetStreamClient, type JsMsg, type OrderedConsumerOptions } from "@nats-io/jetstream";
import { limits } from "../runtime/limits.ts";
import type { Log } from "../runtime/log.ts";

export interface OrderedReadOptions {
  js: JetStreamClient;
  stream: string;
  /** One subject of the stream, or every message. */
  subject?: string;
  /** Where to start: after sequence `seq`, or at a time. */
  from: { seq: number } | { timeMs: number };
  /** Called for each message in stream order, one at a time; the next waits for it. */
  handle: (m: JsMsg) => Promise<void>;
  log: Log;
  /** Names the reader in logs. */
  what: string;
}

export interface OrderedRead {
  /** Stops after the message being handled; resolves once it is. */
  stop(): Promise<void>;
}

export function startOrderedRead(o: OrderedReadOptions): OrderedRead {
  let stopping = false;
  let current: ConsumerMessages | null = null;
  let lastSeq = "seq" in o.from ? o.from.seq : 0;
  const optsAt = (): Partial<OrderedConsumerOptions> => {
    const filter = o.subject !== undefined ? { filter_subjects: o.subject } : {};
    if (lastSeq > 0 || "seq" in o.from) return { ...filter, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: lastSeq + 1 };
    return { ...filter, deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(o.from.timeMs).toISOString() };
  };
  const loop = (async () => {
    for (let attempt = 0; !stopping; attempt++) {
      try {
        const consumer = await o.js.consumers.get(o.stream, optsAt());
        const messages = await consumer.consume({ max_messages: limits.natsPullBatchMax, expires: limits.natsReadExpiresMs });
        current = messages;
        void (async () => {
          for await (const s of messages.status()) {
            // The client would try on its own, for longer: a new consumer from our last sequence is quicker.
            if (s.type === "consumer_not_found" || s.type === "stream_not_found" || (s.type === "heartbeats_missed" && s.count >= 2)) messages.stop();
          }
        })();
        for await (const m of messages) {
          if (stopping) break;
          await o.handle(m);
          lastSeq = m.seq;
          attempt = 0;
        }
      } catch (e) {
        if (!stopping) o.log.warn(`nats: ${o.what} interrupted; reading again`, { stream: o.stream, afterSeq: lastSeq, error: (e as Error).message });
      }
      current = null;
      if (!stopping) await Bun.sleep(Math.min(limits.natsRetryDelayMsMax, 100 * 2 ** Math.min(attempt, 6)));
    }
  })();
  return {
    async stop() {
      stopping = true;
      current?.stop();
      await loop;
    },
  };
}
