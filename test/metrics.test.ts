import { describe, expect, test } from "bun:test";
import { closeSync, openSync } from "node:fs";
import { Metrics } from "../src/runtime/metrics.ts";
import { EventLoopLag, openFds, registerProcessMetrics } from "../src/runtime/process-metrics.ts";
import { waitFor } from "./helpers/wait.ts";

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

describe("metrics - process figures", () => {
  test("metrics - CPU seconds, open fds, start time and event-loop lag, each with HELP and TYPE; the lag sees a blocked main thread", async () => {
    const lag = new EventLoopLag(20);
    const m = new Metrics();
    registerProcessMetrics(m, lag);
    lag.start();
    try {
      // Fifty files opened and closed: the count follows (within what other tests of this process open or close meanwhile).
      const before = openFds()!;
      const fds = Array.from({ length: 50 }, () => openSync(import.meta.path, "r"));
      const opened = openFds()!;
      expect(opened - before).toBeGreaterThanOrEqual(40);
      for (const fd of fds) closeSync(fd);
      expect(opened - openFds()!).toBeGreaterThanOrEqual(40);
      const until = performance.now() + 150;
      while (performance.now() < until) { /* block the main thread past several 20 ms ticks */ }
      await waitFor(() => lag.last > 0.1, 2000, "the late tick measured");
      const text = m.render();
      for (const [name, type] of [["process_cpu_seconds_total", "counter"], ["process_open_fds", "gauge"], ["process_start_time_seconds", "gauge"], ["weir_event_loop_lag_seconds", "gauge"]]) {
        expect(text).toContain(`# TYPE ${name} ${type}\n`);
      }
      const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)![1]);
      expect(value("process_cpu_seconds_total")).toBeGreaterThan(0.1); // at least the 150 ms spun
      expect(value("weir_event_loop_lag_seconds")).toBeGreaterThan(0.1);
      expect(Math.abs(value("process_start_time_seconds") - (Date.now() - performance.now()) / 1000)).toBeLessThan(1);
      await waitFor(() => lag.last < 0.05, 2000, "a tick on time again");
      expect(lag.takeMax()).toBeLessThan(0.1); // the scrape above took the late one: this one starts over
    } finally {
      lag.stop();
    }
  });
});
