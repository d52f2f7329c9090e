/**
 * The pure state machine of one rule instance (one rule, one series),
 * judged in event time at the ends of the closed windows that feed it.
 *
 * States: inactive → pending → firing → resolved, and from resolved (or
 * inactive) to pending again. Each change is a transition at the instant
 * that caused it (ts = that window's end, or the watermark of quiet()).
 *
 * The condition over time. An evaluation at end E with verdict c stands for
 * [E, E + hold), hold being the length of the window it read (the rule's
 * `over`, or the window's own size): this is how a slow series, one event a
 * few minutes under "over 30m", stays continuously true. Past E + hold
 * with no newer evaluation there is no data, and no data is false (as a
 * Prometheus series gone stale): absence never makes a condition true.
 *
 * The rules, at each evaluation (end E, verdict c):
 * 1. Replays. E ≤ the last instant handled changes nothing and emits
 *    nothing, so a replay after a restart fires nothing twice, and an
 *    out-of-order window is ignored.
 * 2. Gap. If E is past the last evaluation's hold ([holdTo, E) had no
 *    data): a pending instance goes inactive (ts holdTo); a firing one's
 *    false run starts at holdTo unless it started before, and it resolves
 *    if that run is already keep_firing_for long at E (ts: the run's start
 *    + keep_firing_for). Then c is applied. Gap transitions take their
 *    instant from the data, so noticing a gap later changes nothing.
 * 3. c true: inactive or resolved → pending (its run starts at E), or
 *    straight to firing when `for` is 0; pending → firing once
 *    E − run start ≥ `for`; firing stays firing (a false run is forgotten).
 * 4. c false: pending → inactive; firing → resolved once E − false-run
 *    start ≥ keep_firing_for (with 0, at once), the run starting at the
 *    first false evaluation (or at holdTo after a gap); resolved and
 *    inactive stay.
 * Judgement happens at evaluations only: a firing instance judged false
 * at E and true again at E + 10 s keeps firing whatever keep_firing_for,
 * as in Prometheus. quiet(at) is an instant without data (the series'
 * watermark passed `at` and closed no window): rule 2 only.
 *
 * Plain data: snapshot() is an object of numbers and strings (the rolling
 * window's entries as a Float64Array) that survives MessagePack, and
 * restore() continues identically.
 *
 * @example
 *   const inst = new RuleInstance('cpu{host="a"}');
 *   const timing = { forMs: 20_000, keepFiringForMs: 0 };
 *   evaluateInstance(inst, timing, 10_000, 10_000, true, 93, log);  // → pending, ts 10000
 *   evaluateInstance(inst, timing, 30_000, 10_000, true, 95, log);  // → firing, ts 30000
 *   evaluateInstance(inst, timing, 30_000, 10_000, true, 95, log);  // a replay: nothing
 *   evaluateInstance(inst, timing, 40_000, 10_000, false, 50, log); // → resolved, ts 40000
 */
import { RollingWindow } from "./rolling.ts";

export type AlertState = "inactive" | "pending" | "firing" | "resolved";
/** What an evaluation read: a number (aggregate), a severity or trend class, or null (no data). */
export type AlertValue = number | string | null;
export interface Timing { forMs: number; keepFiringForMs: number }
/** Called once per transition; `value` is that of the evaluation that caused it (null after no data). */
export type OnTransition = (inst: RuleInstance, state: AlertState, ts: number, value: AlertValue) => void;

export class RuleInstance {
  state: AlertState = "inactive";
  /** The last instant handled (evaluation end or quiet watermark): anything at or before it is a replay. */
  seenTo = -Infinity;
  /** The last evaluation's end plus its hold: its verdict stands until then. */
  holdTo = -Infinity;
  /** Start of the current true run (pending or firing), else NaN. */
  trueSince = NaN;
  /** Start of the current false run of a firing instance, else NaN. */
  falseSince = NaN;
  /** The last evaluation's value, for listings. */
  value: AlertValue = null;
  /** When the instance entered its state, for listings. */
  stateSince = NaN;

  constructor(readonly series: string, readonly window: RollingWindow | null = null) {}
}

/**
 * One evaluation (rules 1–4 of the module comment). Returns false for a
 * replay (nothing changed), so the caller can skip its rolling window.
 * @example evaluateInstance(inst, { forMs: 0, keepFiringForMs: 0 }, w.end, 10_000, w.avg > 3000, w.avg, emit)
 */
export function evaluateInstance(
  inst: RuleInstance, timing: Timing, end: number, holdMs: number, cond: boolean, value: AlertValue, emit: OnTransition,
): boolean {
  if (end <= inst.seenTo) return false;
  settleGap(inst, timing, end, emit);
  inst.seenTo = end;
  inst.holdTo = end + holdMs;
  inst.value = value;
  if (cond) onTrue(inst, timing, end, value, emit);
  else onFalse(inst, timing, end, value, emit);
  return true;
}

