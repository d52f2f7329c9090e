// Series selectors for the page: the config's `dashboard:` selectors and
// the picker's filter. Kept apart from the panels so both read one rule.

/** A glob (`*` any run, `?` one character) as an anchored RegExp over the whole text. */
export function globRegExp(glob, flags = "s") {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`, flags);
}

/** The name part of a series key: `shop.orders{region="eu"}` → `shop.orders`. */
export const nameOf = (key) => (key.includes("{") ? key.slice(0, key.indexOf("{")) : key);

/**
 * A dashboard selector as a test of series keys: a glob over the key, and
 * one without `{` over the name too, so `sensor.temperature` picks every
 * device's temperature (src/http/dashboard-def.ts says the same).
 * @example compileSelector("app.*")('app.latency{host="a"}') // true
 */
export function compileSelector(selector) {
  const re = globRegExp(selector);
  if (selector.includes("{")) return (key) => re.test(key);
  return (key) => re.test(key) || re.test(nameOf(key));
}

/**
 * What the picker's filter asks the server for: a glob as typed when it
 * has `*` or `?`, else the text anywhere in the key.
 * @example filterGlob("north") // "*north*"
 */
export function filterGlob(text) {
  const q = text.trim();
  if (q === "") return "";
  return /[*?]/.test(q) ? q : `*${q}*`;
}
