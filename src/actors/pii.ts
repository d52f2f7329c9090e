/**
 * Sensitive values (API.md "The lake … sensitivity"; config `pii:`): tag and
 * prop values under a listed key, and any part of a tag or prop value a
 * detector recognises (e-mail, card number passing Luhn, IPv4/IPv6, phone),
 * are replaced before the event goes anywhere: `hash` gives a keyed
 * HMAC-SHA256 token `pii:` + 16 hex (the same input always gives the same
 * token, so joins, group-bys and counts still work, and without the key it
 * cannot be reversed by hashing guesses); `mask` gives `***`, keeping an
 * e-mail's domain (`***@example.com`) because the domain is what analysts
 * group by and it names no person.
 *
 * A replaced value is never replaced again: the tokens match no detector,
 * and a value that already is a token is kept (NATS mode publishes events
 * that were scrubbed, and the consumer scrubs them again).
 *
 * Pure apart from the HMAC; the caller decides where it runs (parseEvents,
 * the one place every input path shares).
 *
 * @example
 *   const pii = new PiiScrubber({ keys: ["email"], detect: ["ip"], mode: "hash", key: "k".repeat(32) });
 *   pii.value("email", "bob@example.com")  // "pii:3f0c…" (16 hex)
 *   pii.value("note", "from 10.1.2.3")     // "from pii:…"
 */
import { createHmac } from "node:crypto";
import { isIPv6 } from "node:net";
import { limits } from "../runtime/limits.ts";

export const piiDetectors = ["email", "card", "ip", "phone"] as const;
export type PiiDetector = (typeof piiDetectors)[number];

/** The config's `pii:` with the key from WEIR_PII_KEY: plain data, so it crosses to the ingest threads. */
export interface PiiSettings {
  keys: string[];
  detect: PiiDetector[];
  mode: "hash" | "mask";
  /** The HMAC key (WEIR_PII_KEY); empty in mask mode. */
  key: string;
}

/** What mask mode writes in place of a value. */
export const piiMask = "***";
const tokenPattern = /^pii:[0-9a-f]{16}$/;

// Candidates are found by these, then checked (Luhn, isIPv6, digit counts). Each refuses a match glued to a
// word character or a separator on either side, so ids such as "order-4111111111111111" or "v1.2.3.4.5" are
// not taken apart; and none can match inside a token "pii:<hex>" (its hex follows a colon).
const emailPattern = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}/g;
const cardPattern = /(?<![\w:.+-])[2-6]\d(?:[ -]?\d){11,17}(?![\w.-])/g;
const ipv4Pattern = /(?<![\w.:-])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w.-])/g;
const ipv6Pattern = /(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:.])/g;
// E.164 (+ and 7–15 digits, optionally grouped), or a national number written in groups: "(555) 123-4567",
// "555-123-4567", "020 7946 0958". A bare run of digits is not a phone: it is far more often an id or a count.
const phonePattern = /(?<![\w+])(?:\+\d(?:[ .-]?\(?\d+\)?){2,7}|\(\d{2,5}\) ?\d{3,4}[ .-]?\d{3,4}|\d{2,5}[ .-]\d{3,4}[ .-]\d{3,4})(?![\w-])/g;

/** The Luhn checksum of a string of digits. */
export function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = digits.length - 1, even = false; i >= 0; i--, even = !even) {
    let d = digits.charCodeAt(i) - 48;
    if (even && (d *= 2) > 9) d -= 9;
    sum += d;
  }
  return sum % 10 === 0;
}

function digitsOf(s: string): string {
  return s.replace(/\D/g, "");
}

export class PiiScrubber {
  private readonly keys: Set<string>;
  private readonly on: Record<PiiDetector, boolean>;
  /** Whether any detector is on: with keys alone, values under other keys are not even scanned. */
  private readonly detecting: boolean;
  /** Tokens of values seen recently: a value repeated in many events (an e-mail, an IP) is hashed once. Cleared when full. */
  private readonly cache = new Map<string, string>();
  /** Listed keys written as `key=value` or `"key": "value"` in text (a dead-lettered line or preview). */
  private readonly keyedText: RegExp | null;

  constructor(private readonly s: PiiSettings) {
    if (s.mode === "hash" && s.key.length === 0) throw new Error("pii hash mode needs a key"); // programmer error: config.ts checks it
    this.keys = new Set(s.keys);
    this.on = { email: false, card: false, ip: false, phone: false };
    for (const d of s.detect) this.on[d] = true;
    this.detecting = s.detect.length > 0;
    const alternatives = s.keys.map((k) => k.replace(/[^A-Za-z0-9_]/g, (c) => `\\${c}`)).join("|");
    this.keyedText = s.keys.length === 0 ? null : new RegExp(`(?<![\\w])((?:${alternatives})"?\\s*[=:]\\s*"?)([^",\\s}]+)`, "g");
  }

