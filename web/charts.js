// weir dashboard charts: one uPlot line chart per chosen series, back-filled
// from /api/v1/windows?format=columns and extended by live window messages.
// Points live in fixed Float64Array columns allocated once per chart; every
// drawing waits for the next animation frame, so a burst of messages costs
// one setData per chart per frame. Anomaly markers and the thresholds of the
// alert rules watching the series are drawn over the plot in its draw hook.
import uPlot from "/vendor/uPlot.esm.js";
import { api, el, fmt } from "./dashboard.js";

export const chartLimits = {
  pointsMax: 360, // ~1 h of 10 s windows
  anomaliesMax: 50, // markers kept per chart
  heightPx: 190,
  heightPhonePx: 150,
};

// ---- one render per frame ------------------------------------------------

const pendingRenders = new Set();
let frameRequested = false;

/** Run `fn` once in the next animation frame, however often it is requested. */
export function requestRender(fn) {
  pendingRenders.add(fn);
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(() => {
    frameRequested = false;
    const fns = [...pendingRenders];
    pendingRenders.clear();
    for (const f of fns) f();
  });
}

// ---- chart ---------------------------------------------------------------

const columns = ["x", "avg", "max", "min", "p99"];
const trendArrows = { rising: "↑", falling: "↓", stable: "→" };
const severityColours = { critical: "#f85149", warning: "#d29922", info: "#5fb3f9" };
const axis = { stroke: "#8b96a3", grid: { stroke: "#222932", width: 1 }, ticks: { stroke: "#262d36", width: 1 } };

function seriesParts(key) {
  const i = key.indexOf("{");
  return i < 0 ? [key, ""] : [key.slice(0, i), key.slice(i)];
}

function plotHeight() {
  return matchMedia("(max-width: 640px)").matches ? chartLimits.heightPhonePx : chartLimits.heightPx;
}

