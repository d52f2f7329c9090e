/**
 * Stream WEIR_INGEST, the log producers publish to in NATS mode: created
 * with file storage when missing, and never changed when it exists. A
 * stream with other settings than weir asks for may hold data an operator
 * meant to keep that way (a shorter max_age drops history, other subjects
 * take other traffic), so weir stops and lists every difference instead of
 * "fixing" it.
 *
 * @example
 *   const { created } = await ensureIngestStream(jsm, ingestStreamDefaults);
 *   // exists with max_age 1h →
 *   // IngestStreamError: nats: stream WEIR_INGEST exists with other settings (max_age: have 1h, want 7d); ...
 */
import { JetStreamApiCodes, JetStreamApiError, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig, type StreamInfo } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { asUnavailable, IngestStreamError, type StreamDifference } from "./errors.ts";
import { limits } from "../runtime/limits.ts";
import { ingestSubjectFilter } from "./subjects.ts";

export interface IngestStreamSettings {
  name: string;
  subjects: string[];
  /** Publishes with the same Nats-Msg-Id within this are stored once (≥ 1 ms, ≤ maxAgeMs unless that is 0). */
  duplicateWindowMs: number;
  /** Messages older than this are removed; 0 keeps them for ever. */
  maxAgeMs: number;
}

/** Stream WEIR_INGEST as API.md names it, with the default age and duplicate window (limits.natsIngest*). */
export const ingestStreamDefaults: IngestStreamSettings = {
  name: "WEIR_INGEST",
  subjects: [ingestSubjectFilter],
  duplicateWindowMs: limits.natsIngestDuplicateWindowMsDefault,
  maxAgeMs: limits.natsIngestMaxAgeMsDefault,
};

/** The settings weir asks of its stream, as JetStream names them (durations in nanoseconds). */
export type IngestStreamConfig = Pick<StreamConfig, "name" | "subjects" | "storage" | "retention" | "max_age" | "duplicate_window">;

// JSStreamNameExistErr: "stream name already in use with a different configuration".
const streamNameInUseCode = 10058;

/**
 * Creates the stream when missing; when it exists, checks it has the asked
 * settings and changes nothing. Throws IngestStreamError listing every
 * difference, or when the stream cannot be created as asked;
 * NatsUnavailableError when NATS does not answer.
 * @example const { created, info } = await ensureIngestStream(jsm, { ...ingestStreamDefaults, maxAgeMs: 86_400_000 });
 */
export async function ensureIngestStream(jsm: JetStreamManager, settings: IngestStreamSettings): Promise<{ created: boolean; info: StreamInfo }> {
  const want = ingestStreamConfig(settings);
  const existing = await streamInfoOrNull(jsm, want.name);
  if (existing !== null) return { created: false, info: checked(want, existing) };
  try {
    return { created: true, info: await jsm.streams.add(want) };
  } catch (e) {
    // Another process created it between our look and our add, with other settings.
    if (e instanceof JetStreamApiError && e.code === streamNameInUseCode) {
      const raced = await streamInfoOrNull(jsm, want.name);
      if (raced !== null) return { created: false, info: checked(want, raced) };
    }
    if (e instanceof JetStreamApiError) {
      throw new IngestStreamError(want.name, `nats: stream ${want.name} cannot be created as asked: ${e.message}`, [], { cause: e });
    }
    throw asUnavailable(e, `nats: creating stream ${want.name}`);
  }
}

/**
 * The stream config for `settings`: file storage, limits retention (the
 * log is kept for replay and for every consumer, not deleted on ack).
 * Throws IngestStreamError for settings JetStream would refuse.
 * @example ingestStreamConfig(ingestStreamDefaults).max_age // 604800000000000
 */
