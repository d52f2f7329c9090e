/**
 * The ledger's check of alert rules and a view across kill -9: the rules below run in
 * weir from a config file, with a webhook receiver as their action; after
 * the run, the transitions a fresh RuleSet makes over the recounted windows
 * (the ledger's own, in event time) are compared with weir's stored
 * transitions and with what the webhook received. A transition after the
 * last window's end is left out on both sides (the silences that follow the
 * traffic are still being judged when the check runs).
 *
 * Exactly: every expected transition stored once, none more; every expected
 * firing and resolved delivered (by Idempotency-Key), none that was not
 * expected. A key delivered twice is counted (`redelivered`): a kill -9
 * between the webhook's answer and the `handed` mark hands it over again on
 * restart, with the same key (at-least-once, README "Rules").
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseWindowSpecs } from "../../src/actors/window-spec.ts";
import { parseRule } from "../../src/actors/rules/rule.ts";
import { RuleSet, type RuleTransition } from "../../src/actors/rules/rule-set.ts";
import type { WindowResult } from "../../src/actors/window.ts";
import { type Receiver, reply, startReceiver } from "../helpers/receiver.ts";
import type { WindowAgg } from "./checker.ts";

/** A direct rule with `for` and keep_firing_for, and a rolling one over two base windows: values are uniform in [-1000, 1000]. */
export const ledgerRules = [
  { name: "ledger-avg", expr: "avg(ledger.*) > 0", for: "10s", keep_firing_for: "10s", actions: ["hook"] },
  { name: "ledger-rolling", expr: "avg(ledger.*) over 20s > 0", actions: ["hook"] },
];

/** One view over every ledger series, one group (it gathers series of both partitions), 2 s windows. */
export const ledgerView = { name: "ledger_sum", from: "ledger.*", group_by: [], window: "2s", aggregates: ["count", "sum", "min", "max"] };
const viewWindowMs = 2_000;

export interface ViewReport { expected: number; equal: number; missing: string[]; differing: string[] }

/**
 * The view's windows against a recount of the acknowledged events: every
 * window ending before `beforeMs` (all its series' windows closed) equal in
 * count, sum, min and max.
 */
export async function checkView(url: string, events: ReadonlyArray<{ ts: number; value: number }>, beforeMs: number): Promise<ViewReport> {
  const want = new Map<number, { count: number; sum: number; min: number; max: number }>();
  for (const e of events) {
    const start = Math.floor(e.ts / viewWindowMs) * viewWindowMs;
    const w = want.get(start) ?? { count: 0, sum: 0, min: Infinity, max: -Infinity };
    w.count++;
    w.sum += e.value;
    w.min = Math.min(w.min, e.value);
    w.max = Math.max(w.max, e.value);
    want.set(start, w);
  }
  const body = await (await fetch(`${url}/api/v1/windows?series=view.ledger_sum&window=${ledgerView.window}&limit=10000`)).json();
  const got = new Map<number, { count: number; sum: number; min: number; max: number }>();
  for (const r of body.windows ?? []) got.set(r.start, { count: r.count, sum: r.sum, min: r.min, max: r.max });
  const keys = [...want.keys()].filter((s) => s + viewWindowMs <= beforeMs).sort((a, b) => a - b);
  const missing = keys.filter((k) => !got.has(k)).map(String);
  const differing = keys.filter((k) => got.has(k) && JSON.stringify(got.get(k)) !== JSON.stringify(want.get(k)))
    .map((k) => `${k}: got ${JSON.stringify(got.get(k))}, want ${JSON.stringify(want.get(k))}`);
  return { expected: keys.length, equal: keys.length - missing.length - differing.length, missing, differing };
}

export interface RulesRig {
  receiver: Receiver;
  /** WEIR_CONFIG for the weir under test. */
  configFile: string;
  stop(): Promise<void>;
}

export function startRulesRig(): RulesRig {
  const receiver = startReceiver(() => reply(200, {}));
  const dir = mkdtempSync(join(tmpdir(), "weir-ledger-rules-"));
  const configFile = join(dir, "rules.json");
  writeFileSync(configFile, JSON.stringify({ rules: ledgerRules, views: [ledgerView], actions: { hook: { type: "webhook", url: `${receiver.url}/hook` } } }));
  return { receiver, configFile, stop: () => receiver.stop() };
}

export interface RulesReport {
  expected: number;
  stored: number;
  missing: string[];
  unexpected: string[];
  deliveredExpected: number;
  deliveriesMissing: string[];
  deliveriesUnexpected: string[];
  redelivered: number;
}

const keyOf = (t: { rule: string; series: string; state: string; ts: number }) => `${t.rule}/${t.series}/${t.state}/${t.ts}`;

/** The transitions the rules make over the recounted windows of `baseLabel`, per series in event time, before `beforeMs`. */
export function expectedTransitions(windows: Iterable<WindowAgg>, specsText: string, baseLabel: string, beforeMs: number): RuleTransition[] {
  const specs = parseWindowSpecs(specsText);
  const set = new RuleSet({ windows: { specs } });
  for (const r of ledgerRules) set.set(parseRule(r, { windows: { specs } }));
  const bySeries = new Map<string, WindowAgg[]>();
  for (const w of windows) {
    if (w.window !== baseLabel) continue;
    let list = bySeries.get(w.series);
    if (list === undefined) bySeries.set(w.series, list = []);
    list.push(w);
  }
  const out: RuleTransition[] = [];
  let sid = 0;
  for (const [key, list] of bySeries) {
    const m = /^([^{]+)\{host="([^"]+)"\}$/.exec(key)!;
    const ref = { key, name: m[1], tags: { host: m[2] } };
    list.sort((a, b) => a.end - b.end);
    for (const w of list) {
      const r: WindowResult = {
        kind: "window", sid, spec: w.window, start: w.start, end: w.end, count: w.count, sum: w.sum, min: w.min, max: w.max, avg: w.avg,
        p50: NaN, p95: NaN, p99: NaN, first: w.first, last: w.last,
      } as WindowResult;
      set.evaluate(r, ref, (t) => out.push(t));
    }
    sid++;
  }
  return out.filter((t) => t.ts < beforeMs);
}

/** Compares the expected transitions with weir's (GET /api/v1/alerts?kind=rule) and the webhook's deliveries. */
export async function checkRules(url: string, expected: readonly RuleTransition[], receiver: Receiver, beforeMs: number): Promise<RulesReport> {
  const res = await fetch(`${url}/api/v1/alerts?kind=rule&limit=10000`);
  const stored = ((await res.json()).alerts as RuleTransition[]).filter((t) => t.ts < beforeMs);
  const want = new Set(expected.map(keyOf));
  const got = new Set(stored.map(keyOf));
  const due = new Set(expected.filter((t) => t.state === "firing" || t.state === "resolved").map(keyOf));
  const keys = receiver.received.map((r) => r.headers.get("idempotency-key") ?? "").filter((k) => Number(k.slice(k.lastIndexOf("/") + 1)) < beforeMs);
  const delivered = new Set(keys);
  return {
    expected: expected.length,
    stored: stored.length,
    missing: [...want].filter((k) => !got.has(k)),
    unexpected: [...got].filter((k) => !want.has(k)).concat(stored.length > got.size ? ["(a transition stored twice)"] : []),
    deliveredExpected: [...due].filter((k) => delivered.has(k)).length,
    deliveriesMissing: [...due].filter((k) => !delivered.has(k)),
    deliveriesUnexpected: [...delivered].filter((k) => !due.has(k)),
    redelivered: keys.length - delivered.size,
  };
}
