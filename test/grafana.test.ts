/**
 * grafana/weir-dashboard.json (issue 18, item 6) stays importable and true
 * to weir: it parses, names its two data sources as inputs, every Infinity
 * query's URL is a route a real weir answers 200 with the root the panel
 * selects, and every metric a Prometheus query names is on /metrics.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { postEvents, startTestWeir, type TestWeir } from "./helpers/weir.ts";

type Target = { datasource: { type: string }; url?: string; url_options?: { params: Array<{ key: string; value: string }> }; root_selector?: string; expr?: string };
const dashboard = await Bun.file(join(import.meta.dir, "../grafana/weir-dashboard.json")).json() as {
  __inputs: Array<{ name: string; pluginId: string }>; panels: Array<{ title: string; targets: Target[] }>;
};
const targets = dashboard.panels.flatMap((p) => p.targets);
const infinity = targets.filter((t) => t.datasource.type === "yesoreyeram-infinity-datasource");
const prometheus = targets.filter((t) => t.datasource.type === "prometheus");

/** Grafana's variables as a test's values: a series that exists, the default window, the whole time range. */
const variables: Record<string, string> = { $series: "graf.check", $window: "10s", "${__from}": "0", "${__to}": String(Date.now() + 60_000), $match: "*" };

describe("grafana dashboard", () => {
  let w: TestWeir;
  beforeAll(async () => {
    w = await startTestWeir();
    expect((await postEvents(w.url, JSON.stringify({ name: "graf.check", value: 1 }))).status).toBe(202);
  });
  afterAll(async () => {
    await w.stop();
  });

  test("grafana - the dashboard asks for an Infinity and a Prometheus data source and uses both", () => {
    expect(dashboard.__inputs.map((i) => i.pluginId).sort()).toEqual(["prometheus", "yesoreyeram-infinity-datasource"]);
    expect(infinity.length).toBeGreaterThan(0);
    expect(prometheus.length).toBeGreaterThan(0);
  });

  test("grafana - every Infinity URL is a weir route answering 200 with the panel's root selector", async () => {
    const answers: Array<[string, number, boolean]> = [];
    for (const t of infinity) {
      const q = new URLSearchParams(t.url_options!.params.map((p) => [p.key, variables[p.value] ?? p.value]));
      const res = await fetch(`${w.url}${t.url}?${q}`);
      const body = await res.json() as Record<string, unknown>;
      answers.push([t.url!, res.status, Array.isArray(body[t.root_selector!])]);
    }
    expect(answers).toEqual(infinity.map((t) => [t.url!, 200, true]));
  });

  test("grafana - every metric a Prometheus query names is on /metrics with its TYPE", async () => {
    const text = await (await fetch(`${w.url}/metrics`)).text();
    const names = [...new Set(prometheus.flatMap((t) => [...t.expr!.matchAll(/\b((?:weir|process)_[a-z0-9_]+)/g)].map((m) => m[1].replace(/_bucket$/, ""))))];
    expect(names.filter((n) => !text.includes(`# TYPE ${n} `))).toEqual([]);
    expect(names.length).toBeGreaterThan(5);
  });
});
