import { afterEach, describe, expect, test } from "bun:test";
import type { RuleAlert } from "../src/actions/action.ts";
import { ActionConfigError, buildActions, parseActions, type Actions } from "../src/actions/registry.ts";
import { WeirError } from "../src/runtime/errors.ts";
import { createLog, silentLog } from "../src/runtime/log.ts";
import { Gauge } from "../src/runtime/metrics.ts";
import { waitFor } from "./helpers/wait.ts";
import { never, reply, startReceiver, type Receiver } from "./helpers/receiver.ts";

const alert = (over: Partial<RuleAlert> = {}): RuleAlert => ({
  kind: "rule", rule: "page-load", series: 'page.load{page="/"}', state: "firing", value: 3400, threshold: 3000,
  severity: "warning", labels: {}, advice: "scale the UI tier", ts: 1763800000000, ...over,
});

let receivers: Receiver[] = [];
let built: Actions[] = [];
afterEach(async () => {
  await Promise.all(built.map((a) => a.close(0)));
  await Promise.all(receivers.map((r) => r.stop()));
  [receivers, built] = [[], []];
});

function configError(input: unknown): string {
  try {
    parseActions(input);
  } catch (e) {
    expect(e).toBeInstanceOf(ActionConfigError);
    expect((e as WeirError).code).toBe("bad_config");
    return (e as Error).message;
  }
  throw new Error("parseActions took it");
}

describe("actions - config", () => {
  test("actions - config: the API.md example, with every default filled in", () => {
    expect(parseActions({ escalate: { type: "webhook", url: "http://127.0.0.1:9000/hook", timeout: "5s", retries: 8 }, log: { type: "log" } })).toEqual({
      escalate: { type: "webhook", url: "http://127.0.0.1:9000/hook", timeout: 5000, retries: 8, queue: 1000, breaker: { failures: 5, open: 30_000 } },
      log: { type: "log" },
    });
    expect(parseActions({ h: { type: "webhook", url: "https://x.test/h", timeout: 250, queue: 10, breaker: { failures: 2, open: "1m" } } }).h)
      .toMatchObject({ timeout: 250, queue: 10, breaker: { failures: 2, open: 60_000 } });
    expect(parseActions({ bus: { type: "nats", subject: "ops.alerts" } })).toEqual({ bus: { type: "nats", subject: "ops.alerts" } });
    expect(parseActions(undefined)).toEqual({});
  });

  test("actions - config errors name the path at fault, in our words", () => {
    const url = "http://127.0.0.1:9000/hook";
    const cases: Array<[unknown, string]> = [
      [[], "actions: must be a map of action names to actions"],
      [{ "bad name": { type: "log" } }, "actions.bad name: a name must match ^[A-Za-z_][A-Za-z0-9_.-]*$ and be ≤ 64 characters"],
      [{ x: "log" }, "actions.x: must be a map such as {type: log}"],
      [{ x: {} }, "actions.x.type: required"],
      [{ x: { type: "email" } }, "actions.x.type: must be one of webhook, log, nats"],
      [{ hook: { type: "webhook" } }, "actions.hook.url: required"],
      [{ hook: { type: "webhook", url: "ftp://x" } }, "actions.hook.url: must be an http:// or https:// URL"],
      [{ hook: { type: "webhook", url, timeout: "5x" } }, 'actions.hook.timeout: duration "5x": unknown unit "x" (expected ms, s, m, h or d)'],
      [{ hook: { type: "webhook", url, timeout: "2m" } }, "actions.hook.timeout: must lie within [1 ms, 60000 ms]"],
      [{ hook: { type: "webhook", url, retries: -1 } }, "actions.hook.retries: must be ≥ 0"],
      [{ hook: { type: "webhook", url, retries: 1.5 } }, "actions.hook.retries: must be a whole number"],
      [{ hook: { type: "webhook", url, retries: "8" } }, "actions.hook.retries: must be a number"],
      [{ hook: { type: "webhook", url, queue: 0 } }, "actions.hook.queue: must be ≥ 1"],
      [{ hook: { type: "webhook", url, breaker: { failures: 0 } } }, "actions.hook.breaker.failures: must be ≥ 1"],
      [{ hook: { type: "webhook", url, breaker: { open: "1h" } } }, "actions.hook.breaker.open: must lie within [0 ms, 600000 ms]"],
      [{ hook: { type: "webhook", url, retry: 3 } }, "actions.hook.retry: unknown field"],
      [{ l: { type: "log", url } }, "actions.l.url: unknown field"],
      [{ bus: { type: "nats" } }, "actions.bus.subject: required"],
      [{ bus: { type: "nats", subject: "ops.*" } }, "actions.bus.subject: must be a NATS subject such as ops.alerts (no spaces or wildcards)"],
    ];
    for (const [input, message] of cases) expect(configError(input)).toBe(message);
    expect(configError(Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`a${i}`, { type: "log" }])))).toBe("actions: at most 64 actions");
  });

  test("actions - a nats action needs NATS mode; with a publisher it publishes the alert's JSON with its key as msg id", async () => {
    const specs = parseActions({ bus: { type: "nats", subject: "ops.alerts" } });
    expect(() => buildActions(specs, { log: silentLog })).toThrow(new ActionConfigError("actions.bus: type nats needs NATS mode (set WEIR_NATS_URL)"));
    const sent: Array<[string, string, string]> = [];
    let fail = false;
    const actions = buildActions(specs, {
      log: silentLog,
      natsPublish: async (subject, data, msgId) => {
        if (fail) throw new Error("connection closed");
        sent.push([subject, new TextDecoder().decode(data), msgId]);
      },
    });
    built.push(actions);
    actions.deliver(["bus"], alert());
    await waitFor(() => actions.status()[0].delivered === 1, 1000, "published");
    expect(sent).toEqual([["ops.alerts", JSON.stringify(alert()), 'page-load/page.load{page="/"}/firing/1763800000000']]);
    fail = true;
    actions.deliver(["bus"], alert());
    await waitFor(() => actions.status()[0].failed === 1, 1000, "failed");
    expect(actions.status()[0].lastError).toBe("nats: connection closed");
  });
});

