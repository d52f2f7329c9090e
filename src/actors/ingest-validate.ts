/**
 * Event validation per API.md "Events". Hand-written because it runs once
 * per event on the ingest hot path: zod 4 validated 0.83 M events/s here
 * (bench/ingest.ts prints both), which alone would cap HTTP ingest below the
 * 1 M events/s target. `eventSchema` is the same contract in zod, used for
 * the OpenAPI document and checked against this code by a differential test.
 *
 * @example
 *   const out = newValidEvent();
 *   validateEvent({ name: "cpu", value: 3 }, Date.now(), bounds, out); // null: valid
 *   validateEvent({ name: "9x" }, Date.now(), bounds, out);            // 'name: must match ...'
 */
import { z } from "zod";
import { limits } from "../runtime/limits.ts";

export interface TimeBounds { maxEventAgeMs: number; maxFutureSkewMs: number }

/** Filled in place by validateEvent (one object reused per request). */
export interface ValidEvent {
  name: string;
  value: number;
  ts: number;
  tags: Record<string, string> | undefined;
  id: string | undefined;
  props: Record<string, unknown> | undefined;
}

export function newValidEvent(): ValidEvent {
  return { name: "", value: 0, ts: 0, tags: undefined, id: undefined, props: undefined };
}

/** Why an event was refused, for weir_events_rejected_total{reason}. */
export type RejectReason = "invalid" | "out_of_range" | "series_limit" | "series_rate";

const namePattern = /^[A-Za-z_][A-Za-z0-9_.:-]*$/;
const tagKeyPattern = /^[A-Za-z_][A-Za-z0-9_]*$/;
const isoPattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;
const fields = new Set(["name", "value", "ts", "tags", "id", "props"]);
/** Tag keys that, copied by assignment anywhere downstream (tags[k] = v), would reach an object's prototype instead of a property. */
const reservedTagKeys = new Set(["__proto__", "constructor", "prototype"]);

/** Returns null when `raw` is a valid event (written into `out`), else the error naming the field. */
export function validateEvent(raw: unknown, recvMs: number, bounds: TimeBounds, out: ValidEvent): string | null {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return "event: must be a JSON object";
  const ev = raw as Record<string, unknown>;
  for (const k in ev) if (!fields.has(k)) return `${JSON.stringify(k.slice(0, 64))}: unknown field`;
  const name = ev.name;
  if (typeof name !== "string") return "name: required string";
  if (name.length < 1 || name.length > limits.nameCharsMax) return `name: must be 1–${limits.nameCharsMax} characters`;
  if (!namePattern.test(name)) return "name: must match ^[A-Za-z_][A-Za-z0-9_.:-]*$";
  const value = ev.value === undefined ? 1 : ev.value;
  if (typeof value !== "number" || !Number.isFinite(value)) return "value: must be a finite number";
  const ts = eventTime(ev.ts, recvMs);
  if (typeof ts === "string") return ts;
  if (ts < recvMs - bounds.maxEventAgeMs) return "ts: older than WEIR_MAX_EVENT_AGE";
  if (ts > recvMs + bounds.maxFutureSkewMs) return "ts: further ahead than WEIR_MAX_FUTURE_SKEW";
  const tagError = ev.tags === undefined ? null : checkTags(ev.tags);
  if (tagError !== null) return tagError;
  const id = ev.id;
  if (id !== undefined && (typeof id !== "string" || id.length < 1 || id.length > limits.idCharsMax)) {
    return `id: must be a string of 1–${limits.idCharsMax} characters`;
  }
  if (ev.props !== undefined) {
    const p = ev.props;
    if (typeof p !== "object" || p === null || Array.isArray(p)) return "props: must be an object";
    if (Buffer.byteLength(JSON.stringify(p)) > limits.propsBytesMax) return `props: over ${limits.propsBytesMax} bytes encoded`;
  }
  out.name = name;
  out.value = value;
  out.ts = ts;
  out.tags = ev.tags as Record<string, string> | undefined;
  out.id = id as string | undefined;
  out.props = ev.props as Record<string, unknown> | undefined;
  return null;
}

/** Which rejected-reason label an error message belongs to. */
export function reasonOf(error: string): RejectReason {
  return error.startsWith("ts: older") || error.startsWith("ts: further") ? "out_of_range" : "invalid";
}

function eventTime(ts: unknown, recvMs: number): number | string {
  if (ts === undefined) return recvMs;
  if (typeof ts === "number") {
    return Number.isSafeInteger(ts) ? ts : "ts: must be integer milliseconds since the epoch or an ISO-8601 string";
  }
  if (typeof ts === "string" && isoPattern.test(ts)) {
    const ms = Date.parse(ts);
    if (Number.isFinite(ms)) return ms;
  }
  return "ts: must be integer milliseconds since the epoch or an ISO-8601 string";
}

function checkTags(tags: unknown): string | null {
  if (typeof tags !== "object" || tags === null || Array.isArray(tags)) return "tags: must be an object of strings";
  let n = 0;
  for (const k in tags) {
    if (++n > limits.tagsMax) return `tags: at most ${limits.tagsMax} entries`;
    if (k.length > limits.tagKeyCharsMax || !tagKeyPattern.test(k)) {
      return `tags.${k.slice(0, 64)}: key must match ^[A-Za-z_][A-Za-z0-9_]*$ and be ≤ ${limits.tagKeyCharsMax} characters`;
    }
    if (reservedTagKeys.has(k)) return `tags.${k}: a reserved key (__proto__, constructor and prototype name JavaScript's own properties)`;
    const v = (tags as Record<string, unknown>)[k];
    if (typeof v !== "string") return `tags.${k}: must be a string`;
    if (v.length > limits.tagValueCharsMax) return `tags.${k}: over ${limits.tagValueCharsMax} characters`;
  }
  return null;
}

/** The same contract in zod: documentation (OpenAPI) and the reference for the differential test. */
export const eventSchema = z.strictObject({
  name: z.string().min(1).max(limits.nameCharsMax).regex(namePattern),
  value: z.number().finite().default(1),
  ts: z.union([z.number().int(), z.string().regex(isoPattern)]).optional(),
  tags: z.record(z.string().max(limits.tagKeyCharsMax).regex(tagKeyPattern).refine((k) => !reservedTagKeys.has(k)), z.string().max(limits.tagValueCharsMax)).optional(),
  id: z.string().min(1).max(limits.idCharsMax).optional(),
  props: z.record(z.string(), z.unknown()).optional(),
});
