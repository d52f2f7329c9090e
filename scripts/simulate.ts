/**
 * The demo's simulators as a producer of their own: IoT readings and shop
 * activity sent to any weir, as a producer on another machine would send
 * them, over one of three transports:
 * - http (default): the emit() client (batching, ids, retries honouring
 *   Retry-After, a bounded buffer);
 * - ws: one /ws/ingest socket, a frame per tick, each acked once durable
 *   (a frame answered "overloaded" is sent again after its retryAfter);
 * - nats: a JetStream publish per tick to `weir.ingest.sim` (`--nats`, or
 *   WEIR_NATS_URL), acknowledged by the stream: weir in NATS mode takes it.
 * At most `inFlightMax` ticks wait for their acknowledgement (ws, nats);
 * past it a tick is refused and counted as dropped.
 *
 *   bun run simulate -- --url http://127.0.0.1:8080 --rate 200 --seconds 60 [--transport http|ws|nats] [--nats nats://…]
 *
 * Options: --url (WEIR_URL, default http://127.0.0.1:8080), --token
 * (WEIR_TOKEN), --rate events/s (default 200), --seconds to run (default
 * 60, at most 86,400), --seed, --transport, --nats. Prints the figures at
 * the end and exits 1 if any event was dropped or failed.
 */
import { parseArgs } from "node:util";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { createClient } from "../src/client/emit.ts";
import { WsChannel } from "../src/load/ws-channel.ts";
import { type SimEvent, startSimulators } from "../src/sim/runner.ts";

const inFlightMax = 64;
const attemptsMax = 10;

const { values } = parseArgs({
  options: {
    url: { type: "string" }, token: { type: "string" }, rate: { type: "string" }, seconds: { type: "string" }, seed: { type: "string" },
    transport: { type: "string" }, nats: { type: "string" },
  },
});
const url = values.url ?? process.env.WEIR_URL ?? "http://127.0.0.1:8080";
const token = values.token ?? process.env.WEIR_TOKEN;
const rate = Number(values.rate ?? 200);
const seconds = Number(values.seconds ?? 60);
const transport = values.transport ?? "http";
if (!(rate > 0 && rate <= 50_000) || !(seconds > 0 && seconds <= 86_400) || !["http", "ws", "nats"].includes(transport)) {
  console.error("simulate: --rate must be in (0, 50000] events/s, --seconds in (0, 86400], --transport http, ws or nats");
  process.exit(2);
}

/** A transport: takes a tick's events (false: refused, counted as dropped), then its figures once closed. */
interface Sink { emit(batch: SimEvent[]): boolean; close(): Promise<Record<string, number>> }

function httpSink(): Sink {
  const weir = createClient({ url, token });
  return {
    emit(batch) {
      let all = true;
      for (const e of batch) all = weir.emit(e.name, e.value, e.tags, { ts: e.ts }) && all;
      return all; // false: the client's buffer was full (counted in its figures as dropped)
    },
    async close() {
      await weir.close();
      const s = weir.stats();
      return { emitted: s.emitted, accepted: s.accepted, rejected: s.rejected, dropped: s.dropped, failed: s.failed };
    },
  };
}

/** ws and nats: a tick is one message, sent again while it is answered "overloaded" or not at all (its ids make that harmless). */
function messageSink(send: (body: string) => Promise<{ accepted: number; rejected: number; retryAfterS?: number }>, closeLink: () => Promise<void>): Sink {
  const s = { emitted: 0, accepted: 0, rejected: 0, dropped: 0, failed: 0 };
  const inFlight = new Set<Promise<void>>();
  let n = 0;
  return {
    emit(batch) {
      s.emitted += batch.length;
      if (inFlight.size >= inFlightMax) {
        s.dropped += batch.length;
        return false;
      }
      const body = JSON.stringify(batch.map((e) => ({ ...e, id: `sim-${process.pid}-${n++}` })));
      const p: Promise<void> = (async () => {
        for (let attempt = 1; attempt <= attemptsMax; attempt++) {
          try {
            const r = await send(body);
            if (r.retryAfterS === undefined) {
              s.accepted += r.accepted;
              s.rejected += r.rejected;
              return;
            }
            await Bun.sleep(r.retryAfterS * 1000);
          } catch {
            await Bun.sleep(100 * 2 ** attempt);
          }
        }
        s.failed += batch.length;
      })().finally(() => inFlight.delete(p));
      inFlight.add(p);
      return true;
    },
    async close() {
      await Promise.all(inFlight);
      await closeLink();
      return s;
    },
  };
}

async function sinkOf(): Promise<Sink> {
  if (transport === "http") return httpSink();
  if (transport === "ws") {
    const ch = await WsChannel.open(url, token);
    return messageSink(async (body) => {
      const a = await ch.send(body);
      return { accepted: a.accepted, rejected: a.rejected, ...(a.retryAfter === undefined ? {} : { retryAfterS: a.retryAfter }) };
    }, async () => ch.close());
  }
  const natsUrl = values.nats ?? (process.env.WEIR_NATS_URL || undefined);
  if (natsUrl === undefined) {
    console.error("simulate: --transport nats needs --nats nats://host:port (or WEIR_NATS_URL)");
    process.exit(2);
  }
  const nc = await connect({ servers: natsUrl });
  const js = jetstream(nc);
  const encoder = new TextEncoder();
  return messageSink(async (body) => {
    await js.publish("weir.ingest.sim", encoder.encode(body)); // stored by WEIR_INGEST: weir takes each event once (ids)
    return { accepted: JSON.parse(body).length, rejected: 0 };
  }, () => nc.drain());
}

const sink = await sinkOf();
const sims = startSimulators({ ratePerSec: rate, seed: values.seed === undefined ? undefined : Number(values.seed), emit: (batch) => sink.emit(batch) });
await Bun.sleep(seconds * 1000); // the run's length: the simulators tick on their own timer meanwhile
sims.stop();
const figures = await sink.close();
console.log(JSON.stringify({ url, transport, ...figures }));
if (figures.dropped > 0 || figures.failed > 0) process.exit(1);
