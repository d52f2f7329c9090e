/**
 * InfluxDB line protocol: the hand parser against the syntax (escapes, field
 * types, precisions, comments), a seeded fuzz against a model that writes
 * lines from known events, mutated bodies that never throw; and POST /write
 * end to end: 204, exact windows, a partial write's 400 naming the line,
 * gzip, the query's precision and its refusals.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import { parseLines, type LineEvent, type Precision } from "../src/ingest/line-protocol.ts";
import { mulberry32 } from "./helpers/prng.ts";
import { waitFor } from "./helpers/wait.ts";
import { startTestWeir, type TestWeir } from "./helpers/weir.ts";

const seed = Number(process.env.LINE_SEED ?? 20261205);
console.log(`line protocol tests: seed ${seed} (LINE_SEED=… to change)`);

describe("line protocol - parser", () => {
  test("line protocol - fields become events named measurement.field (value: the measurement), with the line's tags and time", () => {
    const r = parseLines("cpu,host=a,region=eu usage_idle=97.5,cores=4i,up=t,value=3 1700000000123456789", "ns");
    const tags = { host: "a", region: "eu" };
    expect(r).toEqual({
      events: [
        { name: "cpu.usage_idle", value: 97.5, ts: 1700000000123, tags },
        { name: "cpu.cores", value: 4, ts: 1700000000123, tags },
        { name: "cpu.up", value: 1, ts: 1700000000123, tags },
        { name: "cpu", value: 3, ts: 1700000000123, tags },
      ],
      lines: [0, 0, 0, 0], errors: [],
    });
  });

  test("line protocol - every field type: floats, integers, unsigned, the booleans' spellings; strings skipped", () => {
    const r = parseLines('m a=-1.5e2,b=12i,c=7u,d=T,e=true,f=False,g=FALSE,h="x, y=z \\"q\\"",i=.5', "ms");
    expect(r.events.map((e) => [e.name, e.value])).toEqual([["m.a", -150], ["m.b", 12], ["m.c", 7], ["m.d", 1], ["m.e", 1], ["m.f", 0], ["m.g", 0], ["m.i", 0.5]]);
    expect(r.errors).toEqual([]);
  });

  test("line protocol - escapes: comma and space in the measurement; comma, equals and space in keys and values; other backslashes are themselves", () => {
    const r = parseLines("my\\ meas\\,x,ta\\=g=v\\ 1\\,2,p=c:\\d f\\ 1=2", "s");
    expect(r.events).toEqual([{ name: "my meas,x.f 1", value: 2, tags: { "ta=g": "v 1,2", p: "c:\\d" } }]);
  });

  test("line protocol - precisions by digits: ns, us, ms and s give the same millisecond; no timestamp: none (the receive time)", () => {
    const at: Record<Precision, string> = { ns: "1700000000123999999", us: "1700000000123999", ms: "1700000000123", s: "1700000000" };
    for (const p of ["ns", "us", "ms"] as const) expect(parseLines(`m v=1 ${at[p]}`, p).events[0].ts).toBe(1700000000123);
    expect(parseLines(`m v=1 ${at.s}`, "s").events[0].ts).toBe(1700000000000);
    expect(parseLines("m v=1", "ns").events[0]).toEqual({ name: "m.v", value: 1 });
  });

  test("line protocol - blank lines, comments, CRLF and trailing spaces are skipped; line numbers count every line", () => {
    const r = parseLines("# telegraf\r\n\r\nm v=1 5 \r\n   \nm v=2\n", "ms");
    expect([r.events.map((e) => e.value), r.lines, r.errors]).toEqual([[1, 2], [2, 4], []]);
  });

  test("line protocol - each fault names its line and what is wrong; the other lines still give their events", () => {
    const body = ["m v=1", "m", "m,t v=1", "m,t= v=1", "m v=", "m v=abc", "m v=1 12a", 'm v="open', "m v=1u,w=-2u", "m v=0x10", "m v=1", ",t=a v=1"].join("\n");
    const r = parseLines(body, "ms");
    expect(r.events.map((e) => [e.name, e.value])).toEqual([["m.v", 1], ["m.v", 1]]);
    expect(r.lines).toEqual([0, 10]);
    expect(r.errors.map((e) => e.error)).toEqual([
      "line 2: missing fields",
      'line 3: tag "t": missing value',
      'line 4: tag "t": empty key or value',
      'line 5: field "v": not a number, boolean or string: ""',
      'line 6: field "v": not a number, boolean or string: "abc"',
      'line 7: timestamp: not an integer: "12a"',
      'line 8: field "v": unterminated string',
      'line 9: field "w": not a number, boolean or string: "-2u"',
      'line 10: field "v": not a number, boolean or string: "0x10"',
      "line 12: missing measurement",
    ]);
    expect(r.errors[0].text).toBe("m");
  });

  test("line protocol - seeded fuzz: lines written from random events parse back to exactly those events", () => {
    const rand = mulberry32(seed);
    const pick = (s: string) => s[Math.floor(rand() * s.length)];
    const word = (chars: string, n: number) => Array.from({ length: 1 + Math.floor(rand() * n) }, () => pick(chars)).join("");
    const esc = (s: string, chars: string) => s.replace(new RegExp(`([${chars}])`, "g"), "\\$1");
    const ident = "abcXYZ_09";
    const tricky = "ab ,=.:-";
    for (let round = 0; round < 2_000; round++) {
      const measurement = pick("abcm") + word(tricky, 6);
      const tags: Record<string, string> = {};
      for (let i = Math.floor(rand() * 4); i > 0; i--) tags[pick("kt") + word(tricky, 5)] = `${word(tricky + "\\x", 8)}v`; // not empty, and not ending in a backslash (it would escape the separator)
      const fields: Array<[string, number, string]> = [];
      for (let i = 1 + Math.floor(rand() * 4); i > 0; i--) {
        const v = Math.round((rand() - 0.5) * 1e6) / 100;
        const kind = Math.floor(rand() * 3);
        fields.push([word(ident, 6), kind === 1 ? Math.trunc(v) : v, kind === 1 ? `${Math.trunc(v)}i` : kind === 2 ? v.toExponential() : String(v)]);
      }
      const seen = new Map(fields.map(([k], i) => [k, i])); // a repeated field key: each occurrence is an event
      expect(seen.size).toBeGreaterThan(0);
      const ts = 1_600_000_000_000 + Math.floor(rand() * 1e11);
      const tagText = Object.entries(tags).map(([k, v]) => `,${esc(k, ", =")}=${esc(v, ", =")}`).join("");
      const fieldText = fields.map(([k, , t]) => `${esc(k, ", =")}=${t}`).join(",");
      const line = `${esc(measurement, ", ")}${tagText} ${fieldText} ${ts}000000`;
      const want: LineEvent[] = fields.map(([k, v]) => ({ name: k === "value" ? measurement : `${measurement}.${k}`, value: v, ts, ...(Object.keys(tags).length > 0 ? { tags } : {}) }));
      const got = parseLines(line, "ns");
      if (got.errors.length > 0 || JSON.stringify(got.events) !== JSON.stringify(want)) {
        throw new Error(`seed ${seed}, round ${round}: ${JSON.stringify(line)} gave ${JSON.stringify(got)}, wanted ${JSON.stringify(want)}`);
      }
    }
  });

  test("line protocol - seeded fuzz: mutated bodies never throw; every line is either events or one error naming it", () => {
    const rand = mulberry32(seed + 1);
    const base = 'cpu,host=a\\ b usage=1.5,n=3i,s="x y",ok=t 1700000000000000000\nmem free=12u\n# c\n';
    const alphabet = ' ,="\\\nabc019.-+eEiut#\r';
    for (let round = 0; round < 5_000; round++) {
      const chars = [...base];
      for (let k = 1 + Math.floor(rand() * 6); k > 0; k--) {
        const at = Math.floor(rand() * (chars.length + 1));
        const op = Math.floor(rand() * 3);
        if (op === 0) chars.splice(at, 1);
        else if (op === 1) chars.splice(at, 0, alphabet[Math.floor(rand() * alphabet.length)]);
        else chars[at] = alphabet[Math.floor(rand() * alphabet.length)];
      }
      const text = chars.join("");
      const r = parseLines(text, "ns");
      const bad = new Set(r.errors.map((e) => e.line));
      expect(r.lines.some((l) => bad.has(l))).toBe(false); // a line gives all its events or an error, never both
      for (const e of r.events) expect(Number.isFinite(e.value) && e.name.length > 0).toBe(true);
    }
  });
});

describe("line protocol - POST /write", () => {
  let w: TestWeir;
  const token = "tok-ingest";
  const reader = "tok-read";
  const auth = (t: string) => ({ authorization: `Bearer ${t}` });
  beforeAll(async () => {
    w = await startTestWeir({ WEIR_TOKENS: `${token}:ingest,${reader}:read`, WEIR_LATENESS: "0" });
  });
  afterAll(async () => {
    await w?.stop();
  });
  const write = (path: string, body: BodyInit, headers: Record<string, string> = {}) =>
    fetch(`${w.url}${path}`, { method: "POST", body, headers: { "content-type": "text/plain; charset=utf-8", ...auth(token), ...headers } });
  const windows = async (series: string) =>
    ((await (await fetch(`${w.url}/api/v1/windows?series=${encodeURIComponent(series)}&window=10s`, { headers: auth(reader) })).json()) as { windows: Array<{ start: number; count: number; sum: number }> }).windows;

  test("line protocol - Telegraf's write: 204, and the windows equal a recount of the fields; ?db= accepted; gzip", async () => {
    const t0 = Math.floor((Date.now() - 120_000) / 10_000) * 10_000;
    const lines: string[] = [];
    let sum = 0;
    for (let i = 0; i < 50; i++) {
      lines.push(`tg_cpu,host=h1 usage_user=${i}.5,usage_system=${i}i ${(t0 + i * 100) * 1e6}`);
      sum += i + 0.5;
    }
    lines.push(`tg_cpu,host=h1 usage_user=0,usage_system=0i ${(t0 + 20_000) * 1e6}`); // closes the first windows
    const half = lines.slice(0, 25).join("\n");
    const rest = lines.slice(25).join("\n");
    const a = await write("/write?db=telegraf&precision=ns", half);
    const b = await write("/api/v1/write?db=telegraf", gzipSync(rest), { "content-encoding": "gzip" });
    expect([a.status, await a.text(), b.status]).toEqual([204, "", 204]);
    await waitFor(async () => (await windows('tg_cpu.usage_user{host="h1"}')).length > 0, 10_000, "the first window");
    expect((await windows('tg_cpu.usage_user{host="h1"}'))[0]).toMatchObject({ start: t0, count: 50, sum });
    expect((await windows('tg_cpu.usage_system{host="h1"}'))[0]).toMatchObject({ start: t0, count: 50, sum: (49 * 50) / 2 });
  });

  test("line protocol - a partial write: 400 naming each bad line (and an invalid event's field), the good lines written", async () => {
    const t0 = Math.floor((Date.now() - 120_000) / 10_000) * 10_000;
    const body = [`pw v=1 ${t0}`, "pw v=oops", `pw,bad-key=x v=2 ${t0 + 1}`, `pw v=3 ${t0 + 2}`, `pw v=0 ${t0 + 20_000}`].join("\n");
    const r = await write("/write?precision=ms", body);
    expect([r.status, await r.json()]).toEqual([400, {
      error: 'line 2: field "v": not a number, boolean or string: "oops"',
      accepted: 3, rejected: 2,
      errors: [
        { index: 1, error: 'line 2: field "v": not a number, boolean or string: "oops"' },
        { index: 2, error: expect.stringMatching(/^line 3: tags\.bad-key: /) },
      ],
    }]);
    await waitFor(async () => (await windows("pw.v")).length > 0, 10_000, "the window");
    expect((await windows("pw.v"))[0]).toMatchObject({ start: t0, count: 2, sum: 4 });
    const dead = (await (await fetch(`${w.url}/api/v1/deadletters?limit=10`, { headers: auth(reader) })).json()) as { deadletters: Array<{ reason: string; event: unknown }> };
    expect(dead.deadletters.some((d) => d.event === "pw v=oops")).toBe(true);
  });

  test("line protocol - refusals: a bad precision or unknown parameter names it; an empty body; no token; a read token", async () => {
    const bad = await write("/write?precision=m", "m v=1");
    expect([bad.status, await bad.json()]).toEqual([400, { error: "precision: must be one of ns, us, u, ms, s" }]);
    const unknown = await write("/write?foo=1", "m v=1");
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { error: string }).error).toMatch(/foo/);
    const empty = await write("/write", "");
    expect([empty.status, await empty.json()]).toEqual([400, { error: "body: empty" }]);
    expect((await fetch(`${w.url}/write`, { method: "POST", body: "m v=1" })).status).toBe(401);
    expect((await write("/write", "m v=1", auth(reader))).status).toBe(403);
    const onlyComments = await write("/write", "# nothing\n\n");
    expect(onlyComments.status).toBe(204);
  });
});
