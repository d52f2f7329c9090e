/**
 * Drives the IoT and shop simulators at a target rate: every tick it works
 * out how many events are due since the last tick, generates them stamped
 * with the current time, and hands them to `emit` as one batch.
 *
 * The timer is the only impure part. `tick()` is exported on the handle and
 * `now` is injectable, so a test advances a fake clock and calls `tick()`
 * instead of sleeping.
 */
import { strict as assert } from "node:assert";
import { limits } from "../runtime/limits.ts";
import { generateActivity, createActivityState } from "./activity.ts";
import type { SimEvent } from "./event.ts";
import { createIotState, generateIot, iotDefaults } from "./iot.ts";

export type { SimEvent } from "./event.ts";

export const simLimits = {
  tickMsDefault: 100,
  tickMsMin: 10,
  tickMsMax: 10_000,
  ratePerSecMax: 200_000,
  // Bounds one batch, so a stalled timer (a laptop waking up) cannot make
  // one tick try to catch up on an hour of events at once.
  eventsPerTickMax: 20_000,
  iotShareDefault: 0.5, // the rest is shop activity
  seedDefault: 1,
  backfillMsMax: 24 * 3600_000, // history generated at start, at most a day
  backfillStepMs: 1_000, // one batch per simulated second of history
} as const;

assert(simLimits.tickMsMin <= simLimits.tickMsDefault && simLimits.tickMsDefault <= simLimits.tickMsMax);
assert(
  (simLimits.ratePerSecMax * simLimits.tickMsDefault) / 1000 <= simLimits.eventsPerTickMax,
  "the maximal rate fits one batch per default tick",
);
assert(simLimits.eventsPerTickMax <= limits.eventsPerRequestMax, "a batch fits one ingest request");

export interface SimulatorOptions {
  /** Events per second, IoT and shop together. */
  ratePerSec: number;
  devices?: number;
  seed?: number;
  /** Receives one batch per tick; `false` means refused (backpressure): counted, not retried. */
  emit: (events: SimEvent[]) => boolean | void;
  now?: () => number;
  tickMs?: number;
  /** Share of the rate given to IoT readings, in [0, 1]; default 0.5. */
  iotShare?: number;
  /** Simulated "day" of the IoT cycle (ms); default 10 min. */
  periodMs?: number;
  /** Probability that an IoT reading is a spike; default 0.001. */
  spikeProbability?: number;
  /** Do not start a timer; the caller drives `tick()` (tests, load harness). */
  manual?: boolean;
  /**
   * Before the first tick, generate this much history (ms before now) at the
   * same rate, one batch per simulated second, so a fresh dashboard has
   * closed windows, anomalies and trends at once. 0 (default): none.
   */
  backfillMs?: number;
}

export interface SimulatorStats {
  sent: number;
  refused: number;
}

export interface Simulators {
  /** Generates and emits the events due now; returns how many. */
  tick(): number;
  stop(): void;
  stats(): SimulatorStats;
}

/**
 * Starts both simulators on a timer (unless `manual`).
 *
 * @example
 *   const sims = startSimulators({ ratePerSec: 1000, emit: (batch) => engine.ingestEvents(batch) });
 *   // … later
 *   sims.stats(); // { sent: 59_800, refused: 200 }
 *   sims.stop();
 */
export function startSimulators(opts: SimulatorOptions): Simulators {
  const tickMs = opts.tickMs ?? simLimits.tickMsDefault;
  const iotShare = opts.iotShare ?? simLimits.iotShareDefault;
  const seed = opts.seed ?? simLimits.seedDefault;
  assert(Number.isFinite(opts.ratePerSec) && opts.ratePerSec >= 0, "ratePerSec is a non-negative number");
  assert(opts.ratePerSec <= simLimits.ratePerSecMax, `ratePerSec at most ${simLimits.ratePerSecMax}`);
  assert(tickMs >= simLimits.tickMsMin && tickMs <= simLimits.tickMsMax, "tickMs in range");
  assert(iotShare >= 0 && iotShare <= 1, "iotShare in [0, 1]");
  const backfillMs = opts.backfillMs ?? 0;
  assert(backfillMs >= 0 && backfillMs <= simLimits.backfillMsMax, `backfillMs in [0, ${simLimits.backfillMsMax}]`);

  const now = opts.now ?? Date.now;
  const iot = createIotState({
    devices: opts.devices ?? iotDefaults.devices,
    seed,
    periodMs: opts.periodMs,
    spikeProbability: opts.spikeProbability,
  });
  // A different seed per simulator, so the two streams are not correlated.
  const activity = createActivityState({ seed: (seed ^ 0x9e3779b9) >>> 0 });
  const iotRatePerMs = (opts.ratePerSec * iotShare) / 1000;
  const shopRatePerMs = (opts.ratePerSec * (1 - iotShare)) / 1000;
  const iotCreditMax = Math.floor(simLimits.eventsPerTickMax * iotShare);
  const shopCreditMax = simLimits.eventsPerTickMax - iotCreditMax;

  // Fractional events carry over between ticks, so low rates (1/s at a
  // 100 ms tick) and uneven ticks still average out to the target rate.
  let iotCredit = 0;
  let shopCredit = 0;
  let lastMs = Math.floor(now()) - backfillMs;
  let sent = 0;
  let refused = 0;
  let stopped = false;

  /** Generates and emits the events due between the last call and `nowMs`. */
  const emitUntil = (nowMs: number): number => {
    const elapsedMs = Math.max(0, nowMs - lastMs); // a clock stepping back emits nothing
    lastMs = nowMs;
    iotCredit = Math.min(iotCredit + elapsedMs * iotRatePerMs, iotCreditMax);
    shopCredit = Math.min(shopCredit + elapsedMs * shopRatePerMs, shopCreditMax);
    const iotCount = Math.floor(iotCredit);
    const shopCount = Math.floor(shopCredit);
    iotCredit -= iotCount;
    shopCredit -= shopCount;
    if (iotCount + shopCount === 0) return 0;
    // One fresh array per tick: emit may keep it (queue it, serialise it later).
    const batch: SimEvent[] = [];
    generateIot(iot, nowMs, iotCount, batch);
    generateActivity(activity, nowMs, shopCount, batch);
    if (opts.emit(batch) === false) refused += batch.length;
    else sent += batch.length;
    return batch.length;
  };
  // Integer ms, as API.md requires of ts.
  const tick = (): number => (stopped ? 0 : emitUntil(Math.floor(now())));

  // History first, oldest first, so every series' events arrive in order.
  const backfillEnd = lastMs + backfillMs;
  for (let t = lastMs + simLimits.backfillStepMs; t < backfillEnd; t += simLimits.backfillStepMs) emitUntil(t);

  const timer = opts.manual ? undefined : setInterval(tick, tickMs);
  return {
    tick,
    stop() {
      stopped = true;
      if (timer !== undefined) clearInterval(timer);
    },
    stats: () => ({ sent, refused }),
  };
}
