/**
 * The web shop's customers: a fixed pool of users (u1 … u500), each with
 * one segment and one country for good, and a few heavy users who browse
 * far more than the rest (the demo's high_activity_users view finds them).
 *
 * The pool depends on its own seed only, never on the simulators' seed, so
 * the demo's `users` reference table (usersCsv) matches the `user` and
 * `segment` tags of whatever the simulators send.
 *
 * Why 500 users and 3 heavy ones at 25 × an ordinary user's activity: the
 * demo's view flags a user with more than 100 shop events in 5 minutes. At
 * the default 200 events/s (100 of them shop) that is 30,000 shop events in
 * 5 minutes; an ordinary user gets 30,000 / (497 + 3 × 25) ≈ 52 (Poisson,
 * standard deviation ≈ 7, so 100 is ~6.6 σ away), a heavy one ≈ 1,300.
 * Above ~350 events/s ordinary users start to pass 100 too.
 *
 * @example
 *   const pool = createUserPool();
 *   pool.users[0]; // { id: "u1", segment: "returning", country: "DE", weight: 1 }
 *   usersCsv(pool); // "user_id,segment,country\nu1,returning,DE\n…"
 */
import { strict as assert } from "node:assert";
import { createPrng } from "./prng.ts";

export const activitySegments = ["new", "returning", "vip"] as const;
export type Segment = (typeof activitySegments)[number];

// Share of users per segment (same order as activitySegments).
export const segmentWeights = [0.55, 0.35, 0.1] as const;

const countries: readonly (readonly [country: string, share: number])[] = [
  ["DE", 0.3], ["US", 0.25], ["FR", 0.15], ["GB", 0.15], ["NL", 0.1], ["SE", 0.05],
];

export const userPoolDefaults = {
  users: 500,
  usersMax: 100_000, // a reference table holds at most limits.tableRowsMax rows
  heavyUsers: 3,
  heavyWeight: 25, // a heavy user's activity, in ordinary users
  seed: 16,
} as const;

export interface ShopUser {
  id: string;
  segment: Segment;
  country: string;
  /** Relative activity: 1 for an ordinary user, heavyWeight for a heavy one. */
  weight: number;
}

export interface UserPool {
  users: readonly ShopUser[];
  /** Cumulative activity shares, last entry 1: who sends the next event. */
  cdf: Float64Array;
  /** The heavy users' ids, in pool order. */
  heavy: readonly string[];
}

export interface UserPoolOptions {
  users?: number;
  heavyUsers?: number;
  heavyWeight?: number;
  seed?: number;
}

/**
 * The pool; the same options always give the same users.
 * @example createUserPool({ users: 50, heavyUsers: 1 }).heavy // ["u5"], on every run
 */
export function createUserPool(opts: UserPoolOptions = {}): UserPool {
  const n = opts.users ?? userPoolDefaults.users;
  const heavyN = opts.heavyUsers ?? userPoolDefaults.heavyUsers;
  const heavyWeight = opts.heavyWeight ?? userPoolDefaults.heavyWeight;
  assert(Number.isInteger(n) && n >= 1 && n <= userPoolDefaults.usersMax, "users in range");
  assert(Number.isInteger(heavyN) && heavyN >= 0 && heavyN <= n, "heavyUsers in [0, users]");
  assert(heavyWeight >= 1, "a heavy user is at least as active as an ordinary one");
  const rng = createPrng(opts.seed ?? userPoolDefaults.seed);
  const users: ShopUser[] = [];
  for (let i = 1; i <= n; i++) {
    const segment = activitySegments[pickIndex(rng.next(), segmentWeights)];
    const country = countries[pickIndex(rng.next(), countries.map((c) => c[1]))][0];
    users.push({ id: `u${i}`, segment, country, weight: 1 });
  }
  // Heavy users: distinct, drawn after every user has its segment, so their number moves nothing else.
  const heavyIdx = new Set<number>();
  while (heavyIdx.size < heavyN) heavyIdx.add(rng.int(n));
  for (const i of heavyIdx) users[i].weight = heavyWeight;
  const cdf = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    total += users[i].weight;
    cdf[i] = total;
  }
  for (let i = 0; i < n; i++) cdf[i] /= total;
  const heavy = users.filter((u) => u.weight > 1).map((u) => u.id);
  return { users, cdf, heavy };
}

/** Index of the user who sends the next event, for a uniform draw `r` in [0, 1). */
export function pickUser(pool: UserPool, r: number): number {
  return searchCdf(pool.cdf, r);
}

/**
 * The pool as CSV (RFC 4180, LF), the demo's `users` reference table.
 * @example usersCsv(createUserPool({ users: 2 })) // "user_id,segment,country\nu1,…\nu2,…\n"
 */
export function usersCsv(pool: UserPool): string {
  return "user_id,segment,country\n" + pool.users.map((u) => `${u.id},${u.segment},${u.country}\n`).join("");
}

/** The first index whose cumulative weight exceeds r (binary search). */
export function searchCdf(cdf: Float64Array, r: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cdf[mid] > r) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export function pickIndex(r: number, weights: readonly number[]): number {
  for (let i = 0; i < weights.length - 1; i++) {
    if (r < weights[i]) return i;
    r -= weights[i];
  }
  return weights.length - 1;
}
