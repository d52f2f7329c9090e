/**
 * Sensitive fields in NATS mode, end to end, against a real `nats-server
 * -js`: a weir with `pii:` configured receives an e-mail, a card number, an
 * IP and a phone number over HTTP JSON and line protocol (which it
 * publishes to JetStream itself), plus an invalid event carrying others.
 * Everything weir publishes is captured off NATS (its ingest subject and
 * weir.out.*), the live stream and the log are captured, weir compacts
 * into Parquet and stops, nats-server stops. Then every byte of the NATS
 * store directory, weir's data directory, the log, the live output and the
 * captured messages is scanned for each raw string: none.
 *
 * A producer that publishes to weir.ingest.* itself puts its own bytes into
 * JetStream (weir cannot reach them before it does): its values are
 * scrubbed by weir's consumer, so they are in nothing weir writes,
 * publishes, pushes or logs; the test sends one such message too, and
 * scans for its values everywhere but the NATS store.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config.ts";
import { createLog } from "../src/runtime/log.ts";
import { startWeir, type Weir } from "../src/server.ts";
import { startNatsServer, type NatsServer } from "./helpers/nats-server.ts";
import { piiToken, scanForRaw, walk } from "./helpers/pii-scan.ts";
import { readSse } from "./helpers/sse.ts";
import { waitFor } from "./helpers/wait.ts";

const piiKey = "nats-scan-key-0123456789";
const tokens = { ingest: "ingest-token-1", read: "read-token-1", pii: "readpii-token-1" };
const email = "carol.secret@example.com";
const card = "4111 1111 1111 1111";
const ip = "198.51.100.23";
const phone = "+4915187654321";
/** Sent over HTTP: weir publishes them to NATS, so they must be in no byte anywhere, NATS's store included. */
const rawHttp = [email, card, card.replaceAll(" ", ""), card.replaceAll(" ", "\\ "), ip, phone, "dave.hidden@example.org", "5555555555554444"];
/** Published to NATS by a producer itself: in JetStream by its hand, in nothing weir writes or sends. */
const producerEmail = "erin.direct@example.net";
const producerIp = "192.0.2.200";
const tokenOf = (v: string) => piiToken(piiKey, v);

let dir: string;
let nats: NatsServer;
let nc: NatsConnection;
let w: Weir;
const logLines: string[] = [];
const live: Array<{ event: string; data: unknown }> = [];
let sse: { cancel: () => Promise<void> };
const published: Array<{ subject: string; data: Uint8Array }> = [];
const t0 = Math.floor((Date.now() - 120_000) / 10_000) * 10_000;

const headers = (t: string, ct = "application/json") => ({ authorization: `Bearer ${t}`, "content-type": ct });
const post = (path: string, body: string, ct = "application/json") => fetch(`${w.url}${path}`, { method: "POST", headers: headers(tokens.ingest, ct), body });
const signup = (ts: number) => ({ name: "shop.signup", ts, value: 1, tags: { card, phone, page: "/join" }, props: { email, client_ip: ip } });
const publishedText = () => Buffer.concat(published.map((m) => Buffer.concat([Buffer.from(m.subject + "\n"), Buffer.from(m.data)])));

