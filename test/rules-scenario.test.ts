/**
 * The alert rules end to end, against a real weir (worker threads, SQLite,
 * HTTP) and a real webhook receiver: the complaint SLA of the issue in
 * seconds (a rule from the config file, judged in the partitions on closed
 * windows, its transitions stored, listed, handed to the webhook once
 * committed), and the admin API (PUT, GET, DELETE; a bad rule a 400 naming
 * the fault; changes kept across a restart).
 *
 * The producer is a delayed one: its events are stamped minutes before they
 * are sent, in order, as a queue in between would deliver them.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Receiver, reply, startReceiver } from "./helpers/receiver.ts";
import { waitFor } from "./helpers/wait.ts";
import { postEvents, startTestWeir, type TestWeir } from "./helpers/weir.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function weirWith(config: object, dataDir?: string): Promise<TestWeir> {
  const dir = mkdtempSync(join(tmpdir(), "weir-rules-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "weir.json");
  writeFileSync(file, JSON.stringify(config));
  const w = await startTestWeir({ WEIR_CONFIG: file, WEIR_LATENESS: "0", WEIR_CHECKPOINT_INTERVAL: "200ms" }, dataDir);
  return w;
}

const get = async (url: string) => {
  const r = await fetch(url);
  return { status: r.status, body: await r.json() };
};

const series = 'complaint.response_time{team="support"}';

/** Response times of support per 10 s window k: 10 s, then 100 s from the 4th to the 9th window, then 10 s; sales is slow and not watched. */
function complaints(t0: number): object[] {
  const out: object[] = [];
  for (let i = 0; i < 80; i++) {
    const ts = t0 + i * 2000;
    const k = Math.floor(i / 5);
    out.push({ name: "complaint.response_time", tags: { team: "support" }, value: k >= 3 && k <= 8 ? 100 : 10, ts, id: `s${i}` });
    out.push({ name: "complaint.response_time", tags: { team: "sales" }, value: 500, ts, id: `x${i}` });
    out.push({ name: "complaint.opened", ts });
  }
  return out;
}

