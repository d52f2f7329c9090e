import { describe, expect, test } from "bun:test";
import { Metrics } from "../src/runtime/metrics.ts";

describe("metrics - histogram", () => {
  test("metrics - buckets are cumulative in the text, +Inf and count are the total; quantiles from the bucket bounds", () => {
    const h = new Metrics().histogram("x_seconds", "x", [0.01, 0.1, 1]);
    for (const v of [0.005, 0.01, 0.05, 0.05, 0.5, 3]) h.observe(v);
    expect(h.render()).toBe(
      "# HELP x_seconds x\n# TYPE x_seconds histogram\n" +
      'x_seconds_bucket{le="0.01"} 2\nx_seconds_bucket{le="0.1"} 4\nx_seconds_bucket{le="1"} 5\nx_seconds_bucket{le="+Inf"} 6\n' +
      "x_seconds_sum 3.615\nx_seconds_count 6\n",
    );
    // Nearest rank of 6: q 0.3 → 2nd, 0.34 → 3rd, 0.66 → 4th, 0.67 → 5th, 0.84 → 6th (past the last bound).
    expect([0.3, 0.34, 0.66, 0.67, 0.84, 1].map((q) => h.quantileUpperBound(q))).toEqual([0.01, 0.1, 0.1, 1, Infinity, Infinity]);
  });
});