/**
 * No data up to `at` (the series' watermark passed it with no window): rule 2 only.
 * @example quietInstance(inst, timing, closedBefore, emit)
 */
export function quietInstance(inst: RuleInstance, timing: Timing, at: number, emit: OnTransition): void {
  if (at <= inst.seenTo) return;
  settleGap(inst, timing, at, emit);
  inst.seenTo = at;
}

/**
 * Rule 2: [holdTo, at) had no data, so the condition was false there. The
 * transition's instant follows from the data alone, not from `at` (when
 * the gap was noticed): a pending instance goes inactive at holdTo, a
 * firing one resolves where its false run reaches keep_firing_for. So a
 * replay that notices the gap later (or by an evaluation rather than by
 * quiet) emits the very same transition.
 */
function settleGap(inst: RuleInstance, timing: Timing, at: number, emit: OnTransition): void {
  if (at <= inst.holdTo) return;
  if (inst.state === "pending") {
    inst.trueSince = NaN;
    to(inst, "inactive", inst.holdTo, null, emit);
  } else if (inst.state === "firing") {
    if (!(inst.falseSince <= inst.holdTo)) inst.falseSince = inst.holdTo; // NaN: the run starts where the data ended
    if (at - inst.falseSince >= timing.keepFiringForMs) resolve(inst, inst.falseSince + timing.keepFiringForMs, null, emit);
  }
}

function onTrue(inst: RuleInstance, timing: Timing, end: number, value: AlertValue, emit: OnTransition): void {
  inst.falseSince = NaN;
  if (inst.state === "inactive" || inst.state === "resolved") {
    inst.trueSince = end;
    to(inst, timing.forMs === 0 ? "firing" : "pending", end, value, emit);
  } else if (inst.state === "pending" && end - inst.trueSince >= timing.forMs) {
    to(inst, "firing", end, value, emit);
  }
}

function onFalse(inst: RuleInstance, timing: Timing, end: number, value: AlertValue, emit: OnTransition): void {
  if (inst.state === "pending") {
    inst.trueSince = NaN;
    to(inst, "inactive", end, value, emit);
  } else if (inst.state === "firing") {
    if (Number.isNaN(inst.falseSince)) inst.falseSince = end;
    if (end - inst.falseSince >= timing.keepFiringForMs) resolve(inst, end, value, emit);
  }
}

function resolve(inst: RuleInstance, ts: number, value: AlertValue, emit: OnTransition): void {
  inst.trueSince = NaN;
  inst.falseSince = NaN;
  to(inst, "resolved", ts, value, emit);
}

function to(inst: RuleInstance, state: AlertState, ts: number, value: AlertValue, emit: OnTransition): void {
  inst.state = state;
  inst.stateSince = ts;
  emit(inst, state, ts, value);
}

/** Plain data for restoreInstance(); -Infinity and NaN survive MessagePack as float64. */
export interface InstanceSnapshot {
  series: string;
  state: AlertState;
  seenTo: number;
  holdTo: number;
  trueSince: number;
  falseSince: number;
  value: AlertValue;
  stateSince: number;
  /** The rolling window's entries, or null for a rule that reads its windows directly. */
  window: Float64Array | Uint8Array | null;
}

const states: readonly AlertState[] = ["inactive", "pending", "firing", "resolved"];

/** @example const snap = snapshotInstance(inst); */
export function snapshotInstance(inst: RuleInstance): InstanceSnapshot {
  const { series, state, seenTo, holdTo, trueSince, falseSince, value, stateSince } = inst;
  return { series, state, seenTo, holdTo, trueSince, falseSince, value, stateSince, window: inst.window?.snapshot() ?? null };
}

/**
 * Rebuilds an instance from its snapshot; `window` is a fresh rolling window of the rule (or null), filled from it.
 * @example const inst = restoreInstance(snap, null);
 */
export function restoreInstance(snap: InstanceSnapshot, window: RollingWindow | null): RuleInstance {
  if (!states.includes(snap.state)) throw new Error(`rule instance snapshot of ${snap.series}: unknown state ${String(snap.state)}`);
  if ((window === null) !== (snap.window === null)) throw new Error(`rule instance snapshot of ${snap.series}: rolling window ${snap.window === null ? "missing" : "not expected"}`);
  const inst = new RuleInstance(snap.series, window);
  inst.state = snap.state;
  inst.seenTo = snap.seenTo;
  inst.holdTo = snap.holdTo;
  inst.trueSince = snap.trueSince;
  inst.falseSince = snap.falseSince;
  inst.value = snap.value;
  inst.stateSince = snap.stateSince;
  if (window !== null && snap.window !== null) window.restore(snap.window);
  return inst;
}