describe("rules - end to end", () => {
  test("rules - the complaint SLA in seconds: pending, firing, resolved at exact event times; the webhook gets firing and resolved once each, with the advice and an Idempotency-Key", async () => {
    const hook: Receiver = startReceiver(() => reply(200, {}));
    cleanups.push(() => hook.stop());
    const w = await weirWith({
      rules: [{
        name: "complaint-sla", expr: `avg(${series}) over 30s > 48`, for: "30s", keep_firing_for: "20s", severity: "critical",
        labels: { owner: "ops" }, advice: "Mean response {{value}} s is over {{threshold}} s: open the escalation pipeline", actions: ["escalate", "log"],
      }],
      actions: { escalate: { type: "webhook", url: `${hook.url}/hook` } },
    });
    cleanups.push(() => w.stop());
    const t0 = Math.floor((Date.now() - 600_000) / 60_000) * 60_000; // ten minutes behind, on a minute
    const events = complaints(t0);
    for (let i = 0; i < events.length; i += 60) expect((await postEvents(w.url, JSON.stringify(events.slice(i, i + 60)))).status).toBe(202);

    await waitFor(() => hook.received.length >= 2, 20_000, "the webhook's firing and resolved");
    const at = (ts: number) => (ts - t0) / 1000;
    const bodies = hook.received.map((r) => JSON.parse(r.body));
    expect(bodies.map((b) => [b.state, at(b.ts), b.value])).toEqual([["firing", 80, 100], ["resolved", 130, 10]]);
    expect(bodies[0]).toEqual({
      kind: "rule", rule: "complaint-sla", series, state: "firing", value: 100, threshold: 48, severity: "critical", ts: t0 + 80_000,
      labels: { team: "support", owner: "ops" }, advice: "Mean response 100 s is over 48 s: open the escalation pipeline",
    });
    expect(hook.received.map((r) => r.headers.get("idempotency-key"))).toEqual([
      `complaint-sla/${series}/firing/${t0 + 80_000}`, `complaint-sla/${series}/resolved/${t0 + 130_000}`,
    ]);

    const all = await get(`${w.url}/api/v1/alerts?kind=rule`);
    expect(all.status).toBe(200);
    expect(all.body.alerts.map((a: { state: string; ts: number }) => [a.state, at(a.ts)])).toEqual([["resolved", 130], ["firing", 80], ["pending", 50]]);
    const firing = await get(`${w.url}/api/v1/alerts?state=firing`);
    expect(firing.body.alerts.map((a: { rule: string; ts: number }) => [a.rule, at(a.ts)])).toEqual([["complaint-sla", 80]]);
    expect((await get(`${w.url}/api/v1/alerts?state=pending&kind=anomaly`)).body.alerts).toEqual([]);
    expect((await get(`${w.url}/api/v1/alerts?state=burning`)).status).toBe(400);

    const rules = await get(`${w.url}/api/v1/rules`);
    expect(rules.body.rules).toEqual([{
      name: "complaint-sla", source: "config", rule: expect.objectContaining({ name: "complaint-sla" }),
      watch: { kind: "aggregate", agg: "avg", over: "30s", op: ">", threshold: 48 }, series: [series], seriesMore: false,
      instances: [{ series, state: "resolved", since: t0 + 130_000, value: 10 }],
    }]);
    expect(rules.body.actions.find((a: { name: string }) => a.name === "escalate")).toMatchObject({ type: "webhook", delivered: 2, failed: 0, dropped: 0 });
    // Nothing more goes out: each transition once.
    await waitFor(async () => (await get(`${w.url}/api/v1/rules`)).body.actions.find((a: { name: string }) => a.name === "log").delivered === 2, 5000, "the log action's two");
    expect(hook.received.length).toBe(2);
    const metrics = await (await fetch(`${w.url}/metrics`)).text();
    expect(metrics).toContain('weir_action_deliveries_total{action="escalate",outcome="delivered"} 2\n');
    expect(metrics).toContain('weir_action_deliveries_total{action="escalate",outcome="failed"} 0\n');
    expect(metrics).toContain("weir_rule_transitions_total 3\n");
    expect(metrics).toContain("weir_rules 1\n");
  });

  test("rules - the admin API: a bad rule is a 400 naming the part at fault; a rule put is judged, listed, kept across a restart, and deleted", async () => {
    const dir = mkdtempSync(join(tmpdir(), "weir-rules-data-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    let w = await weirWith({}, dir);
    const put = (name: string, body: unknown) =>
      fetch(`${w.url}/api/v1/rules/${name}`, { method: "PUT", body: JSON.stringify(body), headers: { "content-type": "application/json" } });

    const bad = await put("slow", { expr: "avg(page.load) >> 3000" });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatch(/^rule\.expr: at column \d+: /);
    const badFor = await put("slow", { expr: "avg(page.load) > 3000", for: "soon" });
    expect([badFor.status, (await badFor.json()).error]).toEqual([400, "rule.for: must be a duration like 30s or 5m"]);
    const badWindow = await put("slow", { expr: "p99(page.load) over 7m > 3000" });
    expect(badWindow.status).toBe(400);
    expect((await badWindow.json()).error).toMatch(/^rule\.expr: "over 7m": p99 needs a configured window/);
    const otherName = await put("slow", { name: "fast", expr: "avg(page.load) > 3000" });
    expect([otherName.status, (await otherName.json()).error]).toEqual([400, 'rule.name: "fast" differs from the name in the path, "slow"']);
    expect((await get(`${w.url}/api/v1/rules`)).body.rules).toEqual([]);

    const ok = await put("slow", { expr: 'avg(page.load{page="/"}) > 3000', advice: "scale the UI tier" });
    expect(ok.status).toBe(201);
    expect((await put("slow", { expr: 'avg(page.load{page="/"}) > 3000', advice: "scale the UI tier now" })).status).toBe(200);
    const t0 = Math.floor((Date.now() - 300_000) / 10_000) * 10_000;
    const loads = [4000, 4200, 100, 100].map((v, k) => ({ name: "page.load", tags: { page: "/" }, value: v, ts: t0 + k * 10_000 + 1 }));
    expect((await postEvents(w.url, JSON.stringify(loads))).status).toBe(202);
    await waitFor(async () => (await get(`${w.url}/api/v1/alerts?rule=slow`)).body.alerts.length === 2, 10_000, "firing and resolved");
    const seen = (await get(`${w.url}/api/v1/alerts?rule=slow`)).body.alerts;
    expect(seen.map((a: { state: string; ts: number; advice: string }) => [a.state, a.ts - t0, a.advice])).toEqual([
      ["resolved", 30_000, "scale the UI tier now"], ["firing", 10_000, "scale the UI tier now"],
    ]);

    await w.stop();
    w = await weirWith({}, dir);
    cleanups.push(() => w.stop());
    const after = await get(`${w.url}/api/v1/rules/slow`);
    expect(after.body).toMatchObject({ name: "slow", source: "api", rule: { expr: 'avg(page.load{page="/"}) > 3000', advice: "scale the UI tier now" } });
    expect(after.body.instances).toEqual([{ series: 'page.load{page="/"}', state: "resolved", since: t0 + 30_000, value: 100 }]);
    expect((await fetch(`${w.url}/api/v1/rules/slow`, { method: "DELETE" })).status).toBe(204);
    expect((await get(`${w.url}/api/v1/rules/slow`)).status).toBe(404);
    expect((await fetch(`${w.url}/api/v1/rules/slow`, { method: "DELETE" })).status).toBe(404);
  });

  test("rules - a config file with a bad rule stops start-up naming its path", async () => {
    await expect(weirWith({ rules: [{ name: "x", expr: "avg(a) > 1" }, { name: "y", expr: "avg(a) > 1", for: "5 minutes" }] })).rejects.toThrow(
      "config rules[1].for: must be a duration like 30s or 5m",
    );
    await expect(weirWith({ rules: [{ name: "x", expr: "avg(a) > 1", actions: ["pager"] }] })).rejects.toThrow(/^config rules\[0\]\.actions/);
  });
});
