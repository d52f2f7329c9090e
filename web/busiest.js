// The busiest series, for a dashboard whose user has picked none: ranked by
// event count in the newest closed window the page has received (every
// series' windows reach it on `windows:<spec>:*`), so it needs no query of
// its own and follows the data as it changes.

/**
 * The `n` series with the most events in their latest window among those
 * that closed a window in the newest two ends seen (a series whose windows
 * stopped drops out; one that has not yet closed the newest keeps its
 * previous count). Ties go by key, so equal series rank the same each time.
 * @example busiest(panels.latest, 10_000, 6) // ['app.latency{host="a"}', ...]
 */
export function busiest(latest, windowMs, n) {
  let newest = -Infinity;
  for (const m of latest.values()) if (m.end > newest) newest = m.end;
  const fresh = [];
  for (const m of latest.values()) if (m.end >= newest - windowMs && typeof m.count === "number") fresh.push(m);
  fresh.sort((a, b) => b.count - a.count || (a.series < b.series ? -1 : 1));
  return { end: newest, keys: fresh.slice(0, n).map((m) => m.series) };
}