// Anomalies are drawn straight onto the canvas after uPlot's own drawing:
// a dashed vertical line at the anomaly's time and a dot at its value.
function drawAnomalies(u, anomalies) {
  const { ctx, bbox } = u;
  const [yMin, yMax] = [u.scales.y.min, u.scales.y.max];
  ctx.save();
  for (const a of anomalies) {
    const x = u.valToPos(a.ts / 1000, "x", true);
    if (!(x >= bbox.left && x <= bbox.left + bbox.width)) continue;
    const colour = severityColours[a.severity] ?? severityColours.warning;
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    ctx.setLineDash([4, 4]);
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(x, bbox.top);
    ctx.lineTo(x, bbox.top + bbox.height);
    ctx.stroke();
    const y = u.valToPos(Math.min(yMax, Math.max(yMin, a.value)), "y", true);
    ctx.setLineDash([]);
    ctx.beginPath();
    ctx.arc(x, y, 4 * devicePixelRatio, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.restore();
}

// A rule's threshold is drawn on the charts of the series it watches only when
// the chart shows the aggregate the rule compares (one of these): a count,
// sum, rate, p50 or p95 threshold is in another unit and would only squash the
// plot, so those rules are named in the card's rule badge instead. The rule's
// window (`over`) may be longer than the chart's; its line is still in the
// unit of the points.
const chartedAggs = new Set(["avg", "max", "min", "p99"]);
const thresholdColours = { firing: "#f85149", pending: "#d29922", other: "#e6edf3" };
const labelBackdrop = "rgba(22, 27, 34, 0.85)"; // the card's background

const thresholdLabel = (t) => `${t.rule} · ${t.agg}${t.over ? ` over ${t.over}` : ""} ${t.op} ${fmt(t.threshold)}`;

// Thresholds are drawn like anomalies, after uPlot's own drawing: a dashed
// horizontal line across the plot, labelled with the rule. `plot.dataset.thresholds`
// names the rules whose line this drawing placed, for tests and for the curious.
function drawThresholds(u, thresholds, plot) {
  const { ctx, bbox } = u;
  const px = devicePixelRatio;
  const right = bbox.left + bbox.width - 4 * px;
  const drawn = [];
  ctx.save();
  ctx.font = `${11 * px}px system-ui, sans-serif`;
  ctx.textAlign = "right";
  ctx.textBaseline = "top";
  for (const t of thresholds) {
    const y = u.valToPos(t.threshold, "y", true);
    if (!(y >= bbox.top && y <= bbox.top + bbox.height)) continue;
    const colour = thresholdColours[t.state] ?? thresholdColours.other;
    ctx.strokeStyle = colour;
    ctx.setLineDash([6 * px, 4 * px]);
    ctx.lineWidth = px;
    ctx.beginPath();
    ctx.moveTo(bbox.left, y);
    ctx.lineTo(bbox.left + bbox.width, y);
    ctx.stroke();
    // Above the line (below it near the top), on a backdrop so a line of points crossing it leaves it legible.
    const label = thresholdLabel(t);
    const top = y - 15 * px < bbox.top ? y + 2 * px : y - 15 * px;
    const w = ctx.measureText(label).width;
    ctx.fillStyle = labelBackdrop;
    ctx.fillRect(right - w - 3 * px, top, w + 6 * px, 13 * px);
    ctx.fillStyle = colour;
    ctx.fillText(label, right, top + px);
    drawn.push(t.rule);
  }
  ctx.restore();
  const names = drawn.join(" ");
  if (plot.dataset.thresholds !== names) plot.dataset.thresholds = names;
}

/** The y range uPlot picks by default (its snapNumY), widened to hold every threshold line. */
function yRange(thresholds) {
  return (u, min, max) => {
    if (min == null || max == null) return [null, null]; // no points yet: nothing to draw either
    for (const t of thresholds) {
      min = Math.min(min, t.threshold);
      max = Math.max(max, t.threshold);
    }
    return uPlot.rangeNum(min, max, 0.1, true);
  };
}

function plotOptions(width, anomalies, thresholds, plot) {
  return {
    width, height: plotHeight(),
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: yRange(thresholds) } },
    series: [
      {},
      { label: "avg", stroke: "#5fb3f9", width: 2 },
      { label: "max", stroke: "rgba(95,179,249,0.3)", width: 1, points: { show: false } },
      { label: "min", stroke: "rgba(95,179,249,0.3)", width: 1, points: { show: false } },
      { label: "p99", stroke: "#c39bff", width: 1, dash: [5, 4], points: { show: false } },
    ],
    bands: [{ series: [2, 3], fill: "rgba(95,179,249,0.12)" }],
    axes: [{ ...axis }, { ...axis, size: 66 }],
    hooks: { draw: [(u) => drawAnomalies(u, anomalies), (u) => drawThresholds(u, thresholds, plot)] },
  };
}

/**
 * A chart card for series `key`, appended to `parent`.
 * @example
 *   const c = createChart(document.body, 'sensor.temperature{device="dev-01"}', { onRemove });
 *   await c.backfill("10s"); c.push(windowMessage);
 */
