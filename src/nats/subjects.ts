/**
 * The subjects weir uses on NATS (API.md "NATS"). Producers publish to
 * `weir.ingest.<anything>`: one or more tokens of their choosing (a device,
 * a site), which weir keeps only as a hint; events are routed by their
 * series, not by the subject.
 *
 * @example
 *   ingestSubject("site.north");              // "weir.ingest.site.north"
 *   ingestSubjectTail("weir.ingest.dev-1");   // "dev-1"
 *   ingestSubjectTail("weir.out.alerts");     // null
 */
import { strict as assert } from "node:assert";

const ingestPrefix = "weir.ingest.";

/** The subject filter of stream WEIR_INGEST: every ingest subject. */
export const ingestSubjectFilter = `${ingestPrefix}>`;

// A token of a subject one can publish to: not empty, no wildcard, no white space.
const tokenRe = /^[^\s.*>]+$/;

/**
 * The ingest subject for `tail` (dot-separated tokens). A bad tail is a
 * programmer error: the tail is weir's or a harness's choice, never a
 * client's input.
 * @example ingestSubject("dev-1") // "weir.ingest.dev-1"
 */
export function ingestSubject(tail: string): string {
  assert(tail.split(".").every((t) => tokenRe.test(t)), `ingest subject tail "${tail}": tokens must be non-empty, without white space or wildcards`);
  return ingestPrefix + tail;
}

/**
 * What follows `weir.ingest.` in a subject, or null when the subject is not
 * an ingest subject.
 * @example ingestSubjectTail("weir.ingest.a.b") // "a.b"
 */
export function ingestSubjectTail(subject: string): string | null {
  if (!subject.startsWith(ingestPrefix) || subject.length === ingestPrefix.length) return null;
  return subject.slice(ingestPrefix.length);
}

const partitionPrefix = "weir.part.";

/** Cluster mode: the subject filter of stream WEIR_PARTS, each partition's share of the messages. */
export const partitionSubjectFilter = `${partitionPrefix}>`;

/** Cluster mode: partition p's subject in WEIR_PARTS. @example partitionSubject(3) // "weir.part.3" */
export function partitionSubject(partition: number): string {
  assert(Number.isInteger(partition) && partition >= 0, `partition ${partition}`);
  return partitionPrefix + partition;
}
