/**
 * Simulated user activity on a web shop: page views, clicks and purchases,
 * tagged by page, user and the user's segment, with a realistic funnel
 * (views ≫ clicks ≫ purchases, loyal customers converting better) and
 * log-normal basket amounts. Users come from a fixed pool (shop-users.ts):
 * each keeps its segment, and a few heavy users browse far more than the
 * rest. Product popularity follows a Zipf law, so top-k by page has a clear
 * leader board.
 *
 * Series stay bounded: each user looks at a few products of its own
 * (`interests`, drawn by popularity), so a user makes at most 5 + 3 ×
 * interests series (4 fixed pages and its products viewed, the home page
 * and its products clicked, its products bought): 500 × 11 = 5,500 with
 * the defaults, where every page for every user would make 500 × 65.
 *
 * Pure functions over an explicit state; the caller passes the time.
 */
import { strict as assert } from "node:assert";
import type { SimEvent } from "./event.ts";
import { createPrng, type Prng } from "./prng.ts";
import { createUserPool, pickUser, searchCdf, type Segment, type UserPool, type UserPoolOptions } from "./shop-users.ts";

export { activitySegments, type Segment } from "./shop-users.ts";

// Clicks and purchases per page view, by segment: typical e-commerce figures
// (click-through 8–25 %, conversion 0.5–6 %).
const funnel: Record<Segment, { clicksPerView: number; purchasesPerView: number }> = {
  new: { clicksPerView: 0.08, purchasesPerView: 0.005 },
  returning: { clicksPerView: 0.15, purchasesPerView: 0.02 },
  vip: { clicksPerView: 0.25, purchasesPerView: 0.06 },
};

// Basket amount: log-normal around a median, VIPs spending more.
const amountMedian = 35;
const amountSigma = 0.7;
const vipAmountFactor = 2.5;
const amountMin = 0.5;

const zipfExponent = 1.1;

// Where views land (the rest go to product pages).
const viewPages: readonly (readonly [page: string, share: number])[] = [
  ["/", 0.25],
  ["/search", 0.1],
  ["/cart", 0.07],
  ["/checkout", 0.03],
];
const homeClickShare = 0.3; // clicks on the home page's banners; the rest on products

export const activityDefaults = { seed: 2, products: 20, productsMax: 10_000, interests: 2, interestsMax: 16 } as const;

export interface ActivityOptions {
  seed?: number;
  /** Number of product pages, "/product/1" … "/product/N". */
  products?: number;
  /** Products each user looks at (at most `products`). */
  interests?: number;
  /** The user pool (shop-users.ts defaults: 500 users, 3 of them heavy). */
  users?: UserPoolOptions;
}

export interface ActivityState {
  rng: Prng;
  pool: UserPool;
  productPages: string[];
  productCdf: Float64Array; // cumulative Zipf weights, last entry 1
  interests: number;
  /** User u's products: userProducts[u * interests + j], with cumulative Zipf weights in userProductCdf (per user, last 1). */
  userProducts: Int32Array;
  userProductCdf: Float64Array;
  tagCache: Map<string, Readonly<Record<string, string>>>; // by page + user, built lazily; bounded by the series
}

/**
 * @example
 *   const s = createActivityState({ seed: 3, products: 50 });
 */
export function createActivityState(opts: ActivityOptions = {}): ActivityState {
  const products = opts.products ?? activityDefaults.products;
  assert(Number.isInteger(products) && products >= 1 && products <= activityDefaults.productsMax, "products in range");
  const productPages: string[] = [];
  const productCdf = new Float64Array(products);
  let total = 0;
  for (let k = 1; k <= products; k++) {
    productPages.push(`/product/${k}`);
    total += 1 / k ** zipfExponent;
    productCdf[k - 1] = total;
  }
  for (let k = 0; k < products; k++) productCdf[k] /= total;
  const rng = createPrng(opts.seed ?? activityDefaults.seed);
  const pool = createUserPool(opts.users);
  const interests = Math.min(products, opts.interests ?? activityDefaults.interests);
  assert(Number.isInteger(interests) && interests >= 1 && interests <= activityDefaults.interestsMax, "interests in range");
  const userProducts = new Int32Array(pool.users.length * interests);
  const userProductCdf = new Float64Array(pool.users.length * interests);
  for (let u = 0; u < pool.users.length; u++) pickInterests(rng, productCdf, userProducts, userProductCdf, u * interests, interests);
  return { rng, pool, productPages, productCdf, interests, userProducts, userProductCdf, tagCache: new Map() };
}

