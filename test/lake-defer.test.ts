/**
 * The lake's maintenance waits while the host's cores are busy, at most
 * WEIR_LAKE_DEFER behind (src/lake/maintenance.ts): the decision, and the
 * setting's bounds.
 */
import { describe, expect, test } from "bun:test";
import { ConfigError, loadConfig } from "../src/config.ts";
import { passWaits } from "../src/lake/maintenance.ts";
import { limits } from "../src/runtime/limits.ts";

describe("lake - a pass waits while the cores are busy", () => {
  const at = { idle: 1_000, all: 10_000 };
  const busy = { idle: 1_000 + 500, all: 12_000 }; // 25 % idle since
  const edge = { idle: 1_000 + 600, all: 12_000 }; // 30 % idle: not busy
  test("lake defer - busy cores and a lake less than WEIR_LAKE_DEFER behind: the pass waits", () => {
    expect(passWaits(at, busy, 5_000, 60_000)).toBe(true);
    expect(passWaits(at, busy, 59_999, 60_000)).toBe(true);
  });
  test("lake defer - the lake WEIR_LAKE_DEFER behind, cores idle enough, no CPU time between readings, or a defer of 0: the pass runs", () => {
    expect(passWaits(at, busy, 60_000, 60_000)).toBe(false);
    expect(passWaits(at, edge, 5_000, 60_000)).toBe(false);
    expect(limits.lakeDeferIdleShareMin).toBe(0.3);
    expect(passWaits(at, at, 5_000, 60_000)).toBe(false);
    expect(passWaits(at, busy, 0, 0)).toBe(false);
  });
  test("lake defer - WEIR_LAKE_DEFER: 60 s by default, 0 turns it off, past an hour refused naming the setting", () => {
    expect(loadConfig({}).lake.deferMs).toBe(60_000);
    expect(loadConfig({ WEIR_LAKE_DEFER: "0" }).lake.deferMs).toBe(0);
    expect(loadConfig({ WEIR_LAKE_DEFER: "5m" }).lake.deferMs).toBe(300_000);
    expect(() => loadConfig({ WEIR_LAKE_DEFER: "2h" })).toThrow(ConfigError);
    expect(() => loadConfig({ WEIR_LAKE_DEFER: "2h" })).toThrow(/WEIR_LAKE_DEFER/);
  });
});
