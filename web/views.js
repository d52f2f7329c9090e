// weir dashboard: the continuous views (GET /api/v1/views, role admin),
// each drawn by what its definition asks for, not by its name:
// - a view with `having`: the list of its hits (alerts of kind view), newest first;
// - a view with `emit: changes`: one card per group with the aggregates of the
//   group's newest window, moving with each live push while the window is open;
// - any other view: a uPlot chart of its first aggregate per window, one line
//   per value of its first group_by part (summed over the other parts when
//   the aggregate is a count or a sum, else one line per group).
// Live messages and fetches only change state; drawing waits for the next
// animation frame (requestRender), as the charts do.
import uPlot from "/vendor/uPlot.esm.js";
import { requestRender } from "./charts.js";
import { api, el, fmt } from "./dashboard.js";

export const viewLimits = {
  viewsShownMax: 8,
  groupsMax: 100, // groups of one chart or card view fetched and held
  linesMax: 8, // lines of one chart (one colour each)
  pointsMax: 60, // windows per line: an hour of 1-minute windows
  cardsMax: 12,
  hitsMax: 20,
  heightPx: 200,
};

const palette = ["#5fb3f9", "#3fb950", "#d29922", "#c39bff", "#f85149", "#56d4dd", "#e6edf3", "#ff9bce"];
const axis = { stroke: "#8b96a3", grid: { stroke: "#222932", width: 1 }, ticks: { stroke: "#262d36", width: 1 } };
const summable = new Set(["count", "sum"]);
const hhmm = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false, hour: "2-digit", minute: "2-digit" });

/** The tags of a series key (runtime/series.ts parseSeriesKey's twin); {} for a key without tags or a malformed one. */
export function tagsOfKey(key) {
  const open = key.indexOf("{");
  if (open < 0 || !key.endsWith("}")) return {};
  const tags = {};
  let i = open + 1;
  const end = key.length - 1;
  while (i < end) {
    const eq = key.indexOf('="', i);
    if (eq < 0) return {};
    const k = key.slice(i, eq);
    let v = "";
    let j = eq + 2;
    for (; j < end && key[j] !== '"'; j++) {
      if (key[j] === "\\") v += key[++j] === "n" ? "\n" : key[j];
      else v += key[j];
    }
    tags[k] = v;
    i = j + 2; // past the closing quote and the comma
  }
  return tags;
}

/** A group's tag named by a group_by part: a joined column's is the column's name. */
const tagOfPart = (part) => (part.includes(".") ? part.slice(part.indexOf(".") + 1) : part);
const groupLabel = (tags) => Object.values(tags).join(" · ") || "all";

/** The shape of a listed view: its name, window, series name, aggregates, first group tag, kind. */
function shapeOf(entry) {
  const def = entry.view && typeof entry.view === "object" ? entry.view : {};
  const aggregates = Array.isArray(def.aggregates) && def.aggregates.length > 0 ? def.aggregates.filter((a) => typeof a === "string") : ["count"];
  const groupBy = Array.isArray(def.group_by) ? def.group_by.filter((g) => typeof g === "string") : [];
  const kind = typeof def.having === "string" ? "hits" : def.emit === "changes" ? "cards" : "chart";
  return {
    name: entry.name, window: entry.window, series: entry.series, aggregates, groupBy, kind,
    having: typeof def.having === "string" ? def.having : "", from: typeof def.from === "string" ? def.from : "",
    fingerprint: JSON.stringify(entry.view),
  };
}

const belongs = (shape, key) => key === shape.series || key.startsWith(`${shape.series}{`);

/** The view's groups (its series listed by GET /api/v1/series), at most groupsMax. */
async function groupsOf(shape) {
  const body = await api(`/api/v1/series?match=${encodeURIComponent(`${shape.series}*`)}&limit=${viewLimits.groupsMax}`);
  return (body?.series ?? []).map((s) => s?.key).filter((k) => typeof k === "string" && belongs(shape, k));
}

async function windowsOf(shape, key, limit) {
  const q = `series=${encodeURIComponent(key)}&window=${encodeURIComponent(shape.window)}&limit=${limit}&format=columns`;
  return api(`/api/v1/windows?${q}`);
}

function cardShell(shape, what) {
  const card = el("article", "view-card");
  card.dataset.testid = "view";
  card.dataset.view = shape.name;
  card.dataset.kind = shape.kind;
  const head = el("header", "view-head");
  head.append(el("span", "view-name", shape.name), el("span", "view-what muted", what));
  card.append(head);
  return card;
}

// ---- chart: the first aggregate per window, a line per group part ------------

