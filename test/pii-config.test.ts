import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config.ts";

const dir = mkdtempSync(join(tmpdir(), "weir-pii-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function withFile(yaml: string, env: Record<string, string> = {}) {
  const path = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, yaml);
  return () => loadConfig({ WEIR_CONFIG: path, ...env });
}

describe("pii config", () => {
  test("pii config - keys, detectors and mode with WEIR_PII_KEY", () => {
    const cfg = withFile("pii:\n  keys: [email]\n  detect: [card, ip]\n", { WEIR_PII_KEY: "k".repeat(16) })();
    expect(cfg.pii).toEqual({ keys: ["email"], detect: ["card", "ip"], mode: "hash", key: "k".repeat(16) });
    expect(loadConfig({}).pii).toBeUndefined();
  });

  test("pii config - hash mode without WEIR_PII_KEY stops start-up naming it; mask mode needs none", () => {
    expect(withFile("pii:\n  keys: [email]\n")).toThrow("config WEIR_PII_KEY: required when pii.mode is hash");
    expect(withFile("pii:\n  keys: [email]\n  mode: mask\n")().pii).toEqual({ keys: ["email"], detect: [], mode: "mask", key: "" });
    expect(withFile("pii:\n  keys: [email]\n", { WEIR_PII_KEY: "short" })).toThrow("WEIR_PII_KEY");
  });

  test("pii config - a bad detector or key is refused naming it", () => {
    expect(withFile("pii:\n  detect: [ssn]\n  mode: mask\n")).toThrow("config pii.detect");
    expect(withFile("pii:\n  keys: [\"a b\"]\n  mode: mask\n")).toThrow("config pii.keys");
    expect(withFile("pii:\n  keys: [email]\n  mode: encrypt\n")).toThrow("config pii.mode");
  });

  test("pii config - tokens take +pii; admin holds it; anything else is refused", () => {
    const cfg = loadConfig({ WEIR_TOKENS: "aaaaaaaa:read+pii,bbbbbbbb:read,cccccccc:admin" });
    expect(cfg.tokens).toEqual([
      { token: "aaaaaaaa", role: "read", pii: true }, { token: "bbbbbbbb", role: "read", pii: false }, { token: "cccccccc", role: "admin", pii: true },
    ]);
    expect(() => loadConfig({ WEIR_TOKENS: "aaaaaaaa:read+admin" })).toThrow("<ingest|read|admin>[+pii]");
    expect(() => loadConfig({ WEIR_TOKENS: "aaaaaaaa:pii" })).toThrow("<ingest|read|admin>[+pii]");
  });
});
