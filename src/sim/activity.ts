/**
 * Simulated user activity on a web shop: page views, clicks and purchases,
 * tagged by page and customer segment, with a realistic funnel (views ≫
 * clicks ≫ purchases, loyal customers converting better) and log-normal
 * basket amounts. Product popularity follows a Zipf law, so top-k by page has
 * a clear leader board.
 *
 * Pure functions over an explicit state; the caller passes the time.
 */
import { strict as assert } from "node:assert";
import type { SimEvent } from "./event.ts";
import { createPrng, type Prng } from "./prng.ts";

export const activitySegments = ["new", "returning", "vip"] as const;
export type Segment = (typeof activitySegments)[number];

// Share of traffic per segment (same order as activitySegments).
const segmentWeights = [0.55, 0.35, 0.1];

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

export const activityDefaults = { seed: 2, products: 20, productsMax: 10_000 } as const;

export interface ActivityOptions {
  seed?: number;
  /** Number of product pages, "/product/1" … "/product/N". */
  products?: number;
}

export interface ActivityState {
  rng: Prng;
  productPages: string[];
  productCdf: Float64Array; // cumulative Zipf weights, last entry 1
  tagCache: Map<string, Readonly<Record<string, string>>>; // by page + segment, built lazily
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
  return { rng: createPrng(opts.seed ?? activityDefaults.seed), productPages, productCdf, tagCache: new Map() };
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
    const segment = activitySegments[pickIndex(rng.next(), segmentWeights)];
    const { clicksPerView, purchasesPerView } = funnel[segment];
    // One draw decides the kind, in proportion view : click : purchase.
    const r = rng.next() * (1 + clicksPerView + purchasesPerView);
    if (r < 1) {
      out.push({ name: "shop.view", value: 1, ts: nowMs, tags: tagsFor(state, viewPage(state), segment) });
    } else if (r < 1 + clicksPerView) {
      const page = rng.next() < homeClickShare ? "/" : productPage(state);
      out.push({ name: "shop.click", value: 1, ts: nowMs, tags: tagsFor(state, page, segment) });
    } else {
      // A purchase is tagged with the product bought, so top-k by page ranks sales.
      out.push({ name: "shop.purchase", value: amount(rng, segment), ts: nowMs, tags: tagsFor(state, productPage(state), segment) });
    }
  }
  return out;
}

function viewPage(state: ActivityState): string {
  let r = state.rng.next();
  for (const [page, share] of viewPages) {
    if (r < share) return page;
    r -= share;
  }
  return productPage(state);
}

function productPage(state: ActivityState): string {
  const r = state.rng.next();
  const cdf = state.productCdf;
  // Binary search: the first product whose cumulative weight exceeds r.
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cdf[mid] > r) hi = mid;
    else lo = mid + 1;
  }
  return state.productPages[lo];
}

function amount(rng: Prng, segment: Segment): number {
  const median = segment === "vip" ? amountMedian * vipAmountFactor : amountMedian;
  const x = median * Math.exp(amountSigma * rng.gaussian());
  return Math.max(amountMin, Math.round(x * 100) / 100);
}

function pickIndex(r: number, weights: readonly number[]): number {
  for (let i = 0; i < weights.length - 1; i++) {
    if (r < weights[i]) return i;
    r -= weights[i];
  }
  return weights.length - 1;
}

// The page × segment set is small and fixed, so each tag object is built
// once and shared (frozen, like the IoT tags) instead of one per event.
function tagsFor(state: ActivityState, page: string, segment: Segment): Readonly<Record<string, string>> {
  const k = page + "\u0000" + segment;
  let tags = state.tagCache.get(k);
  if (tags === undefined) {
    tags = Object.freeze({ page, segment });
    state.tagCache.set(k, tags);
  }
  return tags;
}
