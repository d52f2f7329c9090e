/**
 * NATS mode against a real nats-server -js: producers that speak only NATS
 * get exact windows; each message is acknowledged once its effect is
 * committed; a re-published Nats-Msg-Id and a re-sent event id count once;
 * a malformed message is terminated and listed with its stream sequence;
 * results go out on weir.out.*; HTTP ingest goes through JetStream and
 * answers 503 while NATS is away, then resumes by itself.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decode, encode } from "@msgpack/msgpack";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { recountWindow } from "./helpers/recount.ts";
import { startNatsServer, type NatsServer } from "./helpers/nats-server.ts";
import type { NatsLink } from "../src/nats/connection.ts";
import { limits } from "../src/runtime/limits.ts";
import { NatsResults } from "../src/nats/results-out.ts";
import { waitFor } from "./helpers/wait.ts";
import { startTestWeir, type TestWeir } from "./helpers/weir.ts";

const windowMs = 10_000;

describe("nats - ingest from JetStream", () => {
  let nats: NatsServer;
  let weir: TestWeir;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  const outWindows: Array<{ subject: string; id: string; body: Record<string, unknown> }> = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    weir = await startTestWeir({ WEIR_NATS_URL: nats.url, WEIR_CHECKPOINT_INTERVAL: "100ms" });
    nc = await connect({ servers: nats.url });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
    const sub = nc.subscribe("weir.out.windows.>");
    (async () => {
      for await (const m of sub) outWindows.push({ subject: m.subject, id: m.headers?.get("Nats-Msg-Id") ?? "", body: decode(m.data) as Record<string, unknown> });
    })();
  });
  afterAll(async () => {
    await nc?.close();
    await weir?.stop();
    await nats?.stop();
  });

  const metric = async (name: string): Promise<number> => {
    const text = await (await fetch(`${weir.url}/metrics`)).text();
    return text.split("\n").filter((l) => l.startsWith(name + " ") || l.startsWith(name + "{")).reduce((n, l) => n + Number(l.split(" ").pop()), 0);
  };
  const consumer = () => jsm.consumers.info("WEIR_INGEST", "weir-ingest");
  const settled = async () => {
    const c = await consumer();
    return c.num_pending === 0 && c.num_ack_pending === 0;
  };

  test("nats - JSON, MessagePack, NDJSON and single-event messages give exact windows; each is acknowledged after its commit", async () => {
    const t0 = Math.floor((Date.now() - 120_000) / windowMs) * windowMs;
    const events = Array.from({ length: 120 }, (_, i) => ({ name: "nats.temp", value: (i * 37) % 101, ts: t0 + i * 250, tags: { dev: i % 2 === 0 ? "a" : "b" } }));
    const json = new TextEncoder().encode(JSON.stringify(events.slice(0, 40)));
    const h = headers();
    h.set("Content-Type", "application/x-ndjson");
    await js.publish("weir.ingest.site1", json);
    await js.publish("weir.ingest.site2.dev", encode(events.slice(40, 80)));
    await js.publish("weir.ingest.x", new TextEncoder().encode(events.slice(80, 119).map((e) => JSON.stringify(e)).join("\n")), { headers: h });
    await js.publish("weir.ingest.x", new TextEncoder().encode(JSON.stringify(events[119])));
    // A later event per series closes their windows by their own watermark.
    const closer = [{ name: "nats.temp", value: 0, ts: t0 + 60_000, tags: { dev: "a" } }, { name: "nats.temp", value: 0, ts: t0 + 60_000, tags: { dev: "b" } }];
    await js.publish("weir.ingest.x", new TextEncoder().encode(JSON.stringify(closer)));
    await waitFor(settled, 15_000, "every message acknowledged");
    expect(await metric("weir_events_ingested_total")).toBe(122);
    for (const dev of ["a", "b"]) {
      const series = `nats.temp{dev="${dev}"}`;
      const mine = events.filter((e) => e.tags.dev === dev);
      const want = [0, 1, 2].map((k) => recountWindow(mine, t0 + k * windowMs, t0 + (k + 1) * windowMs));
      let got: unknown[] = [];
      await waitFor(async () => {
        got = (await (await fetch(`${weir.url}/api/v1/windows?series=${encodeURIComponent(series)}&window=10s&from=${t0}&to=${t0 + 3 * windowMs}`)).json()).windows;
        return got.length === 3;
      }, 10_000, `3 windows of ${series}`);
      expect(got).toEqual(want);
    }
    await waitFor(() => outWindows.filter((w) => w.subject === "weir.out.windows.10s" && (w.body.start as number) < t0 + 3 * windowMs).length >= 6, 5_000, "windows out on NATS");
    const out = outWindows.filter((w) => w.subject === "weir.out.windows.10s" && w.body.series === 'nats.temp{dev="a"}' && w.body.start === t0);
    expect(out.map((w) => [w.id, w.body.count])).toEqual([[`w|10s|nats.temp{dev="a"}|${t0}`, 20]]);
  });

  test("nats - a re-published Nats-Msg-Id and a re-sent event id are counted once", async () => {
    const before = await metric("weir_events_ingested_total");
    const ts = Date.now() - 5_000;
    const body = new TextEncoder().encode(JSON.stringify([{ name: "nats.dup", ts, id: "evt-1" }, { name: "nats.dup", ts: ts + 1 }]));
    const first = await js.publish("weir.ingest.d", body, { msgID: "m-1" });
    const again = await js.publish("weir.ingest.d", body, { msgID: "m-1" }); // the stream's window drops it
    expect([first.duplicate, again.duplicate, again.seq]).toEqual([false, true, first.seq]);
    await js.publish("weir.ingest.d", new TextEncoder().encode(JSON.stringify({ name: "nats.dup", ts, id: "evt-1" }))); // the event id again
    await waitFor(settled, 10_000, "acknowledged");
    expect(await metric("weir_events_ingested_total")).toBe(before + 2);
    expect(await metric("weir_events_duplicate_total")).toBe(1);
  });

  test("nats - a malformed message is terminated, not redelivered, and listed with its reason and stream sequence", async () => {
    const ack = await js.publish("weir.ingest.bad", new TextEncoder().encode("{nope"));
    const allInvalid = await js.publish("weir.ingest.bad", new TextEncoder().encode(JSON.stringify([{ name: "9bad" }])));
    await waitFor(settled, 10_000, "both taken");
    const c = await consumer();
    expect(c.num_redelivered).toBe(0);
    const dl = (await (await fetch(`${weir.url}/api/v1/deadletters`)).json()).deadletters as Array<{ reason: string; source?: { nats: { seq: number } } }>;
    expect(dl.find((d) => d.source?.nats.seq === ack.seq)?.reason).toBe("body: invalid JSON");
    expect(dl.find((d) => d.source?.nats.seq === allInvalid.seq)?.reason).toBe("name: must match ^[A-Za-z_][A-Za-z0-9_.:-]*$");
    expect(await metric('weir_nats_messages_total{outcome="terminated"}')).toBe(2);
    expect([await metric("weir_nats_messages_waiting"), await metric("weir_nats_connected")]).toEqual([0, 1]);
  });

  test("nats - HTTP ingest goes through JetStream; while NATS is away it answers 503 with Retry-After and /ready says why; then it resumes", async () => {
    const post = (body: string) => fetch(`${weir.url}/api/v1/events`, { method: "POST", body, headers: { "content-type": "application/json" }, signal: AbortSignal.timeout(10_000) });
    const ok = await post(JSON.stringify([{ name: "nats.http", value: 5 }, { name: "9" }]));
    expect([ok.status, await ok.json()]).toEqual([202, { accepted: 1, rejected: 1, errors: [{ index: 1, error: "name: must match ^[A-Za-z_][A-Za-z0-9_.:-]*$" }] }]);
    await waitFor(async () => (await (await fetch(`${weir.url}/api/v1/series?match=nats.http`)).json()).series.length === 1, 10_000, "the HTTP event aggregated");
    // A body with no valid event is not published: it is counted and dead-lettered by the HTTP front itself.
    const rejectedBefore = await metric('weir_events_rejected_total{reason="invalid"}');
    const none = await post(JSON.stringify([{ name: "9none" }]));
    expect(none.status).toBe(400);
    expect(await metric('weir_events_rejected_total{reason="invalid"}')).toBe(rejectedBefore + 1);
    const dl = (await (await fetch(`${weir.url}/api/v1/deadletters?limit=1`)).json()).deadletters;
    expect([dl[0].reason, dl[0].event]).toEqual(["name: must match ^[A-Za-z_][A-Za-z0-9_.:-]*$", { name: "9none" }]);
    await nats.kill();
    await waitFor(async () => (await fetch(`${weir.url}/ready`)).status === 503, 10_000, "/ready says NATS is away");
    expect((await (await fetch(`${weir.url}/ready`)).json()).problems).toContain(`nats: not connected to ${nats.url}`);
    expect(await metric("weir_nats_connected")).toBe(0);
    const refused = await post(JSON.stringify({ name: "nats.http", value: 6 }));
    expect([refused.status, refused.headers.get("retry-after") !== null]).toEqual([503, true]);
    expect((await refused.json()).error).toStartWith("overloaded: nats:");
    expect((await fetch(`${weir.url}/api/v1/series?match=nats.*`)).status).toBe(200); // reads go on
    await nats.restart();
    await waitFor(async () => (await fetch(`${weir.url}/ready`)).status === 200, 15_000, "ready again");
    await waitFor(async () => (await post(JSON.stringify({ name: "nats.http", value: 7 }))).status === 202, 10_000, "HTTP ingest again");
    // The consumer took up pulling again by itself: the event published after the outage is aggregated.
    await waitFor(async () => (await (await fetch(`${weir.url}/api/v1/series?match=nats.http`)).json()).series[0]?.last?.value === 7, 15_000, "the consumer resumed");
  });
});

describe("nats - commit-then-ack", () => {
  test("nats - a message stays unacknowledged while its checkpoint's commit is held, and is acknowledged once it commits", async () => {
    const nats = await startNatsServer();
    const weir = await startTestWeir({ WEIR_NATS_URL: nats.url, WEIR_CHECKPOINT_INTERVAL: "100ms", WEIR_FAILPOINTS: "1" });
    const nc = await connect({ servers: nats.url });
    try {
      const js = jetstream(nc);
      const jsm = await jetstreamManager(nc);
      const info = () => jsm.consumers.info("WEIR_INGEST", "weir-ingest");
      const release = weir.engine.holdStoreWriter();
      await js.publish("weir.ingest.held", new TextEncoder().encode(JSON.stringify({ name: "nats.held", ts: Date.now() - 1000 })));
      await waitFor(async () => weir.engine.processedEvents(0) + weir.engine.processedEvents(1) === 1, 5_000, "the event aggregated");
      await waitFor(() => weir.engine.commitsWaiting === 1, 5_000, "the message waiting for its commit");
      // Its partition's checkpoint is taken and on the (held) store writer: the message is aggregated, not committed.
      await waitFor(() => weir.engine.commitInFlight(0) || weir.engine.commitInFlight(1), 5_000, "a checkpoint's commit on the held writer");
      expect((await info()).num_ack_pending).toBe(1);
      release();
      await waitFor(async () => (await info()).num_ack_pending === 0, 10_000, "acknowledged after the commit");
      expect([weir.engine.commitsWaiting, (await info()).num_redelivered]).toEqual([0, 0]);
    } finally {
      await nc.close();
      await weir.stop();
      await nats.stop();
    }
  });

  test("nats - durable profile: a message whose group fsync fails is not acknowledged; it comes again and is counted once", async () => {
    const nats = await startNatsServer();
    const weir = await startTestWeir({ WEIR_NATS_URL: nats.url, WEIR_CHECKPOINT_INTERVAL: "100ms", WEIR_FAILPOINTS: "1", WEIR_DURABILITY: "durable" });
    const nc = await connect({ servers: nats.url });
    try {
      const js = jetstream(nc);
      const jsm = await jetstreamManager(nc);
      weir.engine.failNextFsync();
      await js.publish("weir.ingest.fsync", new TextEncoder().encode(JSON.stringify([{ name: "nats.fsync", ts: Date.now() - 1000, value: 4 }])));
      await waitFor(async () => {
        const c = await jsm.consumers.info("WEIR_INGEST", "weir-ingest");
        return c.num_pending === 0 && c.num_ack_pending === 0;
      }, 15_000, "acknowledged after a redelivery");
      const c = await jsm.consumers.info("WEIR_INGEST", "weir-ingest");
      expect(c.delivered.consumer_seq).toBe(2); // delivered twice: refused by the failed fsync, then taken
      const text = await (await fetch(`${weir.url}/metrics`)).text();
      expect(text).toContain("weir_events_ingested_total 1\n");
    } finally {
      await nc.close();
      await weir.stop();
      await nats.stop();
    }
  });
});

describe("nats - results out", () => {
  test("nats - while the link is down results wait in a bounded queue and go out in order once it is back; past the bound they are counted as dropped (they stay in the store)", () => {
    let up = false;
    const published: string[] = [];
    const link = { url: "nats://x", connected: () => up, nc: { publish: (subject: string) => published.push(subject) } } as unknown as NatsLink;
    const out = new NatsResults(link);
    const w = { series: "a", window: "10s", start: 0, end: 10_000, count: 1, sum: 1, min: 1, max: 1, avg: 1, p50: 1, p95: 1, p99: 1, first: 1, last: 1 };
    out.window("10s", "w|10s|a|0", w);
    out.anomaly("a|a|1", { series: "a" });
    expect([published, out.queued, out.dropped]).toEqual([[], 3, 0]); // an anomaly goes out twice: as an anomaly and as an alert
    up = true;
    out.trend("t|a|1", { series: "a" });
    expect([published, out.queued, out.dropped]).toEqual([["weir.out.windows.10s", "weir.out.anomalies", "weir.out.alerts", "weir.out.trends"], 0, 0]);
    up = false;
    for (let i = 0; i < limits.natsResultsWaitingMax + 2; i++) out.window("10s", `w|10s|a|${i}`, w);
    expect([out.queued, out.dropped]).toEqual([limits.natsResultsWaitingMax, 2]);
    up = true;
    out.flush();
    expect([published.length, out.queued]).toEqual([4 + limits.natsResultsWaitingMax, 0]);
    out.close();
  });
});
