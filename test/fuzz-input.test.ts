/**
 * Seeded fuzz of every input route (issue 19 item 9): random and mutated
 * bodies and query strings thrown at one real weir, bounded in count and
 * time, with valid events of their own series mixed in. What must hold: no
 * 5xx and every answer JSON (or empty on 204); the server alive and ready
 * afterwards; the test process' memory bounded; and the mixed-in valid
 * events' windows exactly their recount. The seed is printed (FUZZ_SEED=…
 * to replay one).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import { mulberry32 } from "./helpers/prng.ts";
import { waitFor } from "./helpers/wait.ts";
import { startTestWeir, type TestWeir } from "./helpers/weir.ts";

const seed = Number(process.env.FUZZ_SEED ?? 20261205);
console.log(`fuzz input: seed ${seed} (FUZZ_SEED=… to replay)`);
const requestsMax = 5_000;
const runMsMax = 40_000;
const rssGrowthBytesMax = 512 * 2 ** 20;

const rand = mulberry32(seed);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
const int = (n: number) => Math.floor(rand() * n);

const t0 = Math.floor((Date.now() - 600_000) / 10_000) * 10_000;
const seeds = [
  JSON.stringify([{ name: "fzm.a", value: 1.5, ts: t0 + 100, tags: { k: "v" }, id: "m1", props: { p: 1 } }]),
  JSON.stringify({ name: "fzm.b", value: -2, tags: { host: "h1", region: "eu" } }),
  '{"name":"fzm.c"}\n{"name":"fzm.d","value":3}\n',
  `fzm_lp,host=a v=1,w=2i ${t0 + 200}\nfzm_lp s="x" ${t0 + 300}\n`,
  JSON.stringify({ expr: "avg(fzm.a) > 3", for: "1m", severity: "critical" }),
  JSON.stringify({ from: "fzm.*", group_by: ["k"], window: "1m", aggregates: ["count", "p99"] }),
  "id,segment\nu1,gold\nu2,silver\n",
  JSON.stringify({ sql: "SELECT count(*) FROM events" }),
];
const specials = ["\u0000", "\uffff", "\ud800", "é", "\\", '"', "{", "}", "[", "]", ",", ":", "=", " ", "\n", "NaN", "1e999", "-0", "__proto__", "<script>", "%00", "\u202e"];

/** A seed mutated: bytes flipped, cut, repeated, or special text spliced in. */
function mutate(text: string): string {
  let s = text;
  for (let k = 1 + int(5); k > 0; k--) {
    const at = int(s.length + 1);
    const op = int(5);
    if (op === 0) s = s.slice(0, at) + pick(specials) + s.slice(at);
    else if (op === 1) s = s.slice(0, at) + s.slice(at + 1 + int(8));
    else if (op === 2) s = s.slice(0, at);
    else if (op === 3) s = s.slice(0, at) + s.slice(at, at + 1 + int(20)).repeat(1 + int(50)) + s.slice(at);
    else s = s.slice(0, at) + String.fromCharCode(int(0x3000)) + s.slice(at + 1);
  }
  return s;
}

function randomBytes(): Uint8Array {
  return Uint8Array.from({ length: int(300) }, () => int(256));
}

/** A query value, percent-encoded (a lone surrogate made well-formed first: a URL cannot carry one). */
const enc = (s: string) => encodeURIComponent(s.toWellFormed());

interface Shot { method: string; path: string; type?: string; body?: BodyInit }

const shots: Array<() => Shot> = [
  () => ({ method: "POST", path: "/api/v1/events", type: pick(["application/json", "text/plain", "application/x-ndjson"]), body: mutate(pick(seeds)) }),
  () => ({ method: "POST", path: "/api/v1/events", type: "application/msgpack", body: rand() < 0.5 ? randomBytes() : encode(JSON.parse(pick(seeds.slice(0, 2)))) }),
  () => ({ method: "POST", path: `/write?precision=${pick(["ns", "ms", "s", "x", ""])}`, type: "text/plain", body: mutate(seeds[3]) }),
  () => ({ method: "PUT", path: `/api/v1/rules/${enc(mutate("fz_rule").slice(0, 80))}`, type: "application/json", body: mutate(seeds[4]) }),
  () => ({ method: "PUT", path: "/api/v1/views/fz_view", type: "application/json", body: mutate(seeds[5]) }),
  () => ({ method: pick(["PUT", "PATCH"]), path: "/api/v1/tables/fz_table?key=id", type: pick(["text/csv", "application/json"]), body: mutate(seeds[6]) }),
  () => ({ method: "POST", path: "/api/v1/query", type: "application/json", body: mutate(seeds[7]) }),
  () => ({ method: "GET", path: `/api/v1/windows?series=${enc(mutate("fzv.s0"))}&window=${enc(mutate("10s"))}&limit=${enc(mutate("10"))}` }),
  () => ({ method: "GET", path: `/api/v1/series?match=${enc(mutate("fz*"))}&limit=${enc(mutate("5"))}` }),
  () => ({ method: "GET", path: `/api/v1/top?name=${enc(mutate("fzm.a"))}&by=${enc(mutate("k"))}&agg=${enc(mutate("sum"))}` }),
  () => ({ method: "GET", path: `/${enc(mutate("app.js"))}` }),
];