function createViewChart(shape) {
  const agg = shape.aggregates[0];
  const first = shape.groupBy.length > 0 ? tagOfPart(shape.groupBy[0]) : null;
  const sums = summable.has(agg) && first !== null;
  const by = shape.groupBy.map(tagOfPart).join(", ");
  const card = cardShell(shape, `${agg} per ${shape.window}${by ? ` by ${sums ? first : by}` : ""} · ${shape.from} · the last point is the open window`);
  const plot = el("div", "plot view-plot");
  plot.dataset.testid = "view-chart";
  plot.dataset.points = "0";
  plot.dataset.lines = "";
  card.append(plot);
  const groups = new Map(); // series key -> { line, points: Map<start, value> }
  let u = null;
  let lines = [];

  const lineOf = (key) => {
    const tags = tagsOfKey(key);
    return sums ? tags[first] ?? "unknown" : groupLabel(tags);
  };

  function note(key, start, value, authoritative) {
    if (typeof start !== "number" || typeof value !== "number" || !Number.isFinite(value)) return;
    let g = groups.get(key);
    if (g === undefined) {
      if (groups.size >= viewLimits.groupsMax) return;
      g = { line: lineOf(key), points: new Map() };
      groups.set(key, g);
    }
    if (!authoritative && g.points.has(start)) return; // history never overwrites a newer live value
    g.points.set(start, value);
    // Oldest first (history arrives in order, live at the end): drop the oldest past the bound.
    while (g.points.size > viewLimits.pointsMax) g.points.delete(Math.min(...g.points.keys()));
    requestRender(render);
  }

  function render() {
    const byLine = new Map(); // line -> Map<start, value>
    for (const g of groups.values()) {
      let m = byLine.get(g.line);
      if (m === undefined) {
        if (byLine.size >= viewLimits.linesMax) continue;
        m = new Map();
        byLine.set(g.line, m);
      }
      for (const [s, v] of g.points) m.set(s, (m.get(s) ?? 0) + v);
    }
    const names = [...byLine.keys()].sort();
    const starts = [...new Set([...byLine.values()].flatMap((m) => [...m.keys()]))].sort((a, b) => a - b).slice(-viewLimits.pointsMax);
    const data = [Float64Array.from(starts, (s) => s / 1000), ...names.map((n) => starts.map((s) => byLine.get(n).get(s) ?? null))];
    if (u === null || names.join("\u0000") !== lines.join("\u0000")) {
      u?.destroy();
      lines = names;
      u = new uPlot(options(names), data, plot);
    } else u.setData(data);
    plot.dataset.points = String(starts.length);
    plot.dataset.lines = names.join(",");
  }

  function options(names) {
    return {
      width: Math.max(200, plot.clientWidth), height: viewLimits.heightPx,
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      series: [{}, ...names.map((n, i) => ({ label: n, stroke: palette[i % palette.length], width: 2, spanGaps: false }))],
      axes: [{ ...axis }, { ...axis, size: 60 }],
    };
  }

  const resize = new ResizeObserver(() => u?.setSize({ width: Math.max(200, plot.clientWidth), height: viewLimits.heightPx }));
  resize.observe(plot);

  return {
    card,
    push(m) { note(m.series, m.start, m[agg], true); },
    async backfill() {
      for (const key of await groupsOf(shape)) {
        const h = await windowsOf(shape, key, viewLimits.pointsMax);
        if (h && Array.isArray(h.start)) for (let i = 0; i < h.start.length; i++) note(key, h.start[i], h[agg]?.[i], false);
      }
      requestRender(render);
    },
    destroy() { resize.disconnect(); u?.destroy(); card.remove(); },
  };
}

// ---- cards: each group's newest window, moving while it is open -------------

function createViewCards(shape) {
  const by = shape.groupBy.map(tagOfPart).join(", ");
  const card = cardShell(shape, `${shape.aggregates.join(", ")} of the running ${shape.window}${by ? ` by ${by}` : ""} · ${shape.from}`);
  const grid = el("div", "view-cards");
  card.append(grid);
  const groups = new Map(); // series key -> { box, fields, time, start }

  function box(key) {
    let g = groups.get(key);
    if (g !== undefined || groups.size >= viewLimits.cardsMax) return g;
    const b = el("div", "view-value-card");
    b.dataset.testid = "view-card";
    b.dataset.group = groupLabel(tagsOfKey(key));
    b.title = key;
    const time = el("span", "view-card-time muted", "–");
    const head = el("div", "view-card-head");
    head.append(el("span", "view-card-group", b.dataset.group), time);
    const fields = {};
    const rows = el("dl", "view-card-values");
    for (const a of shape.aggregates) {
      fields[a] = el("dd", "", "–");
      rows.append(el("dt", "muted", a), fields[a]);
    }
    b.append(head, rows);
    g = { box: b, fields, time, start: -Infinity };
    groups.set(key, g);
    const order = [...groups.entries()].sort(([p], [q]) => (p < q ? -1 : 1)).map(([, x]) => x.box);
    grid.replaceChildren(...order);
    return g;
  }

  /** A window of a group: shown if it is the group's newest (a push of an older one, a late merge, is not). */
  function note(key, w) {
    if (typeof w.start !== "number") return;
    const g = box(key);
    if (g === undefined || w.start < g.start) return;
    g.start = w.start;
    const open = Date.now() < w.end;
    requestRender(() => {
      g.time.textContent = `${hhmm(w.start)}${open ? " ●" : ""}`;
      g.time.title = open ? "the window from this minute, still open: it moves with each merge" : "the group's latest window (closed)";
      g.box.dataset.start = String(w.start);
      g.box.dataset.open = String(open);
      for (const a of shape.aggregates) {
        g.fields[a].textContent = fmt(w[a]);
        g.box.dataset[a] = String(w[a]);
      }
    });
  }

  return {
    card,
    push(m) { note(m.series, m); },
    async backfill() {
      for (const key of await groupsOf(shape)) {
        const h = await windowsOf(shape, key, 1);
        if (!h || !Array.isArray(h.start) || h.start.length === 0) continue;
        const w = { start: h.start[0], end: h.end[0] };
        for (const a of shape.aggregates) w[a] = h[a]?.[0];
        note(key, w);
      }
    },
    destroy() { card.remove(); },
  };
}

