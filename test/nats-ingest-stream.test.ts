/**
 * The pure parts of the NATS groundwork, no server: which settings of an
 * existing stream differ from weir's and how they read, which settings
 * cannot make a stream, and the ingest subject scheme.
 */
import { describe, expect, test } from "bun:test";
import { nanos } from "@nats-io/transport-node";
import { IngestStreamError } from "../src/nats/errors.ts";
import { durationText, ingestStreamConfig, ingestStreamDefaults, streamDifferences, type IngestStreamConfig } from "../src/nats/ingest-stream.ts";
import { ingestSubject, ingestSubjectFilter, ingestSubjectTail } from "../src/nats/subjects.ts";

const hourMs = 3_600_000;
const want = ingestStreamConfig(ingestStreamDefaults);

describe("nats stream settings", () => {
  test("nats - the default stream is WEIR_INGEST on weir.ingest.> with file storage, limits retention, 7d max_age, 2m duplicate window", () => {
    expect(want).toEqual({
      name: "WEIR_INGEST", subjects: ["weir.ingest.>"], storage: "file", retention: "limits",
      max_age: 7 * 24 * hourMs * 1e6, duplicate_window: 2 * 60_000 * 1e6,
    } as IngestStreamConfig);
  });

  test("nats - a stream with the asked settings has no differences, whatever the order of its subjects", () => {
    const two = ingestStreamConfig({ ...ingestStreamDefaults, subjects: ["weir.ingest.>", "other.>"] });
    expect(streamDifferences(want, { ...want })).toEqual([]);
    expect(streamDifferences(two, { ...two, subjects: ["other.>", "weir.ingest.>"] })).toEqual([]);
  });

  test("nats - each differing setting is listed once, as a person writes it, in a fixed order", () => {
    const have: IngestStreamConfig = {
      ...want, subjects: ["weir.>"], storage: "memory" as IngestStreamConfig["storage"], retention: "workqueue" as IngestStreamConfig["retention"],
      max_age: nanos(hourMs), duplicate_window: nanos(90_000),
    };
    expect(streamDifferences(want, have)).toEqual([
      { field: "subjects", have: "weir.>", want: "weir.ingest.>" },
      { field: "storage", have: "memory", want: "file" },
      { field: "retention", have: "workqueue", want: "limits" },
      { field: "max_age", have: "1h", want: "7d" },
      { field: "duplicate_window", have: "90s", want: "2m" },
    ]);
  });

  test("nats - max_age 0 reads as unlimited and differs from any limit", () => {
    expect(streamDifferences(want, { ...want, max_age: 0 })).toEqual([{ field: "max_age", have: "unlimited", want: "7d" }]);
  });

  test("nats - a stream without subjects (a mirror) reads as none", () => {
    expect(streamDifferences(want, { ...want, subjects: undefined as unknown as string[] })).toEqual([{ field: "subjects", have: "(none)", want: "weir.ingest.>" }]);
  });

  test("nats - durations read in the largest unit that divides them, exactly", () => {
    expect([7 * 24 * hourMs, hourMs, 90 * 60_000, 1_500, 250, 0].map((ms) => durationText(nanos(ms)))).toEqual(["7d", "1h", "90m", "1500ms", "250ms", "0s"]);
    expect(durationText(1_500_001)).toBe("1500001ns"); // not whole milliseconds: no rounding hides a difference
  });

  test("nats - settings JetStream would refuse are refused before asking it, naming the setting", () => {
    const refused = (s: Partial<typeof ingestStreamDefaults>) => {
      try {
        ingestStreamConfig({ ...ingestStreamDefaults, ...s });
      } catch (e) {
        expect(e).toBeInstanceOf(IngestStreamError);
        expect((e as IngestStreamError).code).toBe("nats_stream");
        return (e as Error).message;
      }
      throw new Error("not refused");
    };
    expect(refused({ duplicateWindowMs: 10 * 60_000, maxAgeMs: 5 * 60_000 })).toBe("nats: stream WEIR_INGEST cannot be created as asked: duplicate_window 10m is longer than max_age 5m");
    expect(refused({ duplicateWindowMs: 0 })).toContain("duplicate_window 0 ms is not a whole number ≥ 1");
    expect(refused({ maxAgeMs: -1 })).toContain("max_age -1 ms is not a whole number ≥ 0");
    expect(refused({ subjects: [] })).toContain("no subjects");
    expect(ingestStreamConfig({ ...ingestStreamDefaults, maxAgeMs: 0, duplicateWindowMs: 24 * hourMs }).max_age).toBe(0); // unlimited age: any window
  });
});

describe("nats subjects", () => {
  test("nats - producers publish to weir.ingest.<tail>, and the tail is read back", () => {
    expect(ingestSubject("dev-1")).toBe("weir.ingest.dev-1");
    expect(ingestSubject("site.north")).toBe("weir.ingest.site.north");
    expect(ingestSubjectTail("weir.ingest.site.north")).toBe("site.north");
    expect(ingestSubjectFilter).toBe("weir.ingest.>");
  });

  test("nats - a subject outside weir.ingest.> has no tail", () => {
    expect(["weir.ingest", "weir.ingest.", "weir.out.alerts", "weir.ingestx.a", ""].map(ingestSubjectTail)).toEqual([null, null, null, null, null]);
  });

  test("nats - a tail with an empty token, white space or a wildcard is a programmer error", () => {
    for (const tail of ["", "a..b", "a b", "*", "a.>", ".a"]) expect(() => ingestSubject(tail)).toThrow(/ingest subject tail/);
  });
});