/** `n` distinct products drawn by popularity into out[at …], with their cumulative weights (normalised) in cdf[at …]. */
function pickInterests(rng: Prng, productCdf: Float64Array, out: Int32Array, cdf: Float64Array, at: number, n: number): void {
  let total = 0;
  for (let j = 0; j < n; j++) {
    let k: number;
    do k = searchCdf(productCdf, rng.next()); while (out.subarray(at, at + j).includes(k)); // n ≤ products: ends
    out[at + j] = k;
    total += productCdf[k] - (k === 0 ? 0 : productCdf[k - 1]);
    cdf[at + j] = total;
  }
  for (let j = 0; j < n; j++) cdf[at + j] /= total;
}

/**
 * Appends `count` shop events at time `nowMs` to `out` and returns `out`.
 *
 * @example
 *   const s = createActivityState();
 *   generateActivity(s, Date.now(), 100); // mostly shop.view, a few clicks, rarely a purchase
 */
export function generateActivity(state: ActivityState, nowMs: number, count: number, out: SimEvent[] = []): SimEvent[] {
  assert(Number.isInteger(count) && count >= 0, "count is a natural number");
  const { rng } = state;
  for (let i = 0; i < count; i++) {
    const u = pickUser(state.pool, rng.next());
    const segment = state.pool.users[u].segment;
    const { clicksPerView, purchasesPerView } = funnel[segment];
    // One draw decides the kind, in proportion view : click : purchase.
    const r = rng.next() * (1 + clicksPerView + purchasesPerView);
    if (r < 1) {
      out.push({ name: "shop.view", value: 1, ts: nowMs, tags: tagsFor(state, viewPage(state, u), u) });
    } else if (r < 1 + clicksPerView) {
      const page = rng.next() < homeClickShare ? "/" : productPage(state, u);
      out.push({ name: "shop.click", value: 1, ts: nowMs, tags: tagsFor(state, page, u) });
    } else {
      // A purchase is tagged with the product bought, so top-k by page ranks sales.
      out.push({ name: "shop.purchase", value: amount(rng, segment), ts: nowMs, tags: tagsFor(state, productPage(state, u), u) });
    }
  }
  return out;
}

function viewPage(state: ActivityState, u: number): string {
  let r = state.rng.next();
  for (const [page, share] of viewPages) {
    if (r < share) return page;
    r -= share;
  }
  return productPage(state, u);
}

/** One of user u's products, by popularity. */
function productPage(state: ActivityState, u: number): string {
  const at = u * state.interests;
  const r = state.rng.next();
  let j = 0;
  while (j < state.interests - 1 && state.userProductCdf[at + j] <= r) j++;
  return state.productPages[state.userProducts[at + j]];
}

function amount(rng: Prng, segment: Segment): number {
  const median = segment === "vip" ? amountMedian * vipAmountFactor : amountMedian;
  const x = median * Math.exp(amountSigma * rng.gaussian());
  return Math.max(amountMin, Math.round(x * 100) / 100);
}

// The page × user set is bounded (a user's pages are fixed), so each tag
// object is built once and shared (frozen, like the IoT tags) instead of one per event.
function tagsFor(state: ActivityState, page: string, u: number): Readonly<Record<string, string>> {
  const k = page + "\u0000" + u;
  let tags = state.tagCache.get(k);
  if (tags === undefined) {
    const user = state.pool.users[u];
    tags = Object.freeze({ page, segment: user.segment, user: user.id });
    state.tagCache.set(k, tags);
  }
  return tags;
}