// ---- hits: the view's having hits, newest first -----------------------------

function createViewHits(shape) {
  const card = cardShell(shape, `${shape.having} per ${shape.window} · ${shape.from}`);
  const list = el("ol", "view-hits");
  list.dataset.testid = "view-hits";
  const empty = el("p", "muted empty", "No hits yet.");
  card.append(list, empty);
  const hits = []; // { id, a }

  function render() {
    const rows = hits.map(({ a }) => {
      const li = el("li", "view-hit");
      li.dataset.testid = "view-hit";
      li.dataset.series = a.series;
      li.dataset.start = String(a.ts);
      const tags = a.labels && typeof a.labels === "object" ? a.labels : tagsOfKey(a.series);
      li.title = typeof a.advice === "string" ? a.advice : a.series;
      const value = el("span", "view-hit-value", fmt(a.value));
      value.title = "the value when the window first passed the threshold";
      li.append(el("span", "view-hit-group", groupLabel(tags)), value, el("time", "view-hit-time muted", `${hhmm(a.ts)} +${shape.window}`));
      return li;
    });
    list.replaceChildren(...rows);
    empty.hidden = rows.length > 0;
  }

  function add(a) {
    if (!a || a.rule !== shape.name || typeof a.series !== "string" || typeof a.ts !== "number") return;
    const id = `${a.series}|${a.ts}`;
    if (hits.some((h) => h.id === id)) return;
    hits.push({ id, a });
    hits.sort((p, q) => q.a.ts - p.a.ts || (q.a.value ?? 0) - (p.a.value ?? 0));
    if (hits.length > viewLimits.hitsMax) hits.length = viewLimits.hitsMax;
    requestRender(render);
  }

  return {
    card,
    hit: add,
    async backfill() {
      const body = await api(`/api/v1/alerts?kind=view&rule=${encodeURIComponent(shape.name)}&limit=${viewLimits.hitsMax}`);
      for (const a of body?.alerts ?? []) add(a);
      requestRender(render);
    },
    destroy() { card.remove(); },
  };
}

const makers = { chart: createViewChart, cards: createViewCards, hits: createViewHits };

/** The live topics a view's part needs: its windows, and for emit: changes the running values too. */
function topicsOf(shape) {
  if (shape.kind === "hits") return []; // its hits come on `alerts`, which the page subscribes anyway
  const glob = `${shape.series}*`;
  const out = [`windows:${shape.window}:${glob}`];
  if (shape.kind === "cards") out.push(`updates:${shape.window}:${glob}`);
  return out;
}

/**
 * The views section: setViews(list of GET /api/v1/views) builds a part per
 * view (rebuilt when its definition changes), window/update messages go to
 * push, view alerts to hit.
 * @example
 *   const v = createViewsPanel({ panel, list }); v.setViews(body.views); sock.send(subscribe(v.topics()));
 */
export function createViewsPanel(els) {
  const parts = new Map(); // view name -> { shape, part }

  function setViews(entries) {
    const shapes = entries.filter((e) => e && typeof e.name === "string" && typeof e.window === "string" && typeof e.series === "string")
      .slice(0, viewLimits.viewsShownMax).map(shapeOf);
    const wanted = new Map(shapes.map((s) => [s.name, s]));
    for (const [name, p] of parts) {
      if (wanted.get(name)?.fingerprint === p.shape.fingerprint) continue;
      p.part.destroy();
      parts.delete(name);
    }
    const order = { chart: 0, cards: 1, hits: 2 };
    for (const shape of [...shapes].sort((p, q) => order[p.kind] - order[q.kind])) {
      if (parts.has(shape.name)) continue;
      const part = makers[shape.kind](shape);
      parts.set(shape.name, { shape, part });
      els.list.append(part.card);
      part.backfill();
    }
    els.panel.hidden = parts.size === 0;
  }

  /** A window or update message of a view's group. */
  function push(m) {
    const p = parts.get(m.view);
    if (p === undefined || m.window !== p.shape.window || !belongs(p.shape, m.series)) return false;
    p.part.push?.(m);
    return true;
  }

  return {
    setViews,
    push,
    hit(a) { parts.get(a.rule)?.part.hit?.(a); },
    topics: () => [...parts.values()].flatMap((p) => topicsOf(p.shape)),
    /** After a reconnect: history again, so nothing pushed meanwhile is missed. */
    backfill() { for (const p of parts.values()) p.part.backfill(); },
    hide() { els.panel.hidden = true; },
  };
}
