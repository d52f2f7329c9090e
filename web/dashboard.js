// weir dashboard panels beside the charts: KPI cards, sensor gauges, the
// alert feed and the top-k board. Server data reaches the DOM only through
// textContent, dataset and attributes, never as HTML.

export const panelLimits = {
  alertsMax: 50,
  seriesMax: 5000, // latest windows remembered for the KPI cards
  windowEndsMax: 16, // window ends kept for events/s
  topK: 5,
};

const token = new URLSearchParams(location.search).get("token");

/** GET a JSON API path (with the page's token); null on any failure. */
export async function api(path) {
  try {
    const res = await fetch(path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    return res.ok ? await res.json() : null;
  } catch {
    return null; // the live feed carries the page until the next refresh
  }
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

const gaugeDefs = [
  { name: "sensor.temperature", label: "temperature", unit: "°C", min: -10, max: 40 },
  { name: "sensor.humidity", label: "humidity", unit: "%", min: 0, max: 100 },
  { name: "sensor.pressure", label: "pressure", unit: "hPa", min: 960, max: 1060 },
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
  const cap = el("figcaption", "", `${def.label} (${def.unit})`);
  wrap.append(g, cap);
  return { def, wrap, fill, value };
}

/**
 * The panels and the little state they need, fed by window and alert messages.
 * @example
 *   const p = createPanels({ kpis, gauges, alerts, top }); p.noteWindow(msg); p.render(focusKey, 10);
 */
export function createPanels(els) {
  const latest = new Map(); // series -> latest window message
  const countsByEnd = new Map(); // window end -> sum of counts over all series
  const alertKeys = new Set();
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
  const gauges = gaugeDefs.map(buildGauge);
  for (const g of gauges) els.gauges.append(g.wrap);

  function noteWindow(m) {
    if (latest.has(m.series) || latest.size < panelLimits.seriesMax) latest.set(m.series, m);
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

  function renderGauges() {
    for (const g of gauges) {
      let sum = 0;
      let n = 0;
      for (const m of latest.values()) {
        if (m.series.startsWith(`${g.def.name}{`) && typeof m.avg === "number") { sum += m.avg; n++; }
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
    renderGauges();
  }

  /** Adds an alert in time order (newest first), keeping at most alertsMax. */
  function addAlert(a) {
    if (!a || typeof a.series !== "string" || typeof a.ts !== "number") return;
    const id = `${a.kind}|${a.series}|${a.ts}|${a.state ?? ""}`;
    if (alertKeys.has(id)) return;
    alertKeys.add(id);
    alertsTotal++;
    const sev = typeof a.severity === "string" ? a.severity : "warning";
    const li = el("li", `alert sev-${sev.replace(/[^a-z]/g, "")}`);
    li.dataset.testid = "alert-item";
    li.dataset.series = a.series;
    li.dataset.ts = String(a.ts);
    const detail = a.kind === "rule" ? `rule ${a.state ?? ""}` : `value ${fmt(a.value)} · z ${fmt(a.z)}`;
    li.append(el("span", "alert-sev", sev), el("time", "alert-time", timeOf(a.ts)),
      el("span", "alert-series", a.series), el("span", "alert-detail", detail));
    li.title = a.series;
    li.dataset.key = id;
    const after = [...els.alerts.children].find((c) => Number(c.dataset.ts) < a.ts);
    els.alerts.insertBefore(li, after ?? null);
    while (els.alerts.children.length > panelLimits.alertsMax) {
      const last = els.alerts.lastElementChild;
      alertKeys.delete(last.dataset.key);
      last.remove();
    }
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

  return { noteWindow, render, addAlert, renderTop, latest };
}
