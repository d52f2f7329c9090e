/**
 * Every series weir knows: key → global id, with its partition and its
 * partition-local dense id (the window actor indexes arrays by it). Bounded
 * by WEIR_MAX_SERIES: past it, register() refuses and the event is rejected
 * with a clear reason. The latest value per series is kept in typed arrays
 * for GET /api/v1/series.
 *
 * @example
 *   const reg = new SeriesRegistry(2, 100_000);
 *   const g = reg.register('cpu{host="a"}', "cpu", { host: "a" }); // 0
 *   reg.keyOf(reg.partitionOf(g), reg.localOf(g));                  // 'cpu{host="a"}'
 */
import { partitionOf } from "../runtime/series.ts";

export interface SeriesInfo { key: string; name: string; tags: Record<string, string>; partition: number; local: number }

export class SeriesRegistry {
  private readonly ids = new Map<string, number>();
  private readonly infos: SeriesInfo[] = [];
  private readonly byPartition: string[][];
  private readonly idsByPartition: number[][];
  private partitionOfId = new Uint16Array(1024);
  private localOfId = new Uint32Array(1024);
  lastTs = new Float64Array(1024);
  lastValue = new Float64Array(1024);

  constructor(readonly partitions: number, readonly seriesMax: number, private readonly onNew?: (s: SeriesInfo) => void) {
    this.byPartition = Array.from({ length: partitions }, () => []);
    this.idsByPartition = Array.from({ length: partitions }, () => []);
  }

  get size(): number {
    return this.infos.length;
  }

  idOf(key: string): number | undefined {
    return this.ids.get(key);
  }

  /** The global id of a new series, or -1 when WEIR_MAX_SERIES is reached. */
  register(key: string, name: string, tags: Record<string, string> | undefined): number {
    if (this.infos.length >= this.seriesMax) return -1;
    const partition = partitionOf(key, this.partitions);
    return this.add({ key, name, tags: tags ? { ...tags } : {}, partition, local: this.byPartition[partition].length }, true);
  }

  /** Re-adds a series read back from the store at start-up, keeping its ids. */
  restore(s: SeriesInfo): void {
    if (this.byPartition[s.partition].length !== s.local) throw new Error(`series ${s.key}: local id ${s.local} out of order`);
    this.add(s, false);
  }

  /**
   * Cluster mode: a series read back from this process's store, whose local
   * id there is not trusted (the partition may have changed hands since):
   * it takes the next local id. adoptPartition renumbers when the partition
   * is taken over.
   */
  restoreUnordered(s: Omit<SeriesInfo, "local">): void {
    if (this.ids.has(s.key)) return;
    this.add({ ...s, local: this.byPartition[s.partition].length }, false);
  }

  /**
   * Cluster mode, taking a partition over: its local ids become exactly the
   * previous owner's (`series`, in local-id order: the ids its checkpoint's
   * state refers to); series this process knew there and the owner did not
   * follow them. Global ids never change (results and last values keep theirs).
   * Not bounded by WEIR_MAX_SERIES: the owner was.
   */
  adoptPartition(partition: number, series: ReadonlyArray<{ key: string; name: string; tags: Record<string, string> }>): void {
    const keys: string[] = [];
    const ids: number[] = [];
    const placed = new Set<number>();
    const place = (id: number) => {
      placed.add(id);
      this.localOfId[id] = keys.length;
      this.infos[id].local = keys.length;
      keys.push(this.infos[id].key);
      ids.push(id);
    };
    for (const s of series) {
      const known = this.ids.get(s.key);
      if (known !== undefined) {
        if (placed.has(known)) throw new Error(`series ${s.key} twice in partition ${partition}'s list`); // a damaged checkpoint
        place(known);
        continue;
      }
      const id = this.infos.length;
      if (id >= this.partitionOfId.length) this.grow();
      const info: SeriesInfo = { key: s.key, name: s.name, tags: { ...s.tags }, partition, local: -1 };
      this.ids.set(s.key, id);
      this.infos.push(info);
      this.partitionOfId[id] = partition;
      this.lastTs[id] = NaN;
      this.lastValue[id] = NaN;
      place(id);
      this.onNew?.(info);
    }
    for (const id of this.idsByPartition[partition]) if (!placed.has(id)) place(id);
    this.byPartition[partition] = keys;
    this.idsByPartition[partition] = ids;
  }

  /** A partition's series in local-id order (what a checkpoint of it refers to). */
  partitionSeries(partition: number): SeriesInfo[] {
    return this.idsByPartition[partition].map((id) => this.infos[id]);
  }

  /** Series in a partition so far: the next local id there. */
  localCount(partition: number): number {
    return this.byPartition[partition].length;
  }

  partitionOf(id: number): number {
    return this.partitionOfId[id];
  }
  localOf(id: number): number {
    return this.localOfId[id];
  }
  keyOf(partition: number, local: number): string {
    return this.byPartition[partition][local];
  }
  /** The global id of a partition-local id. */
  idAt(partition: number, local: number): number {
    return this.idsByPartition[partition][local];
  }
  info(id: number): SeriesInfo {
    return this.infos[id];
  }
  all(): readonly SeriesInfo[] {
    return this.infos;
  }

  private add(s: SeriesInfo, isNew: boolean): number {
    const id = this.infos.length;
    if (id >= this.partitionOfId.length) this.grow();
    this.ids.set(s.key, id);
    this.infos.push(s);
    this.byPartition[s.partition].push(s.key);
    this.idsByPartition[s.partition].push(id);
    this.partitionOfId[id] = s.partition;
    this.localOfId[id] = s.local;
    this.lastTs[id] = NaN;
    this.lastValue[id] = NaN;
    if (isNew) this.onNew?.(s);
    return id;
  }

  private grow(): void {
    const n = this.partitionOfId.length * 2;
    const p = new Uint16Array(n); p.set(this.partitionOfId); this.partitionOfId = p;
    const l = new Uint32Array(n); l.set(this.localOfId); this.localOfId = l;
    const t = new Float64Array(n); t.set(this.lastTs); this.lastTs = t;
    const v = new Float64Array(n); v.set(this.lastValue); this.lastValue = v;
  }
}
