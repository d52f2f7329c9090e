import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig, unknownSettings } from "../src/config.ts";

describe("config - WEIR_* validated at start-up", () => {
  test("config - defaults match API.md", () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080); // the documented default, not a port a test listens on
    expect(c).toMatchObject({ host: "127.0.0.1", dataDir: "./data", partitions: 2, latenessMs: 2000, maxBodyBytes: 8 * 2 ** 20, maxSeries: 100_000, maxEventAgeMs: 7 * 86400_000, maxFutureSkewMs: 300_000, queryTimeoutMs: 5000, demo: false, tokens: [] });
    expect(c.windows).toEqual([{ label: "10s", sizeMs: 10_000, slideMs: 10_000 }, { label: "60s/10s", sizeMs: 60_000, slideMs: 10_000 }]);
  });

  test("config - values parse: sizes, durations, tokens", () => {
    const c = loadConfig({ WEIR_MAX_BODY: "1MiB", WEIR_LATENESS: "500ms", WEIR_TOKENS: "abcdefgh:ingest, ijklmnop:admin", WEIR_DEMO: "1", WEIR_PORT: "0" });
    expect(c).toMatchObject({ maxBodyBytes: 2 ** 20, latenessMs: 500, demo: true, port: 0, tokens: [{ token: "abcdefgh", role: "ingest" }, { token: "ijklmnop", role: "admin" }] });
  });

  const bad: Array<[Record<string, string>, string]> = [
    [{ WEIR_PORT: "99999" }, "config WEIR_PORT: "],
    [{ WEIR_PORT: "abc" }, "config WEIR_PORT: must be a whole number"],
    [{ WEIR_PARTITIONS: "0" }, "config WEIR_PARTITIONS: "],
    [{ WEIR_WINDOWS: "7x" }, "config WEIR_WINDOWS: "],
    [{ WEIR_LATENESS: "soon" }, "config WEIR_LATENESS: "],
    [{ WEIR_MAX_BODY: "lots" }, "config WEIR_MAX_BODY: "],
    [{ WEIR_TOKENS: "short:ingest" }, "config WEIR_TOKENS: "],
    [{ WEIR_LOG_LEVEL: "loud" }, "config WEIR_LOG_LEVEL: "],
    [{ WEIR_HOST: "0.0.0.0" }, 'config WEIR_HOST: "0.0.0.0" is not loopback; set WEIR_TOKENS to serve beyond this machine'],
  ];
  for (const [env, message] of bad) {
    test(`config - rejects ${JSON.stringify(env)} naming the key`, () => {
      expect(() => loadConfig(env)).toThrow(ConfigError);
      expect(() => loadConfig(env)).toThrow(message);
    });
  }

  test("config - a non-loopback host is allowed once tokens are set", () => {
    expect(loadConfig({ WEIR_HOST: "0.0.0.0", WEIR_TOKENS: "abcdefgh:admin" }).host).toBe("0.0.0.0");
  });

  test("config - file settings apply, environment wins, unknown file keys are refused", () => {
    const dir = mkdtempSync(join(tmpdir(), "weir-cfg-"));
    const file = join(dir, "weir.json");
    writeFileSync(file, JSON.stringify({ partitions: 4, lateness: "1s" }));
    expect(loadConfig({ WEIR_CONFIG: file, WEIR_PARTITIONS: "3" })).toMatchObject({ partitions: 3, latenessMs: 1000 });
    writeFileSync(file, JSON.stringify({ partitons: 4 }));
    expect(() => loadConfig({ WEIR_CONFIG: file })).toThrow(`config ${file}: unknown key "partitons" (did you mean "partitions"?)`);
    expect(() => loadConfig({ WEIR_CONFIG: join(dir, "missing.json") })).toThrow("config WEIR_CONFIG: cannot read");
  });

  test("config - a .yaml or .yml file is read as YAML, with the same keys and checks; a malformed one or a list is refused naming the file", () => {
    const dir = mkdtempSync(join(tmpdir(), "weir-cfg-"));
    const file = join(dir, "weir.yaml");
    writeFileSync(file, "# the demo's settings\npartitions: 4\nlateness: 1s\nwindows: 10s,60s/10s\n");
    expect(loadConfig({ WEIR_CONFIG: file })).toMatchObject({ partitions: 4, latenessMs: 1000, windowsText: "10s,60s/10s" });
    const yml = join(dir, "weir.yml");
    writeFileSync(yml, "partitons: 4\n");
    expect(() => loadConfig({ WEIR_CONFIG: yml })).toThrow(`config ${yml}: unknown key "partitons" (did you mean "partitions"?)`);
    writeFileSync(yml, "partitions: 0\n");
    expect(() => loadConfig({ WEIR_CONFIG: yml })).toThrow("config WEIR_PARTITIONS: must be ≥ 1");
    writeFileSync(yml, "- partitions: 4\n");
    expect(() => loadConfig({ WEIR_CONFIG: yml })).toThrow(`config WEIR_CONFIG: "${yml}" must hold a YAML mapping`);
    writeFileSync(yml, "partitions: [4\n");
    expect(() => loadConfig({ WEIR_CONFIG: yml })).toThrow(`config WEIR_CONFIG: cannot read "${yml}"`);
  });

  test("config - WEIR_CORS_ORIGINS: exact origins, none by default; a path, a trailing slash or another scheme is refused naming it", () => {
    expect(loadConfig({}).corsOrigins).toEqual([]);
    expect(loadConfig({ WEIR_CORS_ORIGINS: "https://shop.example, http://localhost:3000" }).corsOrigins).toEqual(["https://shop.example", "http://localhost:3000"]);
    for (const bad of ["https://shop.example/", "https://shop.example/app", "ftp://x.example", "shop.example"]) {
      expect(() => loadConfig({ WEIR_CORS_ORIGINS: bad })).toThrow(`config WEIR_CORS_ORIGINS: "${bad}" is not an origin (scheme://host[:port], no path or trailing slash)`);
    }
  });
});

describe("config - unknown settings", () => {
  test("config - a WEIR_* variable that is no setting is named, with the setting it most likely meant; the clients' variables and others are not", () => {
    const env = { WEIR_DATA: "/d", WEIR_TOKNS: "x", WEIR_FOO_BAR_BAZ: "1", WEIR_DIR: "/x", WEIR_PORT: "0", WEIR_URL: "http://h", WEIR_TOKEN: "t", PATH: "/bin" };
    expect(unknownSettings(env)).toEqual([
      { key: "WEIR_DATA", meant: "WEIR_DATA_DIR" },
      { key: "WEIR_DIR", meant: null },
      { key: "WEIR_FOO_BAR_BAZ", meant: null },
      { key: "WEIR_TOKNS", meant: "WEIR_TOKENS" },
    ]);
    expect(unknownSettings({ WEIR_PORT: "0", WEIR_LAKE_DEFER: "0" })).toEqual([]);
  });
});