async function sql(q: string) {
  const res = await fetch(`${w.url}/api/v1/query`, { method: "POST", headers: headers(tokens.pii), body: JSON.stringify({ sql: q }) });
  return { status: res.status, body: await res.json() as { rows: unknown[][] } };
}

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  const sub = nc.subscribe(">"); // everything anyone publishes: weir's ingest messages and its results
  void (async () => {
    for await (const m of sub) if (!m.subject.startsWith("$JS") && !m.subject.startsWith("_INBOX")) published.push({ subject: m.subject, data: m.data });
  })();
  dir = mkdtempSync(join(tmpdir(), "weir-pii-nats-"));
  const configPath = join(dir, "weir.yaml");
  writeFileSync(configPath, "pii:\n  keys: [email, user_email]\n  detect: [email, card, ip, phone]\n  mode: hash\n");
  const cfg = loadConfig({
    WEIR_PORT: "0", WEIR_DATA_DIR: join(dir, "data"), WEIR_PARTITIONS: "2", WEIR_CONFIG: configPath, WEIR_PII_KEY: piiKey, WEIR_NATS_URL: nats.url,
    WEIR_TOKENS: `${tokens.ingest}:ingest,${tokens.read}:read,${tokens.pii}:read+pii`,
    WEIR_WINDOWS: "10s", WEIR_LATENESS: "0", WEIR_CHECKPOINT_INTERVAL: "100ms", WEIR_LAKE_INTERVAL: "1h", WEIR_LAKE_CURATED_INTERVAL: "1h", WEIR_LOG_LEVEL: "debug",
  });
  w = await startWeir(cfg, createLog("debug", {}, (line) => logLines.push(line)));
  sse = readSse(await fetch(`${w.url}/api/v1/stream?topic=${encodeURIComponent("windows:10s:*")}&token=${tokens.read}`), live);
  const body = [signup(t0), signup(t0 + 1000), { name: "shop.signup", value: "bad", tags: { card: "5555555555554444" }, props: { user_email: "dave.hidden@example.org", ip } }];
  expect((await post("/api/v1/events", JSON.stringify(body))).status).toBe(202);
  const ns = (ms: number) => `${ms}000000`;
  const lines = `shop.call,phone=${phone},card=${card.replaceAll(" ", "\\ ")} value=2 ${ns(t0 + 500)}`;
  expect((await post("/write?precision=ns", lines, "text/plain")).status).toBe(204);
  nc.publish("weir.ingest.site1", JSON.stringify([{ name: "shop.signup", ts: t0 + 2000, value: 1, tags: { page: "/join" }, props: { email: producerEmail, client_ip: producerIp } }]));
  const closers = [signup(t0 + 30_000), { name: "shop.call", ts: t0 + 30_000, value: 1, tags: { phone, card } }];
  expect((await post("/api/v1/events", JSON.stringify(closers))).status).toBe(202);
  await waitFor(() => {
    const text = JSON.stringify(live);
    return text.includes("shop.signup") && text.includes("shop.call") && published.some((m) => m.subject.startsWith("weir.out.windows."));
  }, 15_000, "both series' windows live and on weir.out.windows");
  await waitFor(async () => {
    await w.lake.flush();
    const r = await sql("SELECT count(*) FROM events");
    return r.status === 200 && Number(r.body.rows[0][0]) === 6;
  }, 15_000, "the six valid events in the lake");
}, 60_000);

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("pii - NATS mode end to end", () => {
  test("pii nats - the events reach the lake as tokens, the same for the same input, the producer's own too", async () => {
    const r = await sql("SELECT props->>'email' AS e, props->>'client_ip' AS ip, tags['card'] AS card FROM events WHERE name = 'shop.signup' ORDER BY ts");
    expect(r.body.rows).toEqual([
      [tokenOf(email), tokenOf(ip), tokenOf(card)], [tokenOf(email), tokenOf(ip), tokenOf(card)],
      [tokenOf(producerEmail), tokenOf(producerIp), null], [tokenOf(email), tokenOf(ip), tokenOf(card)],
    ]);
  });

  test("pii nats - what weir published to its ingest subject carries tokens, never the values", () => {
    const http = published.filter((m) => m.subject === "weir.ingest.http");
    const bodies = new Set(http.map((m) => Buffer.from(m.data).toString())); // ">" may see a stored message twice (its publish and JetStream's)
    expect(bodies.size).toBe(3); // two JSON bodies and the line-protocol body, each published as scrubbed JSON
    const text = [...bodies].join("\n");
    expect(text).toContain(tokenOf(email));
    expect(text).toContain(tokenOf(card));
  });

  test("pii nats - no raw value in the NATS store, the data directory, the log, the live output or any message weir sent", async () => {
    await sse.cancel();
    await w.stop();
    await nc.drain();
    process.kill(nats.pid, "SIGTERM"); // its store written out and kept for the scan (stop() would remove it)
    await waitFor(() => !nats.running, 10_000, "nats-server to exit");
    const store = walk(nats.storeDir);
    expect(store.some((f) => f.includes("WEIR_INGEST"))).toBe(true); // the stream's files are there to scan
    const fromWeir = published.filter((m) => m.subject !== "weir.ingest.site1"); // the producer's own message is its bytes, not weir's
    const bytes = { log: Buffer.from(logLines.join("\n")), live: Buffer.from(JSON.stringify(live)), published: Buffer.concat(fromWeir.map((m) => Buffer.from(m.data))) };
    expect(await scanForRaw({ nats: nats.storeDir, data: join(dir, "data") }, bytes, rawHttp)).toEqual([]);
    expect(await scanForRaw({ data: join(dir, "data") }, bytes, [producerEmail, producerIp])).toEqual([]);
    // The control: the scan does read the store, where the producer's own message sits as it published it.
    expect((await scanForRaw({ nats: nats.storeDir }, {}, [producerEmail])).length).toBeGreaterThan(0);
    expect(publishedText().includes(Buffer.from(tokenOf(email)))).toBe(true);
  }, 60_000);
});
