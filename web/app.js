// weir dashboard: connection to /ws/live, the series picker and the charts.
// Messages only update state; all drawing happens in the next animation
// frame (requestRender), once per frame whatever the message rate.
//
// Which series are charted, in this order of say: the page's link (the
// user's picks, kept there: link.js), the config's `dashboard: charts:`
// (GET /api/v1/dashboard), else the busiest series (busiest.js). The page
// names no series of its own.
import { busiest } from "./busiest.js";
import { createChart, requestRender } from "./charts.js";
import { api, apiGet, createPanels, createRulesPanel } from "./dashboard.js";
import { readLink, writeLink } from "./link.js";
import { createPicker } from "./picker.js";
import { compileSelector, nameOf } from "./select.js";
import { createViewsPanel } from "./views.js";

const ui = {
  chartsMax: 6, // the server's dashboardChartsMax is the same
  seriesMax: 10_000, // the demo alone makes ~6,000 (README "Two commands")
  seriesListMax: 1000,
  backoffBaseMs: 500,
  backoffMaxMs: 30_000,
  topRefreshMs: 10_000,
  rulesRefreshMs: 5_000,
  viewsRefreshMs: 30_000,
  seriesRefreshMs: 30_000,
  anomalySeriesMax: 500, // series whose live anomalies are kept for a chart opened later
  anomaliesPerSeriesMax: 10,
};
const $ = (id) => document.getElementById(id);
const els = {
  badge: $("state"), spec: $("spec"), charts: $("charts"), note: $("charts-note"),
};
const panels = createPanels({
  kpis: $("kpis"), gauges: $("gauges"), gaugesPanel: $("gauges-panel"), alerts: $("alerts"), alertsEmpty: $("alerts-empty"),
  top: $("top"), topEmpty: $("top-empty"), topPanel: $("top-panel"), topTitle: $("top-title"), topSub: $("top-sub"), focus: $("focus"),
});
const rulesPanel = createRulesPanel({
  panel: $("rules-panel"), list: $("rules"), empty: $("rules-empty"), count: $("rules-count"),
  actions: $("actions"), actionsTable: $("actions-table"),
}, { onPick: pickSeries });
const viewsPanel = createViewsPanel({ panel: $("views-panel"), list: $("views") });

const token = new URLSearchParams(location.search).get("token");
const known = new Map(); // series key -> trend class
const charts = new Map(); // series key -> chart
// Anomalies seen live, by series (oldest series first): a chart opened later shows them even
// before the store has committed them (results reach the store with the next checkpoint).
const liveAnomalies = new Map();
// The last answer of GET /api/v1/rules, patched by live rule alerts until the next.
let rulesBody = { rules: [], actions: [] };
let rulesDenied = false; // 401/403: a token without the admin role; not asked again
let rulesInFlight = false;
let rulesAgain = false;
let viewsDenied = false; // 401/403: a token without the admin role; not asked again
let viewsBackfillDue = false; // after a reconnect: the views' history again, once their topics are back
const viewTopics = new Set(); // the views' live topics subscribed on the current socket
let liveSock = null;
let spec = null;
let windowSec = 10;
const link = readLink();
let userPicked = link.charts.length > 0; // the link's charts are a choice: nothing is picked for the user
let filterText = link.filter;
let dashboard = null; // GET /api/v1/dashboard, once answered
let focusKey = null;
let state = "connecting";

// ---- charts --------------------------------------------------------------

function renderPanels() {
  panels.render(focusKey, windowSec);
}

function setFocus(key) {
  focusKey = key;
  for (const c of charts.values()) c.setFocused(c.key === key);
  requestRender(renderPanels);
}

function addChart(key) {
  if (charts.has(key) || charts.size >= ui.chartsMax) return;
  const chart = createChart(els.charts, key, { onRemove: removeChart, onFocus: setFocus });
  charts.set(key, chart);
  chart.setTrend(known.get(key));
  chart.setRules(rulesOf(key));
  for (const a of liveAnomalies.get(key) ?? []) chart.addAnomaly(a);
  if (spec !== null) chart.backfill(spec);
  if (focusKey === null) setFocus(key);
  chosenChanged();
}

function removeChart(key) {
  charts.get(key)?.destroy();
  charts.delete(key);
  if (focusKey === key) setFocus(charts.keys().next().value ?? null);
  chosenChanged();
}

/** The user's own pick or removal: from now on the charts are theirs, and the link says which. */
function userChose(key, on) {
  // The first pick when the page filled every slot itself: the last of its own charts makes room.
  if (on && !userPicked && !charts.has(key) && charts.size >= ui.chartsMax) removeChart([...charts.keys()].at(-1));
  userPicked = true;
  if (!known.has(key)) noteSeries(key);
  if (on) addChart(key);
  else removeChart(key);
}