export function createChart(parent, key, { onRemove, onFocus }) {
  const [name, tags] = seriesParts(key);
  const card = el("article", "chart-card");
  card.title = key;
  const head = el("header", "chart-head");
  const title = el("div", "chart-title");
  title.append(el("span", "chart-name", name), el("span", "chart-tags", tags));
  const trend = el("span", "trend", "·");
  trend.title = "trend: unknown";
  const latest = el("span", "chart-latest", "–");
  const ruleBadge = el("span", "chart-rules");
  ruleBadge.hidden = true;
  const close = el("button", "chart-close", "×");
  close.type = "button";
  close.setAttribute("aria-label", `remove chart of ${key}`);
  close.addEventListener("click", (ev) => { ev.stopPropagation(); onRemove(key); });
  head.append(title, ruleBadge, latest, trend, close);
  const plot = el("div", "plot");
  plot.dataset.testid = "chart";
  plot.dataset.series = key;
  plot.dataset.points = "0";
  card.append(head, plot);
  card.addEventListener("click", () => onFocus(key));
  parent.append(card);

  const cols = columns.map(() => new Float64Array(chartLimits.pointsMax));
  let n = 0;
  const anomalies = [];
  const thresholds = []; // {rule, agg, over, op, threshold, state} of the rules drawn here
  let rulesSeen = "";
  const u = new uPlot(plotOptions(Math.max(200, plot.clientWidth), anomalies, thresholds, plot), columns.map(() => []), plot);
  const resize = new ResizeObserver(() => u.setSize({ width: Math.max(200, plot.clientWidth), height: plotHeight() }));
  resize.observe(plot);

  function render() {
    // subarray views allocate a little per frame, not per message.
    u.setData(cols.map((c) => c.subarray(0, n)));
    plot.dataset.points = String(n);
    plot.dataset.anomalies = String(anomalies.length);
  }

  /** Appends one window (newer than the newest held; a repeat replaces it). */
  function append(w) {
    const x = w.end / 1000;
    if (!Number.isFinite(x) || typeof w.avg !== "number") return;
    if (n > 0 && x < cols[0][n - 1]) return;
    if (n > 0 && x === cols[0][n - 1]) n--;
    if (n === chartLimits.pointsMax) {
      for (const c of cols) c.copyWithin(0, 1);
      n--;
    }
    cols[0][n] = x;
    cols[1][n] = w.avg;
    cols[2][n] = w.max;
    cols[3][n] = w.min;
    cols[4][n] = w.p99;
    n++;
  }

  function addAnomaly(a) {
    if (typeof a.ts !== "number" || typeof a.value !== "number") return;
    if (anomalies.some((b) => b.ts === a.ts)) return;
    anomalies.push({ ts: a.ts, value: a.value, severity: a.severity });
    anomalies.sort((p, q) => p.ts - q.ts);
    if (anomalies.length > chartLimits.anomaliesMax) anomalies.shift();
    requestRender(render);
  }

  /** The rules watching this series (see app.js rulesOf); a change redraws, with the y range rescaled. */
  function setRules(rules) {
    const text = JSON.stringify(rules);
    if (text === rulesSeen) return;
    rulesSeen = text;
    const lines = rules.filter((r) => chartedAggs.has(r.agg) && Number.isFinite(r.threshold));
    thresholds.splice(0, thresholds.length, ...lines);
    const worst = ["firing", "pending"].find((s) => rules.some((r) => r.state === s)) ?? "quiet";
    ruleBadge.hidden = rules.length === 0;
    ruleBadge.textContent = `⚑ ${rules.length}`;
    ruleBadge.dataset.state = worst;
    ruleBadge.title = rules.map((r) => `${thresholdLabel(r)} (${r.state}${chartedAggs.has(r.agg) ? "" : "; not charted"})`).join("\n");
    card.dataset.ruleState = worst;
    requestRender(render);
  }

  return {
    key, card,
    setRules,
    push(w) {
      append(w);
      latest.textContent = fmt(w.last);
      requestRender(render);
    },
    setTrend(cls) {
      trend.textContent = trendArrows[cls] ?? "·";
      trend.dataset.trend = cls ?? "unknown";
      trend.title = `trend: ${cls ?? "unknown"}`;
    },
    addAnomaly,
    setFocused(on) { card.classList.toggle("focused", on); },
    /** History is authoritative; live points newer than it are kept. */
    async backfill(spec) {
      const q = `series=${encodeURIComponent(key)}&window=${encodeURIComponent(spec)}&limit=${chartLimits.pointsMax}`;
      const [h, an] = await Promise.all([
        api(`/api/v1/windows?${q}&format=columns`),
        api(`/api/v1/anomalies?series=${encodeURIComponent(key)}&limit=${chartLimits.anomaliesMax}`),
      ]);
      if (h && Array.isArray(h.end)) {
        const live = cols.map((c) => Array.from(c.subarray(0, n)));
        n = 0;
        for (let i = 0; i < h.end.length; i++) {
          append({ end: h.end[i], avg: h.avg[i], max: h.max[i], min: h.min[i], p99: h.p99[i] });
        }
        for (let i = 0; i < live[0].length; i++) {
          append({ end: live[0][i] * 1000, avg: live[1][i], max: live[2][i], min: live[3][i], p99: live[4][i] });
        }
        if (h.last?.length > 0 && latest.textContent === "–") latest.textContent = fmt(h.last[h.last.length - 1]);
      }
      for (const a of an?.anomalies ?? []) addAnomaly(a);
      requestRender(render);
    },
    destroy() {
      resize.disconnect();
      u.destroy();
      card.remove();
    },
  };
}
