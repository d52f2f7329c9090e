// weir dashboard panels beside the charts: KPI cards, gauges, the alert
// feed, the top-k board and the rules panel. The gauges, the extra cards and
// the board come from GET /api/v1/dashboard (the config file's `dashboard:`,
// or the demo's): this file names no series. Server data reaches the
// DOM only through textContent, dataset and attributes, never as HTML.

import { compileSelector } from "./select.js";

export const panelLimits = {
  alertsMax: 50,
  seriesMax: 10_000, // latest windows remembered for the KPI cards (the demo alone makes ~6,000 series)
  windowEndsMax: 16, // window ends kept for events/s
  topK: 5,
};

const token = new URLSearchParams(location.search).get("token");

/** GET a JSON API path (with the page's token): its status (0 when unreachable) and body (null unless 2xx JSON). */
export async function apiGet(path) {
  try {
    const res = await fetch(path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    return { status: res.status, body: res.ok ? await res.json() : null };
  } catch {
    return { status: 0, body: null }; // the live feed carries the page until the next refresh
  }
}

/** GET a JSON API path (with the page's token); null on any failure. */
export async function api(path) {
  return (await apiGet(path)).body;
}

/** An element with a class and (escaped) text. */
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// Two decimals read well for sensor values and amounts; small values keep
// three significant digits instead of rounding to 0.
const wide = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const small = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 3 });

export function fmt(v) {
  if (typeof v !== "number" || !Number.isFinite(v)) return "–";
  return (Math.abs(v) >= 1 || v === 0 ? wide : small).format(v);
}

const timeOf = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });

// ---- KPI cards -----------------------------------------------------------

const kpiDefs = [
  ["rate", "events/s"], ["series", "series"], ["alerts", "alerts"],
  ["last", "latest"], ["avg", "window avg"], ["range", "min / max"], ["p99", "p99"],
];


const svgNs = "http://www.w3.org/2000/svg";
const arcPath = "M 10 60 A 50 50 0 0 1 110 60";

