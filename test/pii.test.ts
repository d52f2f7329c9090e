import { describe, expect, test } from "bun:test";
import { luhn, piiMask, PiiScrubber, scrubberOf, type PiiSettings } from "../src/actors/pii.ts";

const key = "test-key-0123456789abcdef";
const all: PiiSettings = { keys: ["email", "user_email"], detect: ["email", "card", "ip", "phone"], mode: "hash", key };
const pii = new PiiScrubber(all);
const token = /^pii:[0-9a-f]{16}$/;

// [value, found by a detector?] — the negative space matters as much: ids, counts, times, versions must pass untouched.
const table: Array<[string, boolean]> = [
  ["bob@example.com", true],
  ["Bob.Smith+tag@mail.example.co.uk", true],
  ["4111111111111111", true], // Visa test number
  ["4111 1111 1111 1111", true],
  ["4111-1111-1111-1111", true],
  ["378282246310005", true], // Amex, 15 digits
  ["6011111111111117", true],
  ["5555555555554444", true],
  ["192.168.1.20", true],
  ["8.8.8.8", true],
  ["2001:db8::1", true],
  ["fe80::1ff:fe23:4567:890a", true],
  ["::ffff:10.0.0.1", true],
  ["+4915112345678", true],
  ["+1 (555) 123-4567", true],
  ["+44 20 7946 0958", true],
  ["(555) 123-4567", true],
  ["555-123-4567", true],
  ["020 7946 0958", true],
  // Not sensitive:
  ["4111111111111112", false], // fails Luhn
  ["1763800000000", false], // an epoch-ms timestamp (13 digits)
  ["1763800000000123", false], // epoch µs
  ["order-4111111111111111", false], // glued to an id
  ["12345678", false], // a count
  ["20240105", false], // a date
  ["2024-01-05", false],
  ["2024-01-05T10:20:30Z", false],
  ["12:30:45", false], // a time
  ["00:1a:2b:3c:4d:5e", false], // a MAC address
  ["2.1.0", false], // a version
  ["v1.2.3.4.5", false],
  ["3.14159", false],
  ["dev-1", false],
  ["page:/checkout", false],
  ["550e8400-e29b-41d4-a716-446655440000", false], // a UUID
  ["000-000-0000", false], // a placeholder
  ["user@localhost", false], // no domain
  ["a@b", false],
  ["1234567890", false], // a bare run of digits: an id, not a phone
  ["999.999.999.999", false], // not an IPv4
  ["sensor.temperature", false],
  ["pii:0123456789abcdef", false], // already a token
  ["pii:4111111111111111", false], // a token that looks like a card
];

describe("pii", () => {
  test.each(table)("pii - detectors: %p found=%p", (value, found) => {
    const out = pii.detect(value);
    if (found) expect(out).toMatch(token);
    else expect(out).toBe(value);
  });

  test("pii - detectors find values inside text and keep the rest", () => {
    const out = pii.detect("mail bob@example.com from 10.1.2.3 now");
    expect(out).toMatch(/^mail pii:[0-9a-f]{16} from pii:[0-9a-f]{16} now$/);
  });

  test("pii - the same input gives the same token; another input or another key another", () => {
    const a = pii.token("bob@example.com");
    expect(a).toMatch(token);
    expect(new PiiScrubber(all).token("bob@example.com")).toBe(a);
    expect(pii.token("alice@example.com")).not.toBe(a);
    expect(new PiiScrubber({ ...all, key: "another-key-0123456789" }).token("bob@example.com")).not.toBe(a);
  });

  test("pii - listed keys are replaced whole, whatever the value", () => {
    expect(pii.value("email", "bob")).toMatch(token);
    expect(pii.value("page", "bob")).toBe("bob");
    expect(pii.tags({ user_email: "x", page: "/a" })).toEqual({ user_email: pii.token("x"), page: "/a" });
  });

  test("pii - tags and props are copied only when something changes", () => {
    const tags = { page: "/a", device: "dev-1" };
    expect(pii.tags(tags)).toBe(tags);
    const props = { fw: "2.1", nested: { n: 3, list: ["a"] } };
    expect(pii.props(props)).toBe(props);
    const input = { fw: "2.1", user: { email: "bob", ips: ["10.0.0.1"] } };
    expect(pii.props(input)).toEqual({ fw: "2.1", user: { email: pii.token("bob"), ips: [pii.token("10.0.0.1")] } });
    expect(input.user.email).toBe("bob"); // the input is not changed
  });

  test("pii - any() scrubs a rejected event: listed keys (numbers too), detectors, text with key=value", () => {
    const ev = { name: 9, tags: { email: "bob" }, props: { user_email: 42, note: "call +4915112345678" } };
    expect(pii.any(ev)).toEqual({ name: 9, tags: { email: pii.token("bob") }, props: { user_email: pii.token("42"), note: `call ${pii.token("+4915112345678")}` } });
    expect(pii.text("cpu,email=bob usage=x")).toBe(`cpu,email=${pii.token("bob")} usage=x`);
    expect(pii.text('{"user_email": "alice", "v": 1}')).toBe(`{"user_email": "${pii.token("alice")}", "v": 1}`);
  });

  test("pii - mask mode writes *** and keeps an e-mail's domain", () => {
    const m = new PiiScrubber({ ...all, mode: "mask", key: "" });
    expect(m.value("email", "bob")).toBe(piiMask);
    expect(m.detect("bob@example.com")).toBe("***@example.com");
    expect(m.detect("4111 1111 1111 1111")).toBe(piiMask);
    expect(m.detect(m.detect("bob@example.com"))).toBe("***@example.com"); // masking twice changes nothing
  });

  test("pii - only the configured detectors run", () => {
    const onlyIp = new PiiScrubber({ keys: [], detect: ["ip"], mode: "hash", key });
    expect(onlyIp.detect("bob@example.com")).toBe("bob@example.com");
    expect(onlyIp.detect("10.0.0.1")).toMatch(token);
  });

  test("pii - luhn", () => {
    expect(luhn("79927398713")).toBe(true);
    expect(luhn("79927398710")).toBe(false);
  });

  test("pii - scrubberOf: null without settings, one scrubber per settings object", () => {
    expect(scrubberOf(undefined)).toBeNull();
    expect(scrubberOf(all)).toBe(scrubberOf(all)!);
  });
});
