/**
 * The continuous views on the main thread (API.md "Views and reference
 * tables"): which views there are and where each came from. The views run
 * in the partition workers (views/view-set.ts) and the store merges their
 * parts (actors/store.ts); this book keeps their definitions.
 *
 * Sources, as for rules (rule-book.ts): the config file's `views:` first,
 * then the admin API's changes over them, kept in the store's `views` table
 * (a definition, or null for a deletion) so they survive restarts and win
 * over the file's view of the same name. Every definition is validated
 * before it is taken (parseView: a ViewError naming the part at fault), and
 * every change goes to each partition worker (`post`); a worker started
 * later reads defs(). A view changed in any way starts its open windows
 * afresh in the workers (what they gathered since their last checkpoint is
 * dropped; what is committed stays in its windows).
 *
 * @example
 *   const book = ViewBook.load({ cfg, db, log, writer, post });
 *   await book.put("rev", { from: "shop.purchase", window: "1m", aggregates: ["sum"] });
 */
import type { Database } from "bun:sqlite";
import { parseView, type View, ViewError } from "../actors/views/view.ts";
import type { Config } from "../config.ts";
import { limits } from "../runtime/limits.ts";
import type { Log } from "../runtime/log.ts";
import type { StoreWriter } from "../storage/store-writer.ts";

export interface ViewBookDeps {
  cfg: Config;
  db: Database;
  log: Log;
  writer: () => StoreWriter;
  /** Every view definition, to each partition worker. */
  post: (defs: unknown[]) => void;
}

export interface ViewEntry {
  name: string;
  source: "config" | "api";
  /** The definition as put or written in the config file. */
  view: unknown;
  /** The results' series name (view.<name>) and window label. */
  series: string;
  window: string;
}

interface Held { def: unknown; view: View; source: "config" | "api" }

export class ViewBook {
  private readonly views = new Map<string, Held>();

  private constructor(private readonly d: ViewBookDeps) {}

  /** The config file's views with the admin API's changes over them. */
  static load(d: ViewBookDeps): ViewBook {
    const book = new ViewBook(d);
    d.cfg.views.forEach((def, i) => book.take(def, "config", `views[${i}]`));
    const changes = d.db.query(`SELECT name, def FROM views ORDER BY updated_ms`).all() as Array<{ name: string; def: string | null }>;
    for (const c of changes) {
      if (c.def === null) {
        book.views.delete(c.name);
        continue;
      }
      try {
        book.take(JSON.parse(c.def), "api", "view");
      } catch (e) {
        d.log.warn("views: a view kept from the admin API no longer parses; left out", { view: c.name, error: (e as Error).message });
      }
    }
    return book;
  }

  /** The definitions as the partition workers take them, in order. */
  defs(): unknown[] {
    return [...this.views.values()].map((h) => h.def);
  }

  /** The views as compiled, in order. */
  parsed(): View[] {
    return [...this.views.values()].map((h) => h.view);
  }

  list(): ViewEntry[] {
    return [...this.views.entries()].map(([name, h]) => ({ name, source: h.source, view: h.def, series: h.view.seriesName, window: h.view.window.label }));
  }

  /** A view's `emit` (final or changes), or null for none of that name. */
  emitOf(name: string): "final" | "changes" | null {
    return this.views.get(name)?.view.emit ?? null;
  }

  get(name: string): ViewEntry | undefined {
    return this.list().find((v) => v.name === name);
  }

  /**
   * Adds or replaces a view (the admin API's PUT); throws a ViewError naming the part at fault. Kept in the store before it takes effect.
   * @example await book.put("rev", { from: "shop.purchase", window: "1m" }) // { created: true }
   */
  async put(name: string, def: unknown): Promise<{ created: boolean }> {
    if (typeof def === "object" && def !== null && !Array.isArray(def) && (def as { name?: unknown }).name === undefined) def = { ...def, name };
    const view = parseView(def, { path: "view" });
    if (view.name !== name) throw new ViewError(`view.name: "${view.name}" differs from the name in the path, "${name}"`);
    const old = this.views.get(name);
    if (old === undefined && this.views.size >= limits.viewsMax) throw new ViewError(`views: ${this.views.size} already, at most ${limits.viewsMax}`);
    await this.d.writer().writeDefinition("views", name, def);
    this.views.set(name, { def, view, source: "api" });
    this.d.post(this.defs());
    return { created: old === undefined };
  }

  /** Removes a view (also one of the config file, for good); its stored windows stay until retention. */
  async delete(name: string): Promise<boolean> {
    if (!this.views.has(name)) return false;
    await this.d.writer().writeDefinition("views", name, null);
    this.views.delete(name);
    this.d.post(this.defs());
    return true;
  }

  private take(def: unknown, source: "config" | "api", path: string): void {
    const view = parseView(def, { path });
    this.views.set(view.name, { def, view, source });
  }
}
