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
export function globToRegExp(glob: string): RegExp {
  let re = "^";
  for (const ch of glob) {
    if (ch === "*") re += ".*";
    else if (ch === "?") re += ".";
    else re += ch.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(re + "$", "s");
}
