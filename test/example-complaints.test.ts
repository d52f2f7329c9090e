/**
 * README "Rules and alerts" as a newcomer runs it: weir with
 * examples/complaints/weir.yaml (its webhook pointed at a receiver on a free
 * port instead of :9000), then `bun examples/complaints/producer.ts`, the
 * emit() client sending four hours of a support desk. The rule of minutes
 * (avg over 30m > 48 h, for 30m, keep_firing_for 5m) fires and resolves at
 * the instants an independent reference (test/helpers/rule-reference.ts)
 * finds over weir's 10 s windows of that series, and the webhook gets both.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Receiver, reply, startReceiver } from "./helpers/receiver.ts";
import { referenceTransitions, type RefWindow } from "./helpers/rule-reference.ts";
import { waitFor } from "./helpers/wait.ts";
import { startTestWeir, type TestWeir } from "./helpers/weir.ts";

const root = join(import.meta.dir, "..");
const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

test("example - the complaints SLA from the README: the producer's four hours fire and resolve the rule where a reference over the windows says, and the webhook gets both", async () => {
  const hook: Receiver = startReceiver(() => reply(200, {}));
  cleanups.push(() => hook.stop());
  const dir = mkdtempSync(join(tmpdir(), "weir-example-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const yaml = readFileSync(join(root, "examples/complaints/weir.yaml"), "utf8");
  expect(yaml).toContain('url: "http://127.0.0.1:9000/hook"');
  const config = join(dir, "weir.yaml");
  writeFileSync(config, yaml.replace("http://127.0.0.1:9000/hook", `${hook.url}/hook`));
  const w: TestWeir = await startTestWeir({ WEIR_CONFIG: config });
  cleanups.push(() => w.stop());

  const producer = Bun.spawn(["bun", join(root, "examples/complaints/producer.ts")], { env: { ...process.env, WEIR_URL: w.url }, stdout: "pipe", stderr: "pipe" });
  expect(await producer.exited).toBe(0);
  const report = JSON.parse((await new Response(producer.stdout).text()).trim());
  expect(report).toMatchObject({ rejected: 0, dropped: 0, failed: 0 });
  expect(report.accepted).toBe(report.emitted);

  await waitFor(() => hook.received.length >= 2, 20_000, "the webhook's firing and resolved");
  const series = 'complaint.response_time{team="support"}';
  const res = await fetch(`${w.url}/api/v1/windows?series=${encodeURIComponent(series)}&window=10s&limit=5000`);
  const windows = (await res.json()).windows as RefWindow[];
  const want = referenceTransitions(
    { name: "complaint-sla", agg: "avg", op: ">", threshold: 172_800, forMs: 1_800_000, keepMs: 300_000, severity: "critical", labels: { owner: "ops" }, advice: null },
    { overMs: 1_800_000, stepMs: 10_000 },
    [{ key: series, tags: { team: "support" }, windows }],
    windows[windows.length - 1].end,
  ).filter((t) => t.state === "firing" || t.state === "resolved");
  const got = hook.received.map((r) => JSON.parse(r.body));
  expect(got.map((a) => [a.state, a.ts])).toEqual(want.map((t) => [t.state, t.ts]));
  expect(got.map((a) => a.state)).toEqual(["firing", "resolved"]);
  expect(got[0].advice).toBe(`Mean response ${Number(got[0].value.toPrecision(6))} s is over 172800 s: open the escalation pipeline`);
  expect(got[0].value).toBeCloseTo(want[0].value!, 6);
}, 60_000);
