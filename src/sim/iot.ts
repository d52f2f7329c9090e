/**
 * Simulated IoT devices: each device reports temperature, humidity and
 * pressure. A reading is a daily-style sinusoid (compressed so a "day" passes
 * in minutes and shows on a live chart), plus a slow bounded drift, plus
 * Gaussian sensor noise, plus rare spikes for the anomaly detector to find.
 *
 * Pure functions over an explicit state: no timers, the caller passes the
 * time, so tests and replays control it.
 */
import { strict as assert } from "node:assert";
import type { SimEvent } from "./event.ts";
import { createPrng, type Prng } from "./prng.ts";

interface MetricSpec {
  name: string;
  lo: number; // realistic range; clean readings stay inside it
  hi: number;
  phaseRad: number;
  periodFactor: number; // multiple of the configured cycle period
  decimals: number; // sensor resolution
}

const metrics: readonly MetricSpec[] = [
  { name: "sensor.temperature", lo: 15, hi: 30, phaseRad: 0, periodFactor: 1, decimals: 2 },
  // Relative humidity falls as the air warms, so it runs opposite to temperature.
  { name: "sensor.humidity", lo: 30, hi: 70, phaseRad: Math.PI, periodFactor: 1, decimals: 1 },
  // Weather fronts move slower than the day: pressure cycles three times slower.
  { name: "sensor.pressure", lo: 1000, hi: 1025, phaseRad: Math.PI / 2, periodFactor: 3, decimals: 2 },
];

/** Clean-reading ranges by metric name (spikes fall outside them on purpose). */
export const iotRanges: Readonly<Record<string, readonly [lo: number, hi: number]>> = Object.fromEntries(
  metrics.map((m) => [m.name, [m.lo, m.hi] as const]),
);

// Shape of a clean reading as fractions of the range width W. Their sum
// (0.1 + 0.25 + 0.08) leaves 0.07 W of headroom for noise before the clamp.
const baseJitterFrac = 0.1; // devices sit up to ±0.1 W from mid-range
const amplitudeMinFrac = 0.15;
const amplitudeMaxFrac = 0.25;
const driftMaxFrac = 0.08;
const driftStepFrac = 0.002; // per reading: minutes to wander, not seconds
const driftDecay = 0.999; // pulls drift back to zero so it stays bounded
const noiseFrac = 0.01;
const spikeMinFrac = 0.1; // a spike lands 0.1–0.5 W beyond the range
const spikeMaxFrac = 0.5;
const phaseJitterRad = 0.5; // devices are near, not exactly, in step

export const iotDefaults = {
  devices: 8,
  devicesMax: 10_000,
  seed: 1,
  periodMs: 10 * 60 * 1000,
  spikeProbability: 0.001,
  sites: ["north", "south", "east", "west"] as readonly string[],
} as const;

export interface IotOptions {
  devices?: number;
  seed?: number;
  /** Length of one simulated "day" (ms); pressure cycles 3× slower. */
  periodMs?: number;
  /** Probability that a reading is a spike, in [0, 1]. */
  spikeProbability?: number;
  sites?: readonly string[];
}

/** One (device, metric) pair: what makes its readings its own. */
interface Channel {
  metric: MetricSpec;
  tags: Readonly<Record<string, string>>;
  base: number;
  amplitude: number;
  phaseRad: number;
  drift: number;
}

export interface IotState {
  rng: Prng;
  channels: Channel[];
  cursor: number; // next channel to read, round-robin
  periodMs: number;
  spikeProbability: number;
  readings: number;
  spikes: number;
}

/**
 * Builds the devices; everything about them is drawn from the seed.
 *
 * @example
 *   const s = createIotState({ devices: 4, seed: 7, spikeProbability: 0.01 });
 *   s.channels.length; // 12: four devices × three metrics
 */