  /** The token or mask of a whole value (listed keys). */
  token(value: string): string {
    if (this.s.mode === "mask") return piiMask;
    if (tokenPattern.test(value)) return value;
    let t = this.cache.get(value);
    if (t === undefined) {
      t = "pii:" + createHmac("sha256", this.s.key).update(value).digest("hex").slice(0, 16);
      if (this.cache.size >= limits.piiTokenCacheMax) this.cache.clear();
      this.cache.set(value, t);
    }
    return t;
  }

  /** A tag or prop value under `key`: whole when the key is listed, else with what the detectors find replaced. */
  value(key: string, value: string): string {
    return this.keys.has(key) ? this.token(value) : this.detect(value);
  }

  /**
   * `value` with every part a detector recognises replaced. Cheap for the
   * common value: the detectors run only when a quick scan finds the
   * characters their matches need (an @, a dot or colon, enough digits).
   */
  detect(value: string): string {
    if (!this.detecting) return value;
    let at = false, dot = false, colon = false, digits = 0;
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c >= 48 && c <= 57) digits++;
      else if (c === 64) at = true;
      else if (c === 46) dot = true;
      else if (c === 58) colon = true;
    }
    let v = value;
    if (this.on.email && at) v = v.replace(emailPattern, (m) => this.s.mode === "mask" ? piiMask + m.slice(m.indexOf("@")) : this.token(m));
    if (this.on.card && digits >= 13) v = v.replace(cardPattern, (m) => isCard(m) ? this.token(m) : m);
    if (this.on.ip && dot && digits >= 4) v = v.replace(ipv4Pattern, (m) => this.token(m));
    if (this.on.ip && colon) v = v.replace(ipv6Pattern, (m) => isIPv6(m) && /[0-9A-Fa-f]/.test(m) ? this.token(m) : m);
    if (this.on.phone && digits >= 7) v = v.replace(phonePattern, (m) => isPhone(m) ? this.token(m) : m);
    return v;
  }

  /** Tags with their values scrubbed: the same object when nothing changed (most events), else a copy. */
  tags(tags: Record<string, string>): Record<string, string> {
    let out: Record<string, string> | null = null;
    for (const k in tags) {
      const v = tags[k];
      const s = this.value(k, v);
      if (s !== v) (out ??= { ...tags })[k] = s;
    }
    return out ?? tags;
  }

  /** Props (any JSON) with string values scrubbed at every depth, a listed key's value whole; a copy only where something changed. */
  props(props: Record<string, unknown>): Record<string, unknown> {
    return this.any(props, null) as Record<string, unknown>;
  }

  /**
   * Any value (a rejected event as received, a line of text): strings
   * scrubbed at every depth, listed keys' values replaced whole, listed
   * keys written in text (`email=bob`, `"email":"bob"`) too. For the
   * dead-letter list, which keeps what was refused.
   */
  any(v: unknown, key: string | null = null): unknown {
    if (typeof v === "string") return key !== null && this.keys.has(key) ? this.token(v) : this.text(v);
    if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") {
      return key !== null && this.keys.has(key) ? this.token(String(v)) : typeof v === "bigint" ? this.text(String(v)) : v;
    }
    if (Array.isArray(v)) {
      let out: unknown[] | null = null;
      v.forEach((x, i) => {
        const s = this.any(x, key);
        if (s !== x) (out ??= [...v])[i] = s;
      });
      return out ?? v;
    }
    if (typeof v === "object" && v !== null && !(v instanceof Uint8Array)) {
      let out: Record<string, unknown> | null = null;
      const o = v as Record<string, unknown>;
      for (const k in o) { // for-in, not Object.entries: no array per object on the ingest path
        const x = o[k];
        const s = this.any(x, k);
        if (s !== x) (out ??= { ...(v as Record<string, unknown>) })[k] = s;
      }
      return out ?? v;
    }
    return v instanceof Uint8Array ? "(bytes withheld: pii is configured)" : v;
  }

  /** Free text: listed keys' values and whatever the detectors find, replaced. */
  text(s: string): string {
    const keyed = this.keyedText === null ? s : s.replace(this.keyedText, (_m, head: string, val: string) => head + this.token(val));
    return this.detect(keyed);
  }
}

/** 13–19 digits (spaces or dashes between) passing Luhn. */
function isCard(m: string): boolean {
  const d = digitsOf(m);
  return d.length >= 13 && d.length <= 19 && luhn(d);
}

/** 7–15 digits (E.164's maximum), not all the same digit ("000-000-0000" is a placeholder, not a number). */
function isPhone(m: string): boolean {
  const d = digitsOf(m);
  return d.length >= 7 && d.length <= 15 && !/^(\d)\1*$/.test(d);
}

const scrubbers = new WeakMap<PiiSettings, PiiScrubber>();

/** The scrubber of these settings (one per settings object and thread), or null when pii is not configured. */
export function scrubberOf(s: PiiSettings | undefined): PiiScrubber | null {
  if (s === undefined) return null;
  let p = scrubbers.get(s);
  if (p === undefined) scrubbers.set(s, p = new PiiScrubber(s));
  return p;
}
