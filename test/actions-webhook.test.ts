import { afterEach, describe, expect, test } from "bun:test";
import type { RuleAlert } from "../src/actions/action.ts";
import { idempotencyKey, WebhookAction, type WebhookOptions } from "../src/actions/webhook.ts";
import { createLog, silentLog } from "../src/runtime/log.ts";
import { waitFor } from "./helpers/wait.ts";
import { gate, never, reply, startReceiver, type Receiver, type Responder } from "./helpers/receiver.ts";

const alert = (over: Partial<RuleAlert> = {}): RuleAlert => ({
  kind: "rule", rule: "complaint-sla", series: 'complaint.response_time{team="support"}', state: "firing",
  value: 180000, threshold: 172800, severity: "critical", labels: { owner: "ops" },
  advice: "Mean response 180000 s is over 172800 s: open the escalation pipeline", ts: 1763800000000, ...over,
});
const ok = () => reply(200, { ok: true });

let receivers: Receiver[] = [];
let hooks: WebhookAction[] = [];
function receiver(respond: Responder): Receiver {
  const r = startReceiver(respond);
  receivers.push(r);
  return r;
}
function hook(r: Receiver, o: Partial<WebhookOptions> = {}, deps: Partial<ConstructorParameters<typeof WebhookAction>[1]> = {}): WebhookAction {
  const h = new WebhookAction(
    { name: "escalate", url: `${r.url}/hook`, timeoutMs: 2000, retriesMax: 3, queueMax: 100, breaker: { failuresToOpen: 5, openMs: 1000 }, ...o },
    { log: silentLog, ...deps },
  );
  hooks.push(h);
  return h;
}
afterEach(async () => {
  await Promise.all(hooks.map((h) => h.close(0)));
  await Promise.all(receivers.map((r) => r.stop()));
  [hooks, receivers] = [[], []];
});
const gaps = (r: Receiver) => r.received.slice(1).map((q, i) => q.at - r.received[i].at);

