/**
 * The demo's continuous views and reference table (issue 16's scenario),
 * what `WEIR_DEMO` adds when the config file has no `views:` or `tables:`
 * of its own (config.ts), as if the file held them:
 *
 * - table `users` (user_id → segment, country): the simulators' user pool
 *   (shop-users.ts) written as CSV and read like a table file;
 * - view events_per_minute_by_segment: shop.* joined with users on `user`,
 *   counted per minute by the table's segment and the event's name;
 * - view revenue_per_minute: shop.purchase joined, per minute by segment,
 *   sum, count and avg, `emit: changes` so the running minute moves live;
 * - view high_activity_users: shop.* per user over 5 minutes, a hit (an
 *   alert of kind view) for each user with more than 100 events.
 *
 * While the demo runs, the table changes through the table book as the
 * admin API's PATCH would (segmentMoves): every moveIntervalMs one user
 * moves to another segment and the user moved before goes back, so the
 * join visibly follows the table while at most one row differs from the
 * pool. Only the table moves: the events' own `segment` tag stays the
 * pool's, so the views (by the table) and /api/v1/top by segment (by the
 * tag) may differ by that one user's events.
 *
 * @example
 *   const views = demoViews();          // three definitions, as a config file writes them
 *   const users = demoUsersTable();     // { name: "users", file: "(demo)", rows: 500 users }
 *   const next = segmentMoves(createUserPool(), 7);
 *   next(); // [{ user_id: "u312", segment: "vip", country: "FR" }]
 */
import type { ConfigTable } from "../config.ts";
import { parseTable, type Row } from "../actors/views/table.ts";
import { createPrng } from "./prng.ts";
import { activitySegments, createUserPool, type ShopUser, type UserPool, usersCsv } from "./shop-users.ts";

export const demoScenario = {
  usersTable: "users",
  /** The `file` a config table made by the demo names (there is no file: the CSV is made in memory). */
  usersFile: "(demo)",
  moveIntervalMs: 20_000,
  moveSeed: 7,
} as const;

/** The three views, as a config file writes them (fresh objects on every call). */
export function demoViews(): object[] {
  const join = { table: demoScenario.usersTable, on: "user" };
  return [
    { name: "events_per_minute_by_segment", from: "shop.*", join, group_by: ["users.segment", "name"], window: "1m", aggregates: ["count"] },
    {
      name: "revenue_per_minute", from: "shop.purchase", join, group_by: ["users.segment"], window: "1m",
      aggregates: ["sum", "count", "avg"], emit: "changes",
    },
    { name: "high_activity_users", from: "shop.*", group_by: ["user"], window: "5m", aggregates: ["count"], having: "count > 100" },
  ];
}

/** The `users` table: the pool as CSV, read by the table reader a config file's CSV goes through. */
export function demoUsersTable(pool: UserPool = createUserPool()): ConfigTable {
  const rows = parseTable(usersCsv(pool), "csv", "user_id", "demo users.csv");
  return { name: demoScenario.usersTable, file: demoScenario.usersFile, rows };
}

/** Whether the config's tables are the demo's (then the demo moves its users). */
export function usesDemoUsers(tables: readonly ConfigTable[]): boolean {
  return tables.some((t) => t.name === demoScenario.usersTable && t.file === demoScenario.usersFile);
}

/**
 * The rows of each move, in order: the user moved last back to its pool
 * segment, and a user drawn from the pool to one of the other segments
 * (one row when the same user is drawn again: a key once per body).
 */
export function segmentMoves(pool: UserPool, seed: number): () => Row[] {
  const rng = createPrng(seed);
  let moved: ShopUser | null = null;
  const rowOf = (u: ShopUser, segment: string): Row => ({ user_id: u.id, segment, country: u.country });
  return () => {
    const u = pool.users[rng.int(pool.users.length)];
    const others = activitySegments.filter((s) => s !== u.segment);
    const rows = moved !== null && moved !== u ? [rowOf(moved, moved.segment)] : [];
    rows.push(rowOf(u, others[rng.int(others.length)]));
    moved = u;
    return rows;
  };
}

export interface DemoMovesOptions {
  /** Upserts rows into the users table (the table book's patch). */
  patch: (rows: Row[]) => Promise<unknown>;
  onError: (e: Error) => void;
  intervalMs?: number;
}

/**
 * Moves a user every intervalMs until stopped.
 * @example
 *   const moves = startDemoMoves({ patch: (rows) => book.patch("users", { text: JSON.stringify(rows), format: "json" }, undefined), onError });
 *   moves.stop();
 */
export function startDemoMoves(opts: DemoMovesOptions): { stop(): void } {
  const next = segmentMoves(createUserPool(), demoScenario.moveSeed);
  const timer = setInterval(() => {
    opts.patch(next()).catch((e) => opts.onError(e as Error));
  }, opts.intervalMs ?? demoScenario.moveIntervalMs);
  return { stop: () => clearInterval(timer) };
}