function svg(tag, attrs) {
  const e = document.createElementNS(svgNs, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

function buildGauge(def) {
  const wrap = el("figure", "gauge");
  wrap.dataset.testid = "gauge";
  const g = svg("svg", { viewBox: "0 0 120 70", role: "img", "aria-label": `${def.label} gauge` });
  g.append(svg("path", { d: arcPath, class: "gauge-track", pathLength: 100 }));
  const fill = svg("path", { d: arcPath, class: "gauge-fill", pathLength: 100, "stroke-dasharray": "0 100" });
  const value = svg("text", { x: 60, y: 56, class: "gauge-value", "text-anchor": "middle" });
  value.textContent = "–";
  g.append(fill, value);
  const cap = el("figcaption", "", def.unit ? `${def.label} (${def.unit})` : def.label);
  wrap.append(g, cap);
  wrap.dataset.series = def.series;
  return { def, wrap, fill, value, picks: compileSelector(def.series), members: new Set() };
}

function buildCard(def) {
  const card = el("div", "kpi");
  card.dataset.testid = "kpi";
  card.dataset.kpi = "card";
  card.dataset.series = def.series;
  const value = el("div", "kpi-value", "–");
  card.append(el("div", "kpi-label", def.label), value);
  card.title = `${def.agg} over the latest window of ${def.series}`;
  return { def, card, value, picks: compileSelector(def.series), members: new Set() };
}

/** A card's figure over the windows it picks (cardAggs in src/http/dashboard-def.ts). */
function cardValue(agg, windows, windowSec) {
  let count = 0, sum = 0, min = Infinity, max = -Infinity;
  for (const m of windows) {
    count += m.count ?? 0;
    sum += m.sum ?? 0;
    if (m.min < min) min = m.min;
    if (m.max > max) max = m.max;
  }
  if (windows.length === 0) return NaN;
  switch (agg) {
    case "count": return count;
    case "rate": return count / windowSec;
    case "sum": return sum;
    case "avg": return count > 0 ? sum / count : NaN;
    case "min": return min;
    case "max": return max;
    default: return NaN;
  }
}

// ---- alert feed ----------------------------------------------------------

const stateRank = { firing: 0, pending: 1, resolved: 2, inactive: 3 };
const openStates = new Set(["pending", "firing"]);

/** A value or threshold as shown: numbers formatted, a severity or trend class as is. */
export function valueText(v) {
  if (typeof v === "number") return fmt(v);
  return typeof v === "string" ? v : "–";
}

const sevOf = (a) => (typeof a.severity === "string" ? a.severity : "warning");
const sevClass = (sev) => `sev-${sev.replace(/[^a-z]/g, "")}`;

/** A state as a badge; its colour comes from data-state. */
function stateBadge(state) {
  const b = el("span", "state-badge", state);
  b.dataset.state = state;
  return b;
}

function anomalyAlertItem(a) {
  const sev = sevOf(a);
  const li = el("li", `alert ${sevClass(sev)}`);
  li.append(el("span", "alert-sev", sev), el("time", "alert-time", timeOf(a.ts)),
    el("span", "alert-series", a.series), el("span", "alert-detail", `value ${fmt(a.value)} · z ${fmt(a.z)}`));
  li.title = a.series;
  return li;
}

function ruleAlertItem(a) {
  const sev = sevOf(a);
  const state = typeof a.state === "string" ? a.state : "unknown";
  const rule = typeof a.rule === "string" ? a.rule : "rule";
  const li = el("li", `alert rule-alert ${sevClass(sev)}`);
  li.dataset.rule = rule;
  li.dataset.state = state;
  const head = el("span", "alert-head");
  head.append(stateBadge(state), el("span", "alert-rule", rule), el("span", "alert-sev", sev));
  li.append(head, el("time", "alert-time", timeOf(a.ts)), el("span", "alert-series", a.series),
    el("span", "alert-detail", `value ${valueText(a.value)} · threshold ${valueText(a.threshold)}`));
  if (typeof a.advice === "string" && a.advice !== "") li.append(el("span", "alert-advice", a.advice));
  li.title = `${rule} on ${a.series}`;
  return li;
}

// Of two transitions of one instance, the later; at one instant, the one further along.
const progress = { pending: 1, firing: 2, resolved: 3, inactive: 4 };
const later = (p, q) => p.ts > q.ts || (p.ts === q.ts && (progress[p.state] ?? 0) > (progress[q.state] ?? 0));

/** Orders the feed in place: the newest transition of each open rule instance (pending, firing) first, then newest first. */
function orderAlerts(entries) {
  const newest = new Map(); // rule|series -> its newest transition held
  for (const { a } of entries) {
    if (a.kind !== "rule") continue;
    const k = `${a.rule}|${a.series}`;
    const seen = newest.get(k);
    if (seen === undefined || later(a, seen)) newest.set(k, a);
  }
  for (const e of entries) {
    e.open = e.a.kind === "rule" && openStates.has(e.a.state) && newest.get(`${e.a.rule}|${e.a.series}`) === e.a;
    e.li.classList.toggle("open", e.open);
  }
  entries.sort((p, q) => (q.open - p.open) || (q.a.ts - p.a.ts));
}

/**
 * The panels and the little state they need, fed by window and alert messages.
 * @example
 *   const p = createPanels({ kpis, gauges, gaugesPanel, alerts, top, topPanel, topTitle, topSub, ... });
 *   p.configure(await api("/api/v1/dashboard")); p.noteWindow(msg); p.render(focusKey, 10);
 */
export function createPanels(els) {
  const latest = new Map(); // series -> latest window message
  const countsByEnd = new Map(); // window end -> sum of counts over all series
  const alertEntries = []; // {id, a, li} in the feed's order
  let alertsTotal = 0;

  const kpis = {};
  for (const [id, label] of kpiDefs) {
    const card = el("div", "kpi");
    card.dataset.testid = "kpi";
    card.dataset.kpi = id;
    const value = el("div", "kpi-value", "–");
    card.append(el("div", "kpi-label", label), value);
    els.kpis.append(card);
    kpis[id] = { card, value };
  }
  let gauges = [];
  let cards = [];

  /** The gauges, extra cards and board of GET /api/v1/dashboard; a section with nothing to show is hidden. */
  function configure(def) {
    gauges = (Array.isArray(def?.gauges) ? def.gauges : []).map(buildGauge);
    cards = (Array.isArray(def?.cards) ? def.cards : []).map(buildCard);
    els.gauges.replaceChildren(...gauges.map((g) => g.wrap));
    els.gaugesPanel.hidden = gauges.length === 0;
    for (const c of cards) els.kpis.append(c.card);
    const top = def?.top ?? null;
    els.topPanel.hidden = top === null;
    if (top !== null) {
      els.topTitle.textContent = top.label;
      els.topSub.textContent = `${top.name} ${top.agg} by ${top.by}, last window`;
    }
    for (const key of latest.keys()) noteMember(key);
  }

  /** Which gauges and cards a series counts in: decided once per series, not on every render. */
  function noteMember(key) {
    for (const x of [...gauges, ...cards]) if (x.picks(key)) x.members.add(key);
  }

  /** The latest windows of `members` in the newest two ends among them: a series that stopped sending drops out. */
  function freshWindows(members, windowSec) {
    const ws = [];
    let newest = -Infinity;
    for (const key of members) {
      const m = latest.get(key);
      if (m === undefined) continue;
      ws.push(m);
      if (m.end > newest) newest = m.end;
    }
    return ws.filter((m) => m.end >= newest - windowSec * 1000);
  }

  function noteWindow(m) {
    const isNew = !latest.has(m.series);
    if (!isNew || latest.size < panelLimits.seriesMax) latest.set(m.series, m);
    if (isNew && latest.has(m.series)) noteMember(m.series);
    if (typeof m.count === "number") countsByEnd.set(m.end, (countsByEnd.get(m.end) ?? 0) + m.count);
    // Map keeps insertion order, which is roughly time order: drop the oldest.
    while (countsByEnd.size > panelLimits.windowEndsMax) countsByEnd.delete(countsByEnd.keys().next().value);
  }

  function eventsPerSec(windowSec) {
    const ends = [...countsByEnd.keys()].sort((a, b) => b - a);
    // The newest end may still be filling as series close one by one.
    const end = ends.length > 1 ? ends[1] : ends[0];
    return end === undefined ? NaN : countsByEnd.get(end) / windowSec;
  }

  function setKpi(id, text, hint) {
    if (kpis[id].value.textContent !== text) kpis[id].value.textContent = text;
    if (hint !== undefined) kpis[id].card.title = hint;
  }

  function renderGauges(windowSec) {
    for (const g of gauges) {
      let sum = 0;
      let n = 0;
      for (const m of freshWindows(g.members, windowSec)) {
        if (typeof m.avg === "number") { sum += m.avg; n++; }
      }
      if (n === 0) continue;
      const v = sum / n;
      const pct = Math.max(0, Math.min(100, ((v - g.def.min) / (g.def.max - g.def.min)) * 100));
      g.fill.setAttribute("stroke-dasharray", `${pct.toFixed(1)} 100`);
      g.value.textContent = fmt(v);
      g.wrap.title = `mean of the latest window avg over ${n} series`;
    }
  }

  function render(focusKey, windowSec) {
    setKpi("rate", fmt(Math.round(eventsPerSec(windowSec))));
    setKpi("series", fmt(latest.size));
    setKpi("alerts", fmt(alertsTotal));
    const f = focusKey ? latest.get(focusKey) : undefined;
    const hint = focusKey ? `of ${focusKey}` : "pick a series";
    setKpi("last", fmt(f?.last), hint);
    setKpi("avg", fmt(f?.avg), hint);
    setKpi("range", f ? `${fmt(f.min)} / ${fmt(f.max)}` : "–", hint);
    setKpi("p99", fmt(f?.p99), hint);
    els.focus.textContent = focusKey ?? "";
    renderGauges(windowSec);
    for (const c of cards) {
      const v = cardValue(c.def.agg, freshWindows(c.members, windowSec), windowSec);
      const text = Number.isFinite(v) && c.def.unit ? `${fmt(v)} ${c.def.unit}` : fmt(v);
      if (c.value.textContent !== text) c.value.textContent = text;
    }
  }

  /** Adds an alert: open rule instances (pending, firing) first, then newest first; at most alertsMax. */
  function addAlert(a) {
    if (!a || typeof a.series !== "string" || typeof a.ts !== "number") return;
    const id = `${a.kind}|${a.rule ?? ""}|${a.series}|${a.ts}|${a.state ?? ""}`;
    if (alertEntries.some((e) => e.id === id)) return;
    alertsTotal++;
    // A view's having hit reads like a rule's transition: its view, state, value, threshold and advice.
    const li = a.kind === "rule" || a.kind === "view" ? ruleAlertItem(a) : anomalyAlertItem(a);
    li.dataset.testid = "alert-item";
    li.dataset.kind = a.kind === "rule" || a.kind === "view" ? a.kind : "anomaly";
    li.dataset.series = a.series;
    li.dataset.ts = String(a.ts);
    alertEntries.push({ id, a, li });
    orderAlerts(alertEntries);
    // Past alertsMax the end of that order goes: the oldest of those no longer open.
    if (alertEntries.length > panelLimits.alertsMax) alertEntries.length = panelLimits.alertsMax;
    els.alerts.replaceChildren(...alertEntries.map((e) => e.li));
    els.alertsEmpty.hidden = true;
  }

  function renderTop(items) {
    if (!Array.isArray(items)) return;
    const max = Math.max(1e-9, ...items.map((i) => (typeof i.value === "number" ? i.value : 0)));
    const rows = items.slice(0, panelLimits.topK).map((item, i) => {
      const li = el("li", "top-row");
      li.dataset.testid = "top-row";
      const bar = el("span", "top-bar");
      bar.style.width = `${Math.max(2, (item.value / max) * 100)}%`;
      li.append(el("span", "top-rank", String(i + 1)), el("span", "top-key", String(item.key)),
        el("span", "top-value", fmt(item.value)), bar);
      return li;
    });
    els.top.replaceChildren(...rows);
    els.topEmpty.hidden = rows.length > 0;
  }

  return { configure, noteWindow, render, addAlert, renderTop, latest };
}

// ---- rules panel ---------------------------------------------------------

export const rulesLimits = {
  rulesShownMax: 50, // a config may hold 1,000; the worst off are listed first
  instancesShownMax: 8, // per rule; firing, then pending, then resolved
};

/** What a rule watches, in one line: `avg over 30s > 48`, `anomaly >= warning`, `trend == rising`. */
export function watchText(w) {
  if (!w || typeof w !== "object") return "–";
  if (w.kind === "aggregate") return `${w.agg}${w.over ? ` over ${w.over}` : ""} ${w.op} ${valueText(w.threshold)}`;
  return `${w.kind} ${w.op} ${valueText(w.threshold)}`;
}

const rankOf = (state) => stateRank[state] ?? 9;
const worstOf = (r) => r.instances.reduce((w, i) => (rankOf(i.state) < rankOf(w) ? i.state : w), "inactive");

function instanceRow(i, onPick) {
  const li = el("li", "rule-instance");
  li.dataset.testid = "rule-instance";
  li.dataset.series = i.series;
  li.dataset.state = i.state;
  const series = el("button", "rule-series", i.series);
  series.type = "button";
  series.title = `chart ${i.series}`;
  series.addEventListener("click", () => onPick(i.series));
  const since = el("time", "rule-since", typeof i.since === "number" ? timeOf(i.since) : "–");
  since.title = "since (event time)";
  li.append(stateBadge(i.state), series, el("span", "rule-value", valueText(i.value)), since);
  return li;
}

function ruleItem(r, onPick) {
  const li = el("li", "rule");
  li.dataset.testid = "rule";
  li.dataset.rule = r.name;
  li.dataset.state = worstOf(r);
  const head = el("div", "rule-head");
  head.append(el("span", "rule-name", r.name), el("span", "rule-source muted", r.source ?? ""));
  const watch = el("div", "rule-watch", watchText(r.watch));
  watch.dataset.testid = "rule-watch";
  const n = r.series.length;
  const picks = `selector picks ${n}${r.seriesMore ? "+" : ""} series`;
  const open = r.instances.filter((i) => openStates.has(i.state)).length;
  li.append(head, watch, el("div", "rule-meta muted", `${picks} · ${open} open of ${r.instances.length}`));
  const shown = [...r.instances]
    .sort((p, q) => rankOf(p.state) - rankOf(q.state) || q.since - p.since)
    .slice(0, rulesLimits.instancesShownMax);
  if (shown.length > 0) {
    const list = el("ul", "rule-instances");
    list.append(...shown.map((i) => instanceRow(i, onPick)));
    li.append(list);
  }
  if (r.instances.length > shown.length) li.append(el("div", "rule-meta muted", `and ${r.instances.length - shown.length} more`));
  return li;
}

function actionRow(a) {
  const tr = el("tr", "action-row");
  tr.dataset.testid = "action-row";
  tr.dataset.action = a.name;
  const breaker = a.breaker && typeof a.breaker.state === "string" ? a.breaker.state : "–";
  const cells = [
    el("td", "action-name", a.name), el("td", "num", fmt(a.delivered)), el("td", "num", fmt(a.failed)),
    el("td", "action-breaker", breaker.replace("_", " ")), el("td", "num", `${fmt(a.queueDepth)}/${fmt(a.queueMax)}`),
  ];
  if (typeof a.type === "string" && a.type !== a.name) cells[0].append(" ", el("span", "muted", a.type));
  cells[2].dataset.failed = String(a.failed ?? 0);
  cells[3].dataset.breaker = breaker;
  for (const c of cells) tr.append(c);
  const notes = [a.dropped > 0 ? `${a.dropped} dropped` : "", a.retries > 0 ? `${a.retries} retries` : "",
    a.lastError ? `last error: ${a.lastError}` : ""].filter(Boolean);
  tr.title = notes.join(" · ");
  return tr;
}

const isRule = (r) => r && typeof r.name === "string" && Array.isArray(r.series) && Array.isArray(r.instances);
const isAction = (a) => a && typeof a.name === "string";

/**
 * The rules panel, from GET /api/v1/rules: each rule's watch and instances (a
 * series clicked is charted), and each action's deliveries and breaker.
 * @example
 *   const r = createRulesPanel({ panel, list, empty, count, actions, actionsTable }, { onPick: addChart });
 *   r.render(await api("/api/v1/rules"));
 */
export function createRulesPanel(els, { onPick }) {
  function render(body) {
    const rules = (Array.isArray(body?.rules) ? body.rules : []).filter(isRule);
    const actions = (Array.isArray(body?.actions) ? body.actions : []).filter(isAction);
    const sorted = [...rules].sort((p, q) => rankOf(worstOf(p)) - rankOf(worstOf(q)) || (p.name < q.name ? -1 : 1));
    const shown = sorted.slice(0, rulesLimits.rulesShownMax);
    els.list.replaceChildren(...shown.map((r) => ruleItem(r, onPick)));
    els.empty.hidden = rules.length > 0;
    const firing = rules.filter((r) => worstOf(r) === "firing").length;
    const more = rules.length > shown.length ? `, first ${shown.length} listed` : "";
    els.count.textContent = `${rules.length} rule${rules.length === 1 ? "" : "s"} · ${firing} firing${more}`;
    els.actions.replaceChildren(...actions.map(actionRow));
    els.actionsTable.hidden = actions.length === 0;
    els.panel.hidden = false;
  }

  function hide() {
    els.panel.hidden = true;
  }

  return { render, hide };
}