/** A series picked elsewhere (the rules panel): charted as if ticked in the picker. */
function pickSeries(key) {
  userChose(key, true);
}

function chosenChanged() {
  if (userPicked) writeLink([...charts.keys()], filterText);
  requestRender(renderPicker);
  requestRender(renderNote);
}

// ---- what is charted when the user has chosen nothing ---------------------

/** The config's `charts:`: the first known series (by key) each selector picks. */
function pickConfigured() {
  const sorted = [...known.keys()].sort();
  for (const sel of dashboard.charts) {
    const picks = compileSelector(sel);
    if ([...charts.keys()].some(picks)) continue;
    const key = sorted.find(picks);
    if (key) addChart(key);
  }
}

/**
 * The busiest series, re-ranked at most once a frame (a sort of the series
 * the page holds, ~2 ms at 10,000); charts are swapped only when the
 * ranking moves, which over the newest two window ends it seldom does.
 */
function pickBusiest() {
  const { keys } = busiest(panels.latest, windowSec * 1000, ui.chartsMax);
  const want = new Set(keys);
  if (keys.length === charts.size && [...charts.keys()].every((k) => want.has(k))) return;
  for (const key of [...charts.keys()]) if (!want.has(key)) removeChart(key);
  for (const key of keys) addChart(key);
}

function autoPick() {
  if (userPicked || dashboard === null) return;
  if (dashboard.charts.length > 0) pickConfigured();
  else pickBusiest();
  requestRender(renderNote);
}

/** One line above the charts saying why these are the ones shown. */
function renderNote() {
  const n = charts.size;
  const series = `${n} series`;
  let text;
  if (userPicked) text = n === 0 ? "No series charted: pick some below." : `Showing the ${series} picked (kept in this page's link); pick others below.`;
  else if (dashboard === null || known.size === 0) text = "Waiting for series…";
  else if (dashboard.charts.length > 0) text = `Showing the ${series} the dashboard config names; pick others below.`;
  else if (n === 0) text = `Waiting for a closed ${spec ?? ""} window to find the busiest series…`;
  else text = `Showing the ${n} busiest series (events in the latest ${spec} window); pick others below.`;
  if (els.note.textContent !== text) els.note.textContent = text;
  els.note.dataset.mode = userPicked ? "picked" : dashboard?.charts.length > 0 ? "config" : n > 0 ? "busiest" : "waiting";
}

// ---- picker ----------------------------------------------------------------

const picker = createPicker({ list: $("picker-list"), count: $("picker-count"), filter: $("filter") }, {
  charts, chartsMax: ui.chartsMax, onToggle: userChose,
  full: () => userPicked && charts.size >= ui.chartsMax, // the page's own picks give way to the user's first
  onFilter: (text) => {
    filterText = text;
    writeLink(userPicked ? [...charts.keys()] : null, text);
  },
});
const renderPicker = () => picker.render(known.keys());

function noteSeries(key, trend) {
  if (!known.has(key) && known.size >= ui.seriesMax) return;
  const isNew = !known.has(key);
  known.set(key, trend ?? known.get(key));
  if (isNew) {
    requestRender(renderPicker);
    requestRender(autoPick);
  }
}

async function refreshSeries() {
  const body = await api(`/api/v1/series?limit=${ui.seriesListMax}`);
  for (const s of body?.series ?? []) if (s && typeof s.key === "string") noteSeries(s.key, s.trend);
  requestRender(autoPick);
}

async function refreshTop() {
  const top = dashboard?.top;
  if (state !== "live" || !top) return; // a refused fetch would only add console noise
  const q = new URLSearchParams({ name: top.name, by: top.by, k: "5", agg: top.agg });
  const body = await api(`/api/v1/top?${q}`);
  if (body) panels.renderTop(body.items);
}

/** GET /api/v1/dashboard: the gauges, cards, board and default charts; asked until answered (the page is useless without). */
async function loadDashboard() {
  const { status, body } = await apiGet("/api/v1/dashboard");
  if (body === null || typeof body !== "object") {
    // 401/403: a token that may not read; anything else: weir is not up yet.
    if (status !== 401 && status !== 403) setTimeout(loadDashboard, ui.backoffBaseMs * 4);
    return;
  }
  dashboard = { charts: Array.isArray(body.charts) ? body.charts.filter((c) => typeof c === "string") : [], top: body.top ?? null };
  panels.configure(body);
  refreshTop();
  requestRender(autoPick);
  requestRender(renderPanels);
}

