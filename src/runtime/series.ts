/**
 * Series keys and partition routing.
 *
 * A series is a name plus its tag set; its key is `name{k1="v1",k2="v2"}`
 * with tags sorted by key and values escaped as Prometheus does.
 *
 * @example
 *   seriesKey("cpu", { host: "a", dc: "x" }) // 'cpu{dc="x",host="a"}'
 *   partitionOf('cpu{dc="x",host="a"}', 2)   // 0 or 1, the same on every run
 */
export function seriesKey(name: string, tags: Record<string, string> | undefined): string {
  if (tags === undefined) return name;
  const keys = Object.keys(tags);
  if (keys.length === 0) return name;
  if (keys.length > 1) keys.sort();
  let out = name + "{";
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    if (i > 0) out += ",";
    out += k + '="' + escapeLabelValue(tags[k]) + '"';
  }
  return out + "}";
}

/**
 * The name and tags a series key was made of (seriesKey's inverse); null
 * when `key` is not one seriesKey could have written.
 * @example parseSeriesKey('cpu{dc="x",host="a"}') // { name: "cpu", tags: { dc: "x", host: "a" } }
 */
export function parseSeriesKey(key: string): { name: string; tags: Record<string, string> } | null {
  const open = key.indexOf("{");
  if (open < 0) return key.length > 0 ? { name: key, tags: {} } : null;
  if (!key.endsWith("}") || open === 0) return null;
  const tags: Record<string, string> = {};
  let i = open + 1;
  const end = key.length - 1;
  while (i < end) {
    const eq = key.indexOf('="', i);
    if (eq < 0) return null;
    const k = key.slice(i, eq);
    let v = "";
    let j = eq + 2;
    for (; j < end; j++) {
      const c = key[j];
      if (c === '"') break;
      if (c === "\\") {
        const n = key[++j];
        v += n === "n" ? "\n" : n;
      } else v += c;
    }
    if (key[j] !== '"') return null;
    tags[k] = v;
    i = j + 1;
    if (i < end) {
      if (key[i] !== ",") return null;
      i++;
    }
  }
  return { name: key.slice(0, open), tags };
}

const needsEscape = /[\\"\n]/;

export function escapeLabelValue(v: string): string {
  if (!needsEscape.test(v)) return v;
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/**
 * Stable partition of a series key: FNV-1a 32 over its UTF-16 code units.
 * Hand-written rather than Bun.hash so the routing cannot change with the
 * runtime version (checkpoints and the raw log depend on it).
 */
export function partitionOf(key: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

/**
 * Glob over series keys: `*` any run, `?` one character; everything else
 * literal. Compiled once per pattern.
 */
/**
 * Whether a series key matches a live topic's glob, as a subscription reads
 * it (fanout.ts): an exact key (no `*` or `?`), everything (`*` or empty),
 * or a glob.
 * @example seriesMatcher("cpu*")('cpu{host="a"}') // true
 */
export function seriesMatcher(glob: string): (key: string) => boolean {
  if (glob === "" || glob === "*") return () => true;
  if (!/[*?]/.test(glob)) return (key) => key === glob;
  const re = compileGlob(glob);
  return (key) => re.test(key);
}

/** A compiled glob: `test(s)` answers as a RegExp's would. */
export interface GlobMatcher { test(s: string): boolean }

/**
 * A glob (`*` any run of characters, `?` one, the rest literal) compiled to
 * a matcher that takes O(|glob| · |s|) whatever the glob. Not a RegExp: a
 * backtracking engine takes exponential time on `^.*a.*a.*a…b$` against a
 * long key, so one query string (`?match=*a*a*a*a*a*…`) could hold the
 * main thread for minutes (found by test/fuzz-input.test.ts).
 * @example compileGlob("cpu*")('cpu{host="a"}') // true
 */
export function compileGlob(glob: string): GlobMatcher {
  const p = glob.replace(/\*+/g, "*"); // consecutive stars match what one does
  return {
    test(s: string): boolean {
      let i = 0;
      let j = 0;
      let star = -1;
      let mark = 0;
      while (i < s.length) {
        const c = p.charCodeAt(j);
        if (j < p.length && (c === 63 /* ? */ || c === s.charCodeAt(i))) {
          i++;
          j++;
        } else if (j < p.length && c === 42 /* * */) {
          star = j++;
          mark = i;
        } else if (star >= 0) {
          j = star + 1; // the last star takes one more character; what follows it is tried again from there
          i = ++mark;
        } else {
          return false;
        }
      }
      while (j < p.length && p.charCodeAt(j) === 42) j++;
      return j === p.length;
    },
  };
}
