import { describe, expect, test } from "bun:test";
import { Breaker } from "../src/actions/breaker.ts";

describe("actions - circuit breaker logic", () => {
  test("actions - breaker opens after N consecutive failures; a success between resets the count", () => {
    const b = new Breaker(3, 1000);
    b.failure(0);
    b.failure(0);
    b.success();
    b.failure(10);
    b.failure(10);
    expect(b.status()).toEqual({ state: "closed", consecutiveFailures: 2, openUntil: null, opens: 0 });
    expect(b.waitMs(10)).toBe(0);
    b.failure(20);
    expect(b.status()).toEqual({ state: "open", consecutiveFailures: 3, openUntil: 1020, opens: 1 });
  });

  test("actions - breaker: open waits openMs, then half-open lets one probe through; success closes it", () => {
    const b = new Breaker(1, 1000);
    b.failure(5000);
    expect(b.waitMs(5000)).toBe(1000);
    expect(b.waitMs(5999)).toBe(1);
    expect(b.status().state).toBe("open");
    expect(b.waitMs(6000)).toBe(0);
    expect(b.status()).toEqual({ state: "half_open", consecutiveFailures: 1, openUntil: null, opens: 1 });
    b.success();
    expect(b.status()).toEqual({ state: "closed", consecutiveFailures: 0, openUntil: null, opens: 1 });
  });

  test("actions - breaker: a failed probe opens it again for another openMs at once", () => {
    const b = new Breaker(5, 1000);
    for (let i = 0; i < 5; i++) b.failure(0);
    expect(b.waitMs(1000)).toBe(0);
    b.failure(1200);
    expect(b.status()).toEqual({ state: "open", consecutiveFailures: 6, openUntil: 2200, opens: 2 });
    expect(b.waitMs(1200)).toBe(1000);
  });

  test("actions - breaker: bad settings are a programmer error", () => {
    expect(() => new Breaker(0, 1000)).toThrow();
    expect(() => new Breaker(1, -1)).toThrow();
  });
});