export function ingestStreamConfig(settings: IngestStreamSettings): IngestStreamConfig {
  const { name, subjects, duplicateWindowMs, maxAgeMs } = settings;
  const refuse = (why: string) => new IngestStreamError(name, `nats: stream ${name} cannot be created as asked: ${why}`);
  if (subjects.length === 0) throw refuse("no subjects");
  if (!Number.isSafeInteger(maxAgeMs) || maxAgeMs < 0) throw refuse(`max_age ${maxAgeMs} ms is not a whole number ≥ 0`);
  if (!Number.isSafeInteger(duplicateWindowMs) || duplicateWindowMs < 1) throw refuse(`duplicate_window ${duplicateWindowMs} ms is not a whole number ≥ 1`);
  if (maxAgeMs > 0 && duplicateWindowMs > maxAgeMs) {
    throw refuse(`duplicate_window ${durationText(nanos(duplicateWindowMs))} is longer than max_age ${durationText(nanos(maxAgeMs))}`);
  }
  return {
    name, subjects: [...subjects], storage: StorageType.File, retention: RetentionPolicy.Limits,
    max_age: nanos(maxAgeMs), duplicate_window: nanos(duplicateWindowMs),
  };
}

// Each setting weir asks for, as a person writes it. The texts are exact (a
// duration falls back to nanoseconds), so equal texts mean equal settings.
const compared: Array<{ field: keyof IngestStreamConfig; text: (c: IngestStreamConfig) => string }> = [
  { field: "subjects", text: (c) => (c.subjects?.length ? [...c.subjects].sort().join(", ") : "(none)") },
  { field: "storage", text: (c) => c.storage },
  { field: "retention", text: (c) => c.retention },
  { field: "max_age", text: (c) => (c.max_age === 0 ? "unlimited" : durationText(c.max_age)) },
  { field: "duplicate_window", text: (c) => durationText(c.duplicate_window) },
];

/**
 * Every setting weir asks for (`want`) that the stream as it is (`have`,
 * e.g. StreamInfo.config) does not have; empty when it fits. Subjects
 * compare as a set. Settings weir does not ask for (replicas, limits on
 * size) are the operator's and not compared.
 * @example streamDifferences(want, info.config) // [{ field: "max_age", have: "1h", want: "7d" }]
 */
export function streamDifferences(want: IngestStreamConfig, have: IngestStreamConfig): StreamDifference[] {
  const out: StreamDifference[] = [];
  for (const { field, text } of compared) {
    const w = text(want);
    const h = text(have);
    if (w !== h) out.push({ field, have: h, want: w });
  }
  return out;
}

/**
 * A duration in nanoseconds in the largest unit that divides it (d, h, m,
 * s, ms; else ns), as weir's durations are written.
 * @example durationText(nanos(90_000)) // "90s"
 */
export function durationText(ns: number): string {
  if (ns === 0) return "0s";
  if (ns % 1e6 !== 0) return `${ns}ns`;
  const ms = ns / 1e6;
  for (const [unit, unitMs] of durationUnits) if (ms % unitMs === 0) return `${ms / unitMs}${unit}`;
  return `${ms}ms`;
}

const durationUnits: Array<[string, number]> = [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1_000]];

/** The stream's info, or null when it does not exist. */
async function streamInfoOrNull(jsm: JetStreamManager, name: string): Promise<StreamInfo | null> {
  try {
    return await jsm.streams.info(name);
  } catch (e) {
    if (e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamNotFound) return null;
    throw asUnavailable(e, `nats: stream info ${name}`);
  }
}

/** `info` when its stream has the settings of `want`, else the error that lists what differs. */
function checked(want: IngestStreamConfig, info: StreamInfo): StreamInfo {
  const differences = streamDifferences(want, info.config);
  if (differences.length === 0) return info;
  const listed = differences.map((d) => `${d.field}: have ${d.have}, want ${d.want}`).join("; ");
  throw new IngestStreamError(
    want.name,
    `nats: stream ${want.name} exists with other settings (${listed}); weir changes no existing stream: ` +
      `edit or delete it (nats stream edit / nats stream rm ${want.name}), or give weir its settings`,
    differences,
  );
}
