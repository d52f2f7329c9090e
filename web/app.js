// weir live page: a table of the latest closed window per series, fed by
// /ws/live. Messages only record the latest value per series; the DOM is
// touched once per animation frame, and only the cells that changed.
// Every piece of server data goes into the DOM through textContent or
// dataset, never as HTML.

const ui = {
  rowsMax: 5000, // beyond this, new series are counted, not shown
  backoffBaseMs: 500,
  backoffMaxMs: 30_000,
  prefillLimit: 1000,
  defaultSpec: "10s",
};

const cols = ["key", "name", "end", "count", "avg", "min", "max", "p99", "last"];
const numCols = new Set(["count", "avg", "min", "max", "p99", "last"]);

const $ = (id) => document.getElementById(id);
const els = {
  badge: $("state"), filter: $("filter"), count: $("count"), tbody: $("rows"),
  spec: $("window"), empty: $("empty"), note: $("note"), rate: $("rate"),
};

const token = new URLSearchParams(location.search).get("token");
// Two decimals read well for sensor values and amounts; small values keep
// three significant digits instead of rounding to 0.
const wideFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const smallFormat = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 3 });

/** key -> { tr, cells: {col: td}, shown: {col: string} } */
const rows = new Map();
const sortedKeys = []; // keys in DOM order, so a new row is inserted, not re-sorted
/** key -> latest message not yet drawn (conflated: at most one per series) */
const pending = new Map();
let frameRequested = false;
let matches = () => true;
let spec = null;
let dropped = 0;
let received = 0;

// ---- table -------------------------------------------------------------

function seriesName(key) {
  const i = key.indexOf("{");
  return i < 0 ? key : key.slice(0, i);
}

function format(col, v) {
  if (col === "end") return typeof v === "number" ? new Date(v).toLocaleTimeString([], { hour12: false }) : "–";
  if (numCols.has(col)) {
    if (typeof v !== "number" || !Number.isFinite(v)) return "–";
    return (Math.abs(v) >= 1 || v === 0 ? wideFormat : smallFormat).format(v);
  }
  return typeof v === "string" ? v : "–";
}

function insertionIndex(key) {
  let lo = 0;
  let hi = sortedKeys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sortedKeys[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function createRow(key) {
  const tr = document.createElement("tr");
  tr.dataset.testid = "live-row";
  tr.dataset.key = key;
  const cells = {};
  for (const col of cols) {
    const td = document.createElement("td");
    td.dataset.col = col;
    if (numCols.has(col)) td.className = "num";
    tr.append(td);
    cells[col] = td;
  }
  cells.key.title = key; // the full key when the cell is cut short
  const row = { tr, cells, shown: {} };
  const at = insertionIndex(key);
  els.tbody.insertBefore(tr, at < sortedKeys.length ? rows.get(sortedKeys[at]).tr : null);
  sortedKeys.splice(at, 0, key);
  rows.set(key, row);
  tr.hidden = !matches(key);
  return row;
}

function updateRow(row, key, msg) {
  const values = { ...msg, key, name: seriesName(key) };
  for (const col of cols) {
    const text = format(col, values[col]);
    // Writing identical text still costs a layout; skip it.
    if (row.shown[col] !== text) {
      row.cells[col].textContent = text;
      row.shown[col] = text;
    }
  }
  if (typeof msg.end === "number") row.cells.end.title = new Date(msg.end).toISOString();
}

function flush() {
  frameRequested = false;
  for (const [key, msg] of pending) updateRow(rows.get(key) ?? createRow(key), key, msg);
  pending.clear();
  updateCount();
}

function schedule() {
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(flush);
}

function updateCount() {
  let shown = 0;
  for (const row of rows.values()) if (!row.tr.hidden) shown++;
  els.count.textContent = shown === rows.size ? `${rows.size} series` : `${shown} of ${rows.size} series`;
  els.empty.hidden = rows.size > 0;
  if (dropped > 0) els.note.textContent = `${dropped} updates of series beyond the first ${ui.rowsMax} not shown`;
}

function accept(key, msg) {
  if (!rows.has(key) && !pending.has(key) && rows.size + pending.size >= ui.rowsMax) {
    dropped++;
    return;
  }
  pending.set(key, msg);
  schedule();
}

// ---- filter: a glob when it has * or ?, else a case-insensitive substring

function compileFilter(text) {
  const q = text.trim();
  if (q === "") return () => true;
  if (/[*?]/.test(q)) {
    const body = q.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
    const re = new RegExp(`^${body}$`, "is");
    return (key) => re.test(key);
  }
  const needle = q.toLowerCase();
  return (key) => key.toLowerCase().includes(needle);
}

els.filter.addEventListener("input", () => {
  matches = compileFilter(els.filter.value);
  for (const [key, row] of rows) row.tr.hidden = !matches(key);
  updateCount();
});

// ---- connection --------------------------------------------------------

let attempt = 0;
let countdown = 0;

function setState(state, text = state) {
  els.badge.dataset.state = state;
  els.badge.textContent = text;
}

function liveUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = token ? `?token=${encodeURIComponent(token)}` : "";
  return `${scheme}://${location.host}/ws/live${query}`;
}

function connect() {
  clearInterval(countdown);
  setState("connecting");
  let sock;
  try {
    sock = new WebSocket(liveUrl());
  } catch {
    reconnectLater();
    return;
  }
  sock.onmessage = (ev) => onMessage(sock, ev.data);
  sock.onclose = () => reconnectLater(); // also follows every error
}

function onMessage(sock, data) {
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    return; // not ours to understand; the next message may be fine
  }
  for (const m of Array.isArray(msg) ? msg : [msg]) handle(sock, m);
}

function handle(sock, m) {
  if (m === null || typeof m !== "object") return;
  if (m.type === "window") {
    if (typeof m.series !== "string" || (spec !== null && m.window !== spec)) return;
    received++;
    accept(m.series, m);
  } else if (m.type === "hello") {
    // Back-off resets on a hello, not on open: a server that accepts and
    // closes at once must still be retried slowly.
    attempt = 0;
    spec = Array.isArray(m.windows) && typeof m.windows[0] === "string" ? m.windows[0] : ui.defaultSpec;
    els.spec.textContent = spec;
    sock.send(JSON.stringify({ op: "subscribe", topics: [`windows:${spec}:*`] }));
    setState("live");
  } else if (m.type === "error") {
    els.note.textContent = `server: ${typeof m.error === "string" ? m.error : "error"}`;
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

// ---- start -------------------------------------------------------------

async function prefill() {
  // The list route is optional for this page: without it rows appear as windows close.
  try {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const res = await fetch(`/api/v1/series?limit=${ui.prefillLimit}`, { headers });
    if (!res.ok) return;
    const body = await res.json();
    if (!body || !Array.isArray(body.series)) return;
    for (const s of body.series) {
      if (!s || typeof s.key !== "string" || rows.has(s.key) || pending.has(s.key)) continue;
      accept(s.key, { last: s.last && typeof s.last.value === "number" ? s.last.value : undefined });
    }
  } catch {
    // Network or JSON failure: the live feed alone is enough.
  }
}

setInterval(() => {
  els.rate.textContent = `${received} windows/s`;
  received = 0;
}, 1000);

updateCount();
prefill();
connect();
