/**
 * A producer behind the wall clock, as a user with a queue in front of weir
 * has one: 200 sensors report every 5 s and every reading reaches weir 30 s
 * after its event time, for a minute, each sensor in order. Every reading
 * must land in its windows, closed once the sensors stop, and nothing may
 * count as late (the first quiet rule counted 86 % of such events late).
 * Runs in real time: about 75 s.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { recountWindow } from "./helpers/recount.ts";
import { waitFor } from "./helpers/wait.ts";
import { postEvents, startTestWeir, type TestWeir } from "./helpers/weir.ts";

const sensors = 200;
const everyMs = 5_000;
const delayMs = 30_000;
const sendMs = 60_000;

type Reading = { name: string; value: number; ts: number; tags: { sensor: string } };

const metric = async (url: string, name: string) => {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)![1]);
};

describe("delayed producer", () => {
  let w: TestWeir;
  beforeAll(async () => {
    w = await startTestWeir();
  });
  afterAll(async () => {
    await w.stop();
  });

  test("delayed producer - sensors every 5 s, each reading delivered 30 s late for a minute: every reading in its window, none late", async () => {
    const sent = new Map<string, Reading[]>();
    const start = Math.ceil(Date.now() / 1000) * 1000;
    // Each second, the readings whose delivery falls in it: sensor k reads at second k mod 5, every 5 s.
    for (let second = 0; second * 1000 < sendMs; second++) {
      const at = start + second * 1000;
      await Bun.sleep(Math.max(0, at - Date.now()));
      const body: Reading[] = [];
      for (let k = second % 5; k < sensors; k += 5) {
        const r = { name: "sensor.delayed", value: (k * 13 + second * 7) % 97, ts: at - delayMs, tags: { sensor: `s${k}` } };
        body.push(r);
        const key = `sensor.delayed{sensor="s${k}"}`;
        sent.set(key, [...(sent.get(key) ?? []), r]);
      }
      const res = await postEvents(w.url, JSON.stringify(body));
      expect(res).toMatchObject({ status: 202, body: { accepted: sensors / 5, rejected: 0 } });
    }
    expect(await metric(w.url, "weir_events_ingested_total")).toBe(sensors * (sendMs / everyMs));

    // The last windows close by the quiet rule about 30 s + 2 s after their end: wait for every sensor's.
    const windowsOf = async (key: string, spec: string) =>
      (await (await fetch(`${w.url}/api/v1/windows?series=${encodeURIComponent(key)}&window=${encodeURIComponent(spec)}&limit=1000`)).json()).windows as Array<Record<string, number>>;
    const expected = new Map([...sent].map(([key, rs]) => {
      const starts = [...new Set(rs.map((r) => Math.floor(r.ts / 10_000) * 10_000))].sort((a, b) => a - b);
      return [key, starts.map((s) => recountWindow(rs, s, s + 10_000)!)];
    }));
    await waitFor(async () => (await windowsOf("sensor.delayed{sensor=\"s199\"}", "10s")).length === expected.get("sensor.delayed{sensor=\"s199\"}")!.length, 60_000, "the last sensor's windows");
    for (const [key, want] of expected) {
      let got: Array<Record<string, number>> = [];
      await waitFor(async () => (got = await windowsOf(key, "10s")).length === want.length, 10_000, `windows of ${key}`);
      expect(got).toEqual(want);
    }
    // Sliding windows too: those ending by the last 10s window's end are all closed, each equal to its recount.
    for (const key of ["sensor.delayed{sensor=\"s0\"}", "sensor.delayed{sensor=\"s199\"}"]) {
      const lastEnd = expected.get(key)!.at(-1)!.end;
      const sliding = (await windowsOf(key, "60s/10s")).filter((x) => x.end <= lastEnd);
      const want = [];
      for (let end = expected.get(key)![0].start + 10_000; end <= lastEnd; end += 10_000) want.push(recountWindow(sent.get(key)!, end - 60_000, end));
      expect(sliding).toEqual(want.filter((x) => x !== null));
    }
    expect(await metric(w.url, "weir_events_late_total")).toBe(0);
    expect((await (await fetch(`${w.url}/api/v1/deadletters`)).json()).deadletters).toEqual([]);
  }, 120_000);
});