describe("actions - fan-out", () => {
  test("actions - the log action writes one JSON line per alert: warn when firing, info otherwise", () => {
    const lines: string[] = [];
    const actions = buildActions(parseActions({ log: { type: "log" } }), { log: createLog("info", {}, (l) => lines.push(l)) });
    built.push(actions);
    actions.deliver(["log"], alert());
    actions.deliver(["log"], alert({ state: "resolved", ts: 1763800060000 }));
    expect(lines).toHaveLength(2);
    const [a, b] = lines.map((l) => JSON.parse(l));
    expect(a).toEqual({ ts: expect.any(String), level: "warn", msg: "rule alert", action: "log", alert: alert() });
    expect(b).toMatchObject({ level: "info", msg: "rule alert", alert: { state: "resolved", ts: 1763800060000 } });
    expect(actions.status()[0]).toMatchObject({ name: "log", type: "log", delivered: 2, failed: 0 });
  });

  test("actions - a webhook that never answers delays neither the caller nor another action", async () => {
    const slow = startReceiver(() => never());
    const fast = startReceiver(() => reply(204, null));
    receivers.push(slow, fast);
    const actions = buildActions(parseActions({
      slow: { type: "webhook", url: `${slow.url}/hook`, timeout: "10s" },
      fast: { type: "webhook", url: `${fast.url}/hook` },
      log: { type: "log" },
    }), { log: silentLog });
    built.push(actions);
    const t0 = performance.now();
    actions.deliver(["slow", "fast", "log"], alert({ ts: 1 }));
    expect(performance.now() - t0).toBeLessThan(20);
    await waitFor(() => fast.received.length === 1 && slow.received.length === 1, 2000, "both receivers reached");
    actions.deliver(["slow", "fast"], alert({ ts: 2 }));
    await waitFor(() => fast.received.length === 2, 2000, "the fast receiver's second alert");
    const [fastS, logS, slowS] = actions.status();
    expect(slowS).toMatchObject({ name: "slow", delivered: 0, inFlight: 1, queueDepth: 1 });
    expect(fastS).toMatchObject({ name: "fast", delivered: 2, inFlight: 0, queueDepth: 0 });
    expect(logS).toMatchObject({ name: "log", delivered: 1 });
    expect(slow.received).toHaveLength(1);
  });

  test("actions - status, delivery counters for weir_action_deliveries_total, unknown names, bounded close", async () => {
    const dead = startReceiver(() => never());
    receivers.push(dead);
    const lines: string[] = [];
    const actions = buildActions(parseActions({
      hook: { type: "webhook", url: dead.url, queue: 1 },
      log: { type: "log" },
    }), { log: createLog("info", {}, (l) => lines.push(l)) });
    expect(actions.names()).toEqual(["hook", "log"]);
    expect(actions.missing(["log", "pager", "hook", "sms"])).toEqual(["pager", "sms"]);
    for (let ts = 1; ts <= 3; ts++) actions.deliver(["hook", "log", "pager"], alert({ ts }));
    expect(lines.filter((l) => JSON.parse(l).msg === "rule names an action that is not configured")).toHaveLength(3);
    const t0 = performance.now();
    await actions.close(100);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(actions.deliveryCounters()).toEqual([
      [{ action: "hook", outcome: "delivered" }, 0],
      [{ action: "hook", outcome: "failed" }, 2],
      [{ action: "hook", outcome: "dropped" }, 1],
      [{ action: "log", outcome: "delivered" }, 3],
      [{ action: "log", outcome: "failed" }, 0],
      [{ action: "log", outcome: "dropped" }, 0],
    ]);
    const metric = new Gauge("weir_action_deliveries_total", "Alerts handed to actions, by outcome", () => actions.deliveryCounters(), "counter");
    expect(metric.render().split("\n").slice(2, 5)).toEqual([
      'weir_action_deliveries_total{action="hook",outcome="delivered"} 0',
      'weir_action_deliveries_total{action="hook",outcome="failed"} 2',
      'weir_action_deliveries_total{action="hook",outcome="dropped"} 1',
    ]);
    expect(actions.status()[0]).toMatchObject({ name: "hook", type: "webhook", queueMax: 1, lastError: "weir stopped before this alert was delivered", breaker: { state: "closed" } });
  });
});