describe("actions - webhook delivery", () => {
  test("actions - webhook POSTs the alert's exact JSON with its Idempotency-Key", async () => {
    const r = receiver(ok);
    const h = hook(r);
    const a = alert();
    const before = Date.now();
    h.deliver(a);
    await waitFor(() => h.status().delivered === 1, 2000, "the alert delivered");
    expect(r.received).toHaveLength(1);
    const q = r.received[0];
    expect([q.method, q.path, q.body]).toEqual(["POST", "/hook", JSON.stringify(a)]);
    expect(JSON.parse(q.body)).toEqual(a);
    expect(q.headers.get("idempotency-key")).toBe('complaint-sla/complaint.response_time{team="support"}/firing/1763800000000');
    expect(q.headers.get("content-type")).toBe("application/json");
    const s = h.status();
    expect(s).toMatchObject({ name: "escalate", type: "webhook", delivered: 1, failed: 0, dropped: 0, retries: 0, queueDepth: 0, inFlight: 0, lastError: null });
    expect(s.lastSuccessAt!).toBeGreaterThanOrEqual(before);
    expect(s.breaker).toEqual({ state: "closed", consecutiveFailures: 0, openUntil: null, opens: 0 });
  });

  test("actions - the Idempotency-Key is printable ASCII: other characters and % are percent-encoded", async () => {
    const r = receiver(ok);
    const h = hook(r);
    h.deliver(alert({ series: 'page.load{page="/café 100%"}', state: "resolved", ts: 5 }));
    await waitFor(() => h.status().delivered === 1, 2000, "delivered");
    expect(r.received[0].headers.get("idempotency-key")).toBe('complaint-sla/page.load{page="/caf%C3%A9 100%25"}/resolved/5');
    expect(idempotencyKey({ rule: "r", series: "s\ud800", state: "pending", ts: 1 })).toBe("r/s%EF%BF%BD/pending/1");
  });

  test("actions - 503 + Retry-After is retried after the time asked, same body and key", async () => {
    const r = receiver((_q, i) => (i < 2 ? reply(503, { error: "busy" }, { "Retry-After": "1" }) : ok()));
    const h = hook(r);
    h.deliver(alert());
    await waitFor(() => h.status().delivered === 1, 5000, "delivered on the third attempt");
    expect(r.received).toHaveLength(3);
    for (const g of gaps(r)) expect(g).toBeGreaterThanOrEqual(990);
    expect(new Set(r.received.map((q) => `${q.headers.get("idempotency-key")} ${q.body}`)).size).toBe(1);
    expect(h.status()).toMatchObject({ delivered: 1, failed: 0, retries: 2, lastError: 'HTTP 503: {"error":"busy"}' });
  }, 10_000);

  test("actions - without Retry-After the back-off doubles (equal jitter: at least half of 200, 400, 800 ms)", async () => {
    const r = receiver((_q, i) => (i < 3 ? reply(500, {}) : ok()));
    const h = hook(r, {}, { random: () => 0 });
    h.deliver(alert());
    await waitFor(() => h.status().delivered === 1, 5000, "delivered on the fourth attempt");
    const g = gaps(r);
    expect(g).toHaveLength(3);
    [100, 200, 400].forEach((min, i) => expect(g[i]).toBeGreaterThanOrEqual(min - 2));
    expect(h.status()).toMatchObject({ delivered: 1, retries: 3 });
  });

  test("actions - retries spent: the alert fails with the last error; a 4xx or a redirect fails at once", async () => {
    const down = receiver(() => reply(500, { error: "boom" }));
    const h1 = hook(down, { retriesMax: 2 }, { random: () => 0 });
    h1.deliver(alert());
    await waitFor(() => h1.status().failed === 1, 3000, "failed after 3 attempts");
    expect(down.received).toHaveLength(3);
    expect(h1.status()).toMatchObject({ delivered: 0, failed: 1, retries: 2, lastError: 'HTTP 500: {"error":"boom"}' });

    const refusing = receiver((q) => (q.path === "/moved" ? new Response(null, { status: 301, headers: { location: "/hook" } }) : reply(400, { error: "bad payload" })));
    const h2 = hook(refusing);
    h2.deliver(alert());
    await waitFor(() => h2.status().failed === 1, 2000, "refused");
    expect(h2.status()).toMatchObject({ failed: 1, retries: 0, lastError: 'HTTP 400: {"error":"bad payload"}' });
    const h3 = hook(refusing, { url: `${refusing.url}/moved` });
    h3.deliver(alert());
    await waitFor(() => h3.status().failed === 1, 2000, "redirect refused");
    expect(h3.status().lastError).toBe("HTTP 301: redirects are not followed, give the final URL");
    expect(refusing.received.map((q) => q.path)).toEqual(["/hook", "/moved"]);
    expect(h2.status().breaker!.state).toBe("closed");
  });

  test("actions - a receiver that never answers is cut off after timeoutMs, then retried", async () => {
    const r = receiver(() => never());
    const h = hook(r, { timeoutMs: 100, retriesMax: 1 }, { random: () => 0 });
    h.deliver(alert());
    await waitFor(() => h.status().failed === 1, 2000, "failed after two timeouts");
    expect(r.received).toHaveLength(2);
    expect(h.status()).toMatchObject({ failed: 1, retries: 1, lastError: "no answer within 100 ms" });
  });

  test("actions - a full queue drops its oldest waiting alert, counted and logged once; the rest go out in order", async () => {
    const g = gate();
    const r = receiver(async () => {
      await g.promise;
      return ok();
    });
    const lines: string[] = [];
    const h = hook(r, { queueMax: 3 }, { log: createLog("info", {}, (l) => lines.push(l)) });
    const t0 = performance.now();
    for (let ts = 1; ts <= 6; ts++) h.deliver(alert({ ts }));
    expect(performance.now() - t0).toBeLessThan(20);
    expect(h.status()).toMatchObject({ queueDepth: 3, queueMax: 3, inFlight: 1, dropped: 2 });
    expect(lines.map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ level: "warn", msg: "action queue full: dropping the oldest waiting alerts", action: "escalate", queueMax: 3 })]);
    g.open();
    await waitFor(() => h.status().delivered === 4, 2000, "the four kept alerts delivered");
    expect(r.received.map((q) => JSON.parse(q.body).ts)).toEqual([1, 4, 5, 6]);
    expect(h.status()).toMatchObject({ delivered: 4, dropped: 2, failed: 0, queueDepth: 0, inFlight: 0 });
  });

  test("actions - close waits for the queue to drain, bounded: what is left counts as failed; later alerts fail", async () => {
    const g = gate();
    const slow = receiver(async () => {
      await g.promise;
      return ok();
    });
    const h = hook(slow);
    h.deliver(alert({ ts: 1 }));
    h.deliver(alert({ ts: 2 }));
    const closed = h.close(5000);
    g.open();
    await closed;
    expect(h.status()).toMatchObject({ delivered: 2, failed: 0 });

    const dead = receiver(() => never());
    const h2 = hook(dead, { timeoutMs: 10_000 });
    for (let ts = 1; ts <= 3; ts++) h2.deliver(alert({ ts }));
    await waitFor(() => dead.received.length === 1, 2000, "the first alert in flight");
    const t0 = performance.now();
    await h2.close(150);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(h2.status()).toMatchObject({ delivered: 0, failed: 3, queueDepth: 0, inFlight: 0, lastError: "weir stopped before this alert was delivered" });
    h2.deliver(alert({ ts: 4 }));
    expect(h2.status()).toMatchObject({ failed: 4, lastError: "action closed before this alert came" });
    expect(dead.received).toHaveLength(1);
  });
});

