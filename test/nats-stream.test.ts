/**
 * weir's NATS groundwork against a real `nats-server -js` (test/helpers/
 * nats-server.ts): stream WEIR_INGEST made as asked and never changed,
 * JetStream's Nats-Msg-Id de-duplication, and the connection's view of an
 * outage (kill -9 of the server, then a restart on the same port and store).
 * Tests run in order on one server; every wait is on a condition with a
 * deadline.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { connectNats, type NatsLink } from "../src/nats/connection.ts";
import { IngestStreamError, NatsUnavailableError } from "../src/nats/errors.ts";
import { ensureIngestStream, ingestStreamDefaults, type IngestStreamSettings } from "../src/nats/ingest-stream.ts";
import { limits } from "../src/runtime/limits.ts";
import { ingestSubject } from "../src/nats/subjects.ts";
import { startNatsServer, type NatsServer } from "./helpers/nats-server.ts";
import { waitFor } from "./helpers/wait.ts";

const hourMs = 3_600_000;
const asked: IngestStreamSettings = { ...ingestStreamDefaults, duplicateWindowMs: 60_000, maxAgeMs: hourMs };
const outageTestMs = 30_000;
const linkChangeMsMax = 10_000; // a disconnect is seen at once (the socket closes); a reconnect within reconnectWaitMs of the restart

let nats: NatsServer;
let link: NatsLink;
let jsm: JetStreamManager;

beforeAll(async () => {
  nats = await startNatsServer();
  link = await connectNats(nats.url, { name: "weir-test" });
  jsm = await jetstreamManager(link.nc, { timeout: limits.natsApiTimeoutMs });
});

afterAll(async () => {
  await link?.close();
  await nats?.stop();
});

/** The IngestStreamError `run` throws (fails the test if it throws none or another). */
async function streamError(run: () => Promise<unknown>): Promise<IngestStreamError> {
  const e = await run().then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(IngestStreamError);
  return e as IngestStreamError;
}

describe("nats stream WEIR_INGEST", () => {
  test("nats - a missing stream is created with the asked subjects, file storage, limits retention, max_age and duplicate window", async () => {
    const { created } = await ensureIngestStream(jsm, asked);
    expect(created).toBe(true);
    const { config } = await jsm.streams.info("WEIR_INGEST");
    expect({ subjects: config.subjects, storage: config.storage, retention: config.retention, max_age: config.max_age, duplicate_window: config.duplicate_window })
      .toEqual({ subjects: ["weir.ingest.>"], storage: "file", retention: "limits", max_age: nanos(hourMs), duplicate_window: nanos(60_000) } as never);
  });

  test("nats - a second ensure with the same settings is a no-op: same stream, same messages", async () => {
    await jetstream(link.nc).publish(ingestSubject("dev-1"), "{}");
    const before = await jsm.streams.info("WEIR_INGEST");
    const { created, info } = await ensureIngestStream(jsm, asked);
    expect(created).toBe(false);
    expect(info.created).toBe(before.created);
    expect(info.config).toEqual(before.config);
    expect(info.state.messages).toBe(before.state.messages);
  });

  test("nats - other settings throw an error naming each difference, and the stream is left as it was", async () => {
    const before = await jsm.streams.info("WEIR_INGEST");
    const e = await streamError(() => ensureIngestStream(jsm, { ...asked, maxAgeMs: 7 * 24 * hourMs, duplicateWindowMs: 2 * 60_000 }));
    expect(e.code).toBe("nats_stream");
    expect(e.differences).toEqual([
      { field: "max_age", have: "1h", want: "7d" },
      { field: "duplicate_window", have: "1m", want: "2m" },
    ]);
    expect(e.message).toContain("nats: stream WEIR_INGEST exists with other settings (max_age: have 1h, want 7d; duplicate_window: have 1m, want 2m)");
    const after = await jsm.streams.info("WEIR_INGEST");
    expect(after.config).toEqual(before.config);
    expect(after.state.messages).toBe(before.state.messages);
  });

  test("nats - other subjects are a difference too, not a second stream", async () => {
    const e = await streamError(() => ensureIngestStream(jsm, { ...asked, subjects: ["weir.ingest.>", "weir.extra.>"] }));
    expect(e.differences).toEqual([{ field: "subjects", have: "weir.ingest.>", want: "weir.extra.>, weir.ingest.>" }]);
    expect(await jsm.streams.names().next()).toEqual(["WEIR_INGEST"]);
  });

  test("nats - JetStream stores two publishes with the same Nats-Msg-Id within the window once (ack duplicate true)", async () => {
    const js = jetstream(link.nc);
    const before = (await jsm.streams.info("WEIR_INGEST")).state.messages;
    const first = await js.publish(ingestSubject("dev-1"), '{"name":"a","value":1}', { msgID: "msg-1" });
    const again = await js.publish(ingestSubject("dev-1"), '{"name":"a","value":1}', { msgID: "msg-1" });
    const other = await js.publish(ingestSubject("dev-1"), '{"name":"a","value":1}', { msgID: "msg-2" });
    expect([first.duplicate, again.duplicate, other.duplicate]).toEqual([false, true, false]);
    expect(again.seq).toBe(first.seq);
    expect(other.seq).toBe(first.seq + 1);
    expect((await jsm.streams.info("WEIR_INGEST")).state.messages).toBe(before + 2);
  });
});

describe("nats connection", () => {
  test("nats - connecting where no server listens fails with NatsUnavailableError naming the URL", async () => {
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const url = `nats://127.0.0.1:${probe.port}`;
    probe.stop(true);
    const e = await connectNats(url).then(() => null, (err: unknown) => err);
    expect(e).toBeInstanceOf(NatsUnavailableError);
    expect((e as NatsUnavailableError).code).toBe("nats_unavailable");
    expect((e as Error).message).toStartWith(`nats: cannot connect to ${url}: `);
  });

  test("nats - the link reports disconnected after the server is killed, fails requests as unavailable, and reconnects by itself after a restart", async () => {
    const quickJsm = await jetstreamManager(link.nc, { timeout: 500 }); // a request in the outage fails fast
    expect(link.connected()).toBe(true);
    const disconnectsBefore = link.disconnects();

    await nats.kill();
    await waitFor(() => !link.connected(), linkChangeMsMax, "the link to report disconnected");
    expect(link.disconnects()).toBe(disconnectsBefore + 1);
    const down = await ensureIngestStream(quickJsm, asked).then(() => null, (err: unknown) => err);
    expect(down).toBeInstanceOf(NatsUnavailableError);
    expect((down as Error).message).toStartWith("nats: stream info WEIR_INGEST: ");
    const again = await connectNats(nats.url).then(() => null, (err: unknown) => err);
    expect(again).toBeInstanceOf(NatsUnavailableError);

    await nats.restart();
    await waitFor(() => link.connected(), linkChangeMsMax, "the link to report connected again");
    expect(link.disconnects()).toBe(disconnectsBefore + 1);
    // File storage: the stream and its messages survived the kill.
    const { created, info } = await ensureIngestStream(jsm, asked);
    expect(created).toBe(false);
    expect(info.state.messages).toBe(3);
  }, outageTestMs);
});
