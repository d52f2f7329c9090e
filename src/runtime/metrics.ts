/**
 * Counters, gauges and histograms rendered in the Prometheus text format.
 * Label sets are bounded by the callers (reasons, partitions, actors are
 * small fixed sets), so a series map here cannot grow without bound.
 *
 * @example
 *   const m = new Metrics();
 *   const ingested = m.counter("weir_events_ingested_total", "Events accepted");
 *   ingested.inc(1000);
 *   m.render(); // "# HELP weir_events_ingested_total ...\n..."
 */
import { escapeLabelValue } from "./series.ts";

type Labels = Record<string, string>;

export class Counter {
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  inc(by = 1, labels?: Labels): void {
    const k = labelText(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels?: Labels): number {
    return this.values.get(labelText(labels)) ?? 0;
  }
  /** The sum over every label set. */
  total(): number {
    let n = 0;
    for (const v of this.values.values()) n += v;
    return n;
  }
  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    if (this.values.size === 0) out += `${this.name} 0\n`;
    for (const [k, v] of this.values) out += `${this.name}${k} ${v}\n`;
    return out;
  }
}

/** A value read when rendered: a gauge, or (type "counter") a total kept elsewhere. */
export class Gauge {
  constructor(
    readonly name: string, readonly help: string, private readonly read: () => number | Array<[Labels, number]>,
    private readonly type: "gauge" | "counter" = "gauge",
  ) {}
  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} ${this.type}\n`;
    const v = this.read();
    if (typeof v === "number") return out + `${this.name} ${v}\n`;
    for (const [labels, n] of v) out += `${this.name}${labelText(labels)} ${n}\n`;
    return out;
  }
}

export class Histogram {
  /** Observations per bucket, each in the first bucket that holds it (cumulated when read): observe stops there. */
  private readonly counts: Float64Array;
  private sum = 0;
  private total = 0;
  constructor(readonly name: string, readonly help: string, private readonly bounds: number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    for (let i = 0; i < this.bounds.length; i++) {
      if (v <= this.bounds[i]) {
        this.counts[i]++;
        break;
      }
    }
    this.sum += v;
    this.total++;
  }
  /** Nearest-rank quantile from the buckets' upper bounds (coarse; for stats pushes). */
  quantileUpperBound(q: number): number {
    const rank = Math.ceil(q * this.total);
    let below = 0;
    for (let i = 0; i < this.bounds.length; i++) if ((below += this.counts[i]) >= rank) return this.bounds[i];
    return Infinity;
  }
  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`;
    let below = 0;
    for (let i = 0; i < this.bounds.length; i++) out += `${this.name}_bucket{le="${this.bounds[i]}"} ${(below += this.counts[i])}\n`;
    out += `${this.name}_bucket{le="+Inf"} ${this.total}\n${this.name}_sum ${this.sum}\n${this.name}_count ${this.total}\n`;
    return out;
  }
}

export class Metrics {
  private readonly all: Array<Counter | Gauge | Histogram> = [];
  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help));
  }
  gauge(name: string, help: string, read: () => number | Array<[Labels, number]>, type: "gauge" | "counter" = "gauge"): Gauge {
    return this.add(new Gauge(name, help, read, type));
  }
  histogram(name: string, help: string, bounds: number[]): Histogram {
    return this.add(new Histogram(name, help, bounds));
  }
  render(): string {
    return this.all.map((m) => m.render()).join("");
  }
  private add<T extends Counter | Gauge | Histogram>(m: T): T {
    this.all.push(m);
    return m;
  }
}

function labelText(labels?: Labels): string {
  if (!labels) return "";
  const keys = Object.keys(labels);
  if (keys.length === 0) return "";
  return "{" + keys.map((k) => `${k}="${escapeLabelValue(labels[k])}"`).join(",") + "}";
}
