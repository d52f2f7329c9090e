/**
 * Window specs and durations as users write them (WEIR_WINDOWS,
 * WEIR_LATENESS): "10s" is a tumbling 10-second window, "60s/10s" a
 * 60-second window sliding every 10 s. A bad spec throws a plain Error whose
 * message names the bad part; config wraps it in a ConfigError.
 *
 * @example
 *   parseWindowSpecs("10s,60s/10s");
 *   // [{ label: "10s", sizeMs: 10000, slideMs: 10000 }, { label: "60s/10s", sizeMs: 60000, slideMs: 10000 }]
 *   parseDurationMs("2s"); // 2000
 */
import { limits } from "../runtime/limits.ts";

export interface WindowSpec {
  /** The spec as written (trimmed), used as the window's name in results and topics. */
  label: string;
  sizeMs: number;
  slideMs: number;
}

const durationUnitsMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const windowUnits = ["ms", "s", "m", "h"];
const amountRe = /^(\d+)([a-z]*)$/i;

/**
 * Milliseconds from "250ms", "2s", "5m", "1h", "1d" or a plain integer (ms).
 * @example parseDurationMs("1500") // 1500
 */
export function parseDurationMs(text: string): number {
  const t = text.trim();
  const m = amountRe.exec(t);
  if (!m) throw new Error(`duration "${text}": expected a whole number with an optional unit (ms, s, m, h or d)`);
  const unit = m[2].toLowerCase();
  const mult = unit === "" ? 1 : durationUnitsMs[unit];
  if (mult === undefined) throw new Error(`duration "${text}": unknown unit "${m[2]}" (expected ms, s, m, h or d)`);
  const ms = Number(m[1]) * mult;
  if (!Number.isSafeInteger(ms)) throw new Error(`duration "${text}": too large`);
  return ms;
}

/**
 * Parses a comma-separated list of window specs. Each is `<size>` (tumbling)
 * or `<size>/<slide>`, with units ms, s, m or h; the size must be a multiple
 * of the slide and at most limits.windowSizeMsMax; at most
 * limits.windowSpecsMax distinct specs; and no window may span more than
 * limits.panesPerWindowMax panes (pane = gcd of every size and slide).
 * @example parseWindowSpecs("1m/15s") // [{ label: "1m/15s", sizeMs: 60000, slideMs: 15000 }]
 */
export function parseWindowSpecs(text: string): WindowSpec[] {
  const parts = text.split(",").map((p) => p.trim());
  if (parts.length === 1 && parts[0] === "") throw new Error("window specs: none given (e.g. \"10s,60s/10s\")");
  if (parts.length > limits.windowSpecsMax) {
    throw new Error(`window specs "${text}": ${parts.length} specs, at most ${limits.windowSpecsMax}`);
  }
  const specs = parts.map(parseOne);
  for (let i = 0; i < specs.length; i++) {
    for (let j = 0; j < i; j++) {
      if (specs[i].sizeMs === specs[j].sizeMs && specs[i].slideMs === specs[j].slideMs) {
        throw new Error(`window spec "${specs[i].label}": same window as "${specs[j].label}"`);
      }
    }
  }
  const pane = paneMsOf(specs);
  for (const s of specs) {
    const panes = s.sizeMs / pane;
    if (panes > limits.panesPerWindowMax) {
      throw new Error(
        `window spec "${s.label}": spans ${panes} panes of ${pane} ms (the gcd of all sizes and slides), at most ${limits.panesPerWindowMax}`,
      );
    }
  }
  return specs;
}

/**
 * The pane every spec is built from: the gcd of all sizes and slides.
 * @example paneMsOf(parseWindowSpecs("10s,60s/10s")) // 10000
 */
export function paneMsOf(specs: readonly WindowSpec[]): number {
  let g = 0;
  for (const s of specs) g = gcd(gcd(g, s.sizeMs), s.slideMs);
  return g;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

function parseOne(label: string): WindowSpec {
  if (label === "") throw new Error("window specs: empty spec between commas");
  const halves = label.split("/");
  if (halves.length > 2) throw new Error(`window spec "${label}": expected <size> or <size>/<slide>`);
  const sizeMs = windowAmountMs(label, halves[0], "size");
  const slideMs = halves.length === 2 ? windowAmountMs(label, halves[1], "slide") : sizeMs;
  if (sizeMs > limits.windowSizeMsMax) {
    throw new Error(`window spec "${label}": size ${sizeMs} ms is over the maximum of ${limits.windowSizeMsMax} ms`);
  }
  if (sizeMs % slideMs !== 0) throw new Error(`window spec "${label}": size must be a multiple of the slide`);
  return { label, sizeMs, slideMs };
}

function windowAmountMs(label: string, part: string, what: string): number {
  const m = amountRe.exec(part.trim());
  if (!m) throw new Error(`window spec "${label}": ${what} "${part}" is not a whole number with a unit (ms, s, m or h)`);
  const unit = m[2].toLowerCase();
  if (unit === "") throw new Error(`window spec "${label}": ${what} "${part}" needs a unit (ms, s, m or h)`);
  if (!windowUnits.includes(unit)) throw new Error(`window spec "${label}": unknown unit "${m[2]}" (expected ms, s, m or h)`);
  const ms = Number(m[1]) * durationUnitsMs[unit];
  if (ms === 0) throw new Error(`window spec "${label}": ${what} must be positive`);
  if (!Number.isSafeInteger(ms)) throw new Error(`window spec "${label}": ${what} too large`);
  return ms;
}