async function refreshAlerts() {
  const body = await api(`/api/v1/alerts?limit=50`);
  for (const a of body?.alerts ?? []) panels.addAlert(a);
  requestRender(renderPanels);
}

// ---- rules: threshold lines, the rules panel -----------------------------

/** The aggregate rules watching `key` (its selector picks it, or it has an instance), with that instance's state. */
function rulesOf(key) {
  const out = [];
  for (const r of rulesBody.rules) {
    if (r?.watch?.kind !== "aggregate" || !Array.isArray(r.series) || !Array.isArray(r.instances)) continue;
    const inst = r.instances.find((i) => i.series === key);
    if (inst === undefined && !r.series.includes(key)) continue;
    const { agg, over, op, threshold } = r.watch;
    out.push({ rule: r.name, agg, over, op, threshold, state: inst?.state ?? "inactive" });
  }
  return out;
}

function renderRules() {
  if (rulesDenied) return;
  rulesPanel.render(rulesBody);
  for (const c of charts.values()) c.setRules(rulesOf(c.key));
}

/** One GET at a time; a refresh asked for meanwhile runs once it is answered. */
async function refreshRules() {
  if (rulesDenied || state !== "live") return; // a refused fetch would only add console noise
  if (rulesInFlight) {
    rulesAgain = true;
    return;
  }
  rulesInFlight = true;
  const { status, body } = await apiGet("/api/v1/rules");
  rulesInFlight = false;
  if (status === 401 || status === 403) {
    rulesDenied = true;
    rulesPanel.hide();
    return;
  }
  if (body && Array.isArray(body.rules)) {
    rulesBody = { rules: body.rules, actions: Array.isArray(body.actions) ? body.actions : [] };
    requestRender(renderRules);
  }
  if (rulesAgain) {
    rulesAgain = false;
    refreshRules();
  }
}

/** Applies one transition to the instances shown, as the server's list follows it. */
function patchInstance(instances, a) {
  const i = instances.findIndex((x) => x.series === a.series);
  if (i >= 0 && instances[i].since > a.ts) return; // older than what is shown (a replay)
  const inst = { series: a.series, state: a.state, since: a.ts, value: a.value };
  if (a.state === "inactive") {
    if (i >= 0) instances.splice(i, 1); // the server forgets an inactive instance too
  } else if (i < 0) instances.push(inst);
  else instances[i] = inst;
}

/** A live rule transition: its instance's state shown at once, then the whole list asked for again. */
function noteRuleAlert(a) {
  const r = rulesBody.rules.find((x) => x?.name === a.rule);
  if (r && Array.isArray(r.instances) && typeof a.series === "string") {
    patchInstance(r.instances, a);
    requestRender(renderRules);
  }
  refreshRules();
}

// ---- views: the continuous views section ---------------------------------

/** Subscribes the topics the views section needs now, and drops those it no longer does. */
function syncViewTopics() {
  if (liveSock === null || liveSock.readyState !== WebSocket.OPEN) return;
  const wanted = new Set(viewsPanel.topics());
  const add = [...wanted].filter((t) => !viewTopics.has(t));
  const drop = [...viewTopics].filter((t) => !wanted.has(t));
  if (add.length > 0) liveSock.send(JSON.stringify({ op: "subscribe", topics: add }));
  if (drop.length > 0) liveSock.send(JSON.stringify({ op: "unsubscribe", topics: drop }));
  viewTopics.clear();
  for (const t of wanted) viewTopics.add(t);
}

async function refreshViews() {
  if (viewsDenied || state !== "live") return;
  const { status, body } = await apiGet("/api/v1/views");
  if (status === 401 || status === 403) {
    viewsDenied = true;
    viewsPanel.hide();
    return;
  }
  if (!body || !Array.isArray(body.views)) return;
  viewsPanel.setViews(body.views); // a new view back-fills itself
  syncViewTopics(); // subscribed before any back-fill is answered: no gap
  if (viewsBackfillDue) {
    viewsBackfillDue = false;
    viewsPanel.backfill();
  }
}

// ---- connection ----------------------------------------------------------

let attempt = 0;
let countdown = 0;

function setState(s, text = s) {
  state = s;
  els.badge.dataset.state = s;
  els.badge.textContent = text;
}

function parseSeconds(spec) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)/.exec(spec);
  if (!m) return 10;
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2]];
}