describe("fuzz - every input route", () => {
  let w: TestWeir;
  beforeAll(async () => {
    w = await startTestWeir({ WEIR_LATENESS: "0", WEIR_MAX_BODY: "262144" });
  });
  afterAll(async () => {
    await w?.stop();
  });

  test(`fuzz - ${requestsMax} random and mutated requests with valid events mixed in: no 5xx, JSON answers, healthy after, memory bounded, the valid events' windows exact`, async () => {
    const rssBefore = process.memoryUsage.rss();
    const recount = new Map<string, { count: number; sum: number }>();
    const problems: string[] = [];
    const deadline = performance.now() + runMsMax;
    let valid = 0;
    const statuses: Record<number, number> = {};
    for (let i = 0; i < requestsMax && performance.now() < deadline; i++) {
      if (i % 10 === 0) {
        // A valid event of a series no mutation names, in the window [t0, t0 + 10 s): it must count exactly once.
        const series = `fzv.s${int(4)}`;
        const value = int(1000) - 500;
        const res = await fetch(`${w.url}/api/v1/events`, { method: "POST", body: JSON.stringify({ name: series, value, ts: t0 + int(10_000), id: `fzv-${seed}-${valid++}` }), headers: { "content-type": "application/json" } });
        if (res.status !== 202) problems.push(`valid event: ${res.status} ${await res.text()}`);
        else {
          await res.arrayBuffer();
          const r = recount.get(series) ?? { count: 0, sum: 0 };
          recount.set(series, { count: r.count + 1, sum: r.sum + value });
        }
        continue;
      }
      const shot = pick(shots)();
      const res = await fetch(`${w.url}${shot.path}`, { method: shot.method, body: shot.body, headers: shot.type === undefined ? {} : { "content-type": shot.type } });
      const text = await res.text();
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      if (res.status >= 500 && res.status !== 503) problems.push(`${shot.method} ${shot.path.slice(0, 60)}: ${res.status} ${text.slice(0, 120)}`);
      const isJson = (() => {
        try {
          JSON.parse(text);
          return true;
        } catch {
          return false;
        }
      })();
      const staticFile = shot.method === "GET" && !shot.path.startsWith("/api/") && res.status === 200;
      if (!(isJson || (res.status === 204 && text === "") || staticFile)) problems.push(`${shot.method} ${shot.path.slice(0, 60)}: ${res.status} not JSON: ${text.slice(0, 80)}`);
    }
    console.log(`fuzz input: answers by status ${JSON.stringify(statuses)}, ${valid} valid events mixed in`);
    expect(problems).toEqual([]);
    expect(Object.keys(statuses).length).toBeGreaterThan(3); // the inputs reached past the first checks: several kinds of answers
    expect((await fetch(`${w.url}/health`)).status).toBe(200);
    expect((await fetch(`${w.url}/ready`)).status).toBe(200);
    expect(process.memoryUsage.rss() - rssBefore).toBeLessThan(rssGrowthBytesMax);
    // Close the valid series' window, then compare with the recount.
    const closers = [...recount.keys()].map((name) => ({ name, value: 0, ts: t0 + 25_000 }));
    expect((await fetch(`${w.url}/api/v1/events`, { method: "POST", body: JSON.stringify(closers), headers: { "content-type": "application/json" } })).status).toBe(202);
    for (const [series, want] of recount) {
      const first = async () => ((await (await fetch(`${w.url}/api/v1/windows?series=${series}&window=10s&from=${t0}&to=${t0 + 1}`)).json()) as { windows: Array<{ count: number; sum: number }> }).windows[0];
      await waitFor(async () => (await first()) !== undefined, 10_000, `${series}'s window`);
      const got = await first();
      expect({ series, count: got.count, sum: got.sum }).toEqual({ series, ...want });
    }
  }, 90_000);
});
