/**
 * The independent recount the integration tests compare weir's windows
 * with: exact aggregates of the events in [start, end) and nearest-rank
 * percentiles, shaped as /api/v1/windows answers a window.
 *
 * @example expect(got.windows[0]).toEqual(recountWindow(sent, start, start + 10_000));
 */
export function recountWindow(events: ReadonlyArray<{ ts: number; value: number }>, start: number, end: number): Record<string, number> | null {
  const inside = events.filter((e) => e.ts >= start && e.ts < end);
  if (inside.length === 0) return null;
  const byTs = [...inside].sort((a, b) => a.ts - b.ts);
  const sorted = inside.map((e) => e.value).sort((a, b) => a - b);
  const rank = (q: number) => sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1];
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    start, end, count: inside.length, sum, min: sorted[0], max: sorted[sorted.length - 1], avg: sum / inside.length,
    p50: rank(0.5), p95: rank(0.95), p99: rank(0.99), first: byTs[0].value, last: byTs[byTs.length - 1].value,
  };
}