function connect() {
  clearInterval(countdown);
  setState("connecting");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = token ? `?token=${encodeURIComponent(token)}` : "";
  let sock;
  try {
    sock = new WebSocket(`${scheme}://${location.host}/ws/live${query}`);
  } catch {
    reconnectLater();
    return;
  }
  sock.onmessage = (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return; // not ours to understand; the next message may be fine
    }
    for (const m of Array.isArray(msg) ? msg : [msg]) if (m && typeof m === "object") handle(sock, m);
  };
  sock.onclose = () => reconnectLater(); // also follows every error
}

function onHello(sock, m) {
  // Back-off resets on a hello, not on open: a server that accepts and
  // closes at once must still be retried slowly.
  attempt = 0;
  const first = Array.isArray(m.windows) && typeof m.windows[0] === "string" ? m.windows[0] : null;
  if (first === null) return;
  if (spec !== null && spec !== first) {
    for (const key of [...charts.keys()]) charts.get(key).destroy();
    charts.clear();
    focusKey = null;
  }
  viewsBackfillDue = spec !== null; // a reconnect: views shown before may have missed pushes
  spec = first;
  windowSec = parseSeconds(spec);
  els.spec.textContent = `window ${spec}`;
  // One frame per flush (an array): fewer frames to parse, and the server builds it once for every page alike.
  sock.send(JSON.stringify({ op: "throttle", ms: 100, batch: true }));
  sock.send(JSON.stringify({ op: "subscribe", topics: [`windows:${spec}:*`, "anomalies", "trends", "alerts"] }));
  setState("live");
  liveSock = sock;
  viewTopics.clear(); // a new socket holds none of them yet
  for (const c of charts.values()) c.backfill(spec); // fills any gap while we were away
  refreshSeries();
  refreshAlerts();
  refreshTop();
  refreshRules();
  refreshViews();
}

function keepAnomaly(m) {
  const list = liveAnomalies.get(m.series) ?? [];
  liveAnomalies.delete(m.series); // re-inserted last: the map stays in order of the newest anomaly
  list.push(m);
  if (list.length > ui.anomaliesPerSeriesMax) list.shift();
  liveAnomalies.set(m.series, list);
  if (liveAnomalies.size > ui.anomalySeriesMax) liveAnomalies.delete(liveAnomalies.keys().next().value);
}

function handle(sock, m) {
  // A view's window (also on `updates:` for emit: changes): the views section, and the picker below like any series.
  if ((m.type === "window" || m.type === "update") && typeof m.view === "string") viewsPanel.push(m);
  if (m.type === "window") {
    if (typeof m.series !== "string" || m.window !== spec) return;
    noteSeries(m.series);
    charts.get(m.series)?.push(m);
    panels.noteWindow(m);
    requestRender(renderPanels);
    if (!userPicked) requestRender(autoPick);
  } else if (m.type === "anomaly") {
    if (typeof m.series !== "string") return;
    keepAnomaly(m);
    charts.get(m.series)?.addAnomaly(m);
  } else if (m.type === "trend") {
    if (typeof m.series !== "string") return;
    known.set(m.series, m.class);
    charts.get(m.series)?.setTrend(m.class);
  } else if (m.type === "alert") {
    panels.addAlert(m);
    if (m.kind === "rule" && typeof m.rule === "string") noteRuleAlert(m);
    if (m.kind === "view" && typeof m.rule === "string") viewsPanel.hit(m);
    requestRender(renderPanels);
  } else if (m.type === "hello") {
    onHello(sock, m);
  }
}

function reconnectLater() {
  // Exponential, capped, with "equal jitter" so a restarted server is not
  // hit by every page at the same instant.
  const capMs = Math.min(ui.backoffMaxMs, ui.backoffBaseMs * 2 ** attempt);
  const delayMs = capMs / 2 + Math.random() * (capMs / 2);
  attempt++;
  const due = Date.now() + delayMs;
  const show = () => setState("reconnecting", `reconnecting in ${Math.max(0, Math.ceil((due - Date.now()) / 1000))}s`);
  show();
  clearInterval(countdown);
  countdown = setInterval(show, 1000);
  setTimeout(connect, delayMs);
}

// ---- start ---------------------------------------------------------------

setInterval(refreshTop, ui.topRefreshMs);
setInterval(refreshRules, ui.rulesRefreshMs);
setInterval(refreshViews, ui.viewsRefreshMs);
setInterval(() => { if (state === "live") refreshSeries(); }, ui.seriesRefreshMs);
for (const key of link.charts.slice(0, ui.chartsMax)) {
  noteSeries(key);
  addChart(key);
}
if (filterText !== "") picker.setFilter(filterText, true);
requestRender(renderPanels);
requestRender(renderNote);
loadDashboard();
connect();