describe("actions - webhook circuit breaker", () => {
  test("actions - breaker opens after N failures, holds alerts without the network, probes once after openMs, closes on success", async () => {
    const probe = gate();
    const r = receiver(async (_q, i) => {
      if (i < 3) return reply(500, {});
      if (i === 3) await probe.promise;
      return ok();
    });
    const h = hook(r, { retriesMax: 10, breaker: { failuresToOpen: 3, openMs: 300 } }, { random: () => 0 });
    h.deliver(alert({ ts: 1 }));
    await waitFor(() => h.status().breaker!.state === "open", 3000, "the breaker open");
    expect(r.received).toHaveLength(3);
    expect(h.status().breaker).toMatchObject({ state: "open", consecutiveFailures: 3, opens: 1 });
    h.deliver(alert({ ts: 2 }));
    expect(h.status()).toMatchObject({ queueDepth: 1, inFlight: 1 });
    await waitFor(() => r.received.length === 4, 2000, "the probe");
    expect(r.received[3].at - r.received[2].at).toBeGreaterThanOrEqual(300 - 2);
    expect(h.status().breaker!.state).toBe("half_open");
    expect(r.received).toHaveLength(4);
    probe.open();
    await waitFor(() => h.status().delivered === 2, 2000, "both alerts delivered");
    expect(r.received.map((q) => JSON.parse(q.body).ts)).toEqual([1, 1, 1, 1, 2]);
    expect(h.status()).toMatchObject({ delivered: 2, failed: 0, retries: 3, breaker: { state: "closed", consecutiveFailures: 0, openUntil: null, opens: 1 } });
  });

  test("actions - a failed probe opens the breaker again for another openMs", async () => {
    const r = receiver((_q, i) => (i < 3 ? reply(503, {}) : ok()));
    const h = hook(r, { retriesMax: 10, breaker: { failuresToOpen: 2, openMs: 200 } }, { random: () => 0 });
    h.deliver(alert());
    await waitFor(() => h.status().delivered === 1, 3000, "delivered after two openings");
    const g = gaps(r);
    expect(g[1]).toBeGreaterThanOrEqual(200 - 2);
    expect(g[2]).toBeGreaterThanOrEqual(200 - 2);
    expect(h.status().breaker).toEqual({ state: "closed", consecutiveFailures: 0, openUntil: null, opens: 2 });
  });
});
