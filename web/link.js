// The page's link holds the user's choice, so reloading or sharing it
// shows the same charts: `?chart=<key>` once per charted series (keys hold
// commas, so one parameter each) and `q=<filter>`. Other parameters
// (`token`) are kept as they are. Written with replaceState: choosing a
// series is not a page to go back to.

/** The charts and filter the link asks for. */
export function readLink(search = location.search) {
  const p = new URLSearchParams(search);
  return { charts: p.getAll("chart"), filter: p.get("q") ?? "" };
}

/** Puts `charts` (null: leave them out, the page picks its own) and `filter` into the link. */
export function writeLink(charts, filter) {
  const p = new URLSearchParams(location.search);
  p.delete("chart");
  for (const key of charts ?? []) p.append("chart", key);
  if (filter.trim() === "") p.delete("q");
  else p.set("q", filter.trim());
  const qs = p.toString();
  const url = `${location.pathname}${qs === "" ? "" : `?${qs}`}${location.hash}`;
  if (url !== `${location.pathname}${location.search}${location.hash}`) history.replaceState(null, "", url);
}