export function createIotState(opts: IotOptions = {}): IotState {
  const devices = opts.devices ?? iotDefaults.devices;
  const periodMs = opts.periodMs ?? iotDefaults.periodMs;
  const spikeProbability = opts.spikeProbability ?? iotDefaults.spikeProbability;
  const sites = opts.sites ?? iotDefaults.sites;
  assert(Number.isInteger(devices) && devices >= 1 && devices <= iotDefaults.devicesMax, "devices in range");
  assert(periodMs > 0 && Number.isFinite(periodMs), "periodMs positive");
  assert(spikeProbability >= 0 && spikeProbability <= 1, "spikeProbability in [0, 1]");
  assert(sites.length >= 1, "at least one site");

  const rng = createPrng(opts.seed ?? iotDefaults.seed);
  const width = String(devices).length < 2 ? 2 : String(devices).length;
  const channels: Channel[] = [];
  for (let d = 0; d < devices; d++) {
    // Frozen and shared by every event of the channel: saves an object per
    // event, and a consumer that mutates tags fails loudly instead of subtly.
    const tags = Object.freeze({ device: `dev-${String(d + 1).padStart(width, "0")}`, site: sites[d % sites.length] });
    const phaseShiftRad = (rng.next() * 2 - 1) * phaseJitterRad;
    for (const metric of metrics) {
      const w = metric.hi - metric.lo;
      channels.push({
        metric,
        tags,
        base: (metric.lo + metric.hi) / 2 + (rng.next() * 2 - 1) * baseJitterFrac * w,
        amplitude: (amplitudeMinFrac + rng.next() * (amplitudeMaxFrac - amplitudeMinFrac)) * w,
        phaseRad: metric.phaseRad + phaseShiftRad,
        drift: 0,
      });
    }
  }
  return { rng, channels, cursor: 0, periodMs, spikeProbability, readings: 0, spikes: 0 };
}

/**
 * Appends `count` readings at time `nowMs` to `out`, taking the channels in
 * turn, and returns `out`.
 *
 * @example
 *   const s = createIotState({ devices: 2 });
 *   generateIot(s, Date.now(), 6); // one reading of each metric per device
 */
export function generateIot(state: IotState, nowMs: number, count: number, out: SimEvent[] = []): SimEvent[] {
  assert(Number.isInteger(count) && count >= 0, "count is a natural number");
  const { rng, channels } = state;
  for (let i = 0; i < count; i++) {
    const ch = channels[state.cursor];
    state.cursor = state.cursor + 1 === channels.length ? 0 : state.cursor + 1;
    out.push({ name: ch.metric.name, value: read(state, ch, rng, nowMs), ts: nowMs, tags: ch.tags });
  }
  state.readings += count;
  return out;
}

function read(state: IotState, ch: Channel, rng: Prng, nowMs: number): number {
  const { lo, hi, periodFactor, decimals } = ch.metric;
  const w = hi - lo;
  const driftMax = driftMaxFrac * w;
  ch.drift = clamp(ch.drift * driftDecay + rng.gaussian() * driftStepFrac * w, -driftMax, driftMax);
  const angleRad = (2 * Math.PI * nowMs) / (state.periodMs * periodFactor) + ch.phaseRad;
  const clean = ch.base + ch.amplitude * Math.sin(angleRad) + ch.drift + rng.gaussian() * noiseFrac * w;
  // Drawn for every reading, spike or not: the draws stay aligned, so changing
  // the spike probability changes which readings spike and nothing else.
  const spikeDraw = rng.next();
  const spikeFrac = spikeMinFrac + rng.next() * (spikeMaxFrac - spikeMinFrac);
  const up = rng.next() < 0.5;
  let value: number;
  if (spikeDraw < state.spikeProbability) {
    // A glitch reads well outside the physical range, as a faulty sensor does,
    // so a spike is unmistakable both to the detector and to the tests.
    state.spikes++;
    value = up ? hi + spikeFrac * w : lo - spikeFrac * w;
  } else {
    // Gaussian noise is unbounded; clamping keeps the documented range a contract.
    value = clamp(clean, lo, hi);
  }
  return round(value, decimals);
}

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

function round(x: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}
