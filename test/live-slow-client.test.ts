import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { waitFor } from "./helpers/wait.ts";
import { postEvents, startTestWeir, type TestWeir } from "./helpers/weir.ts";

/** A client frame: FIN + text, masked as clients must. */
function frame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([9, 8, 7, 6]);
  const head = payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 255]);
  return Buffer.concat([head, mask, Buffer.from(payload.map((b, k) => b ^ mask[k % 4]))]);
}

describe("live - a client that never reads", () => {
  let w: TestWeir;
  let stalled: Socket;
  beforeAll(async () => {
    w = await startTestWeir();
  });
  afterAll(async () => {
    stalled?.destroy();
    await w.stop();
  });

  test("live - is closed with 1013 once its buffer passes the bound, while a healthy client gets every window", async () => {
    // 5,000 series × 14 closed 10 s windows: 70,000 window messages (~20 MB) to each client.
    const expected = 5000 * 14;
    const port = Number(new URL(w.url).port);
    stalled = connect(port, "127.0.0.1", () => {
      stalled.write(`GET /ws/live HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      stalled.write(frame(JSON.stringify({ op: "subscribe", topics: ["windows:10s:*"] })));
      stalled.once("data", () => stalled.pause()); // the handshake answer, then never read again
    });
    const healthy = Bun.spawn(["bun", join(import.meta.dir, "fixtures/ws-count.ts"), w.url.replace("http", "ws") + "/ws/live", String(expected), "40"], { stdout: "pipe" });
    const lines = healthy.stdout.pipeThrough(new TextDecoderStream()).getReader();
    expect((await lines.read()).value).toContain("subscribed");
    await waitFor(() => w.engine.fanout.size === 2, 5000, "both clients registered");

    const base = Math.floor(Date.now() / 10_000) * 10_000 - 3 * 3_600_000;
    for (let batch = 0; batch < 5; batch++) {
      const evs = [];
      for (let s = batch * 1000; s < (batch + 1) * 1000; s++) {
        for (let k = 0; k <= 14; k++) evs.push({ name: "slow.v", value: k, ts: base + k * 10_000 + (k === 14 ? 2_000 : 0), tags: { s: String(s) } });
      }
      expect((await postEvents(w.url, JSON.stringify(evs))).status).toBe(202);
    }
    let out = "";
    for (let r = await lines.read(); !r.done; r = await lines.read()) out += r.value;
    await healthy.exited;
    expect(out.trim()).toBe(`count ${expected} close 0`);
    await waitFor(() => w.engine.fanout.size === 0, 10_000, "the stalled client dropped (and the healthy one gone)");
    expect(w.engine.fanout.closed).toEqual({ slow: 1, full: 0 });
  }, 60_000);
});
