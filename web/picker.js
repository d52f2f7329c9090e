// The series picker: a checkbox per series. With an empty filter it lists
// the series the page knows (from its live windows and the first page of
// GET /api/v1/series); with a filter it asks the server
// (`/api/v1/series?match=<glob>`), so one series among 100,000 is found
// whatever the page holds. The newest answer wins; an older one arriving
// late is dropped.
import { api, el } from "./dashboard.js";
import { filterGlob } from "./select.js";

export const pickerLimits = {
  rowsMax: 100, // rows listed; the server is asked for this many matches
  searchDelayMs: 150, // typing pauses this long before the server is asked
};

/**
 * @example
 *   const picker = createPicker({ list, count, filter }, { charts, chartsMax: 6, full: () => charts.size >= 6, onToggle, onFilter });
 *   picker.render(knownKeys); // after any change of the charts or the known series
 */
export function createPicker(els, { charts, chartsMax, full, onToggle, onFilter }) {
  let found = null; // the server's keys for the current filter; null while the filter is empty
  let asked = 0; // the newest search's number
  let timer = 0;
  let lastKnown = [];

  function row(key) {
    const label = el("label", "pick");
    const box = el("input");
    box.type = "checkbox";
    box.checked = charts.has(key);
    box.disabled = !box.checked && full();
    box.addEventListener("change", () => onToggle(key, box.checked));
    label.append(box, el("span", "", key));
    label.title = key;
    return label;
  }

  function render(known = lastKnown) {
    lastKnown = known;
    const keys = found ?? [...known].sort();
    const rows = keys.slice(0, pickerLimits.rowsMax).map(row);
    els.list.replaceChildren(...rows);
    const charted = `${charts.size}/${chartsMax} charted`;
    if (found === null) {
      const more = keys.length > rows.length ? `, first ${rows.length} listed` : "";
      els.count.textContent = `${keys.length} series${more} · ${charted}`;
    } else {
      const what = found.length >= pickerLimits.rowsMax ? `first ${found.length} matching` : `${found.length} matching`;
      els.count.textContent = `${what} ${filterGlob(els.filter.value)} · ${charted}`;
    }
    els.list.dataset.state = found === null ? "known" : "found";
  }

  async function search(text) {
    const n = ++asked;
    const glob = filterGlob(text);
    if (glob === "") {
      found = null;
      render();
      return;
    }
    const body = await api(`/api/v1/series?match=${encodeURIComponent(glob)}&limit=${pickerLimits.rowsMax}`);
    if (n !== asked) return; // a newer search was started meanwhile
    found = (body?.series ?? []).filter((s) => s && typeof s.key === "string").map((s) => s.key).sort();
    render();
  }

  function setFilter(text, now = false) {
    if (els.filter.value !== text) els.filter.value = text;
    clearTimeout(timer);
    if (now) search(text);
    else timer = setTimeout(() => search(text), pickerLimits.searchDelayMs);
    onFilter(text);
  }

  els.filter.addEventListener("input", () => setFilter(els.filter.value));
  return { render, setFilter };
}
