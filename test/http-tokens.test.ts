/**
 * Tokens under attack (issue 19 item 8), over real HTTP: failed attempts
 * limited per client address (429 + Retry-After, the window then passes),
 * a stranger gets 401 before 404 on routes that do not exist, and no token
 * ever reaches the log, whether sent as a header or as ?token=.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config.ts";
import { limits } from "../src/runtime/limits.ts";
import { createLog } from "../src/runtime/log.ts";
import { startWeir, type Weir } from "../src/server.ts";
import { AuthFailures } from "../src/http/auth-failures.ts";

const ingest = "secret-ingest-4d1f9a";
const read = "secret-read-77c2e0";
const admin = "secret-admin-a93b51";

describe("http - tokens", () => {
  let w: Weir;
  let dir: string;
  const logged: string[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "weir-tokens-"));
    const cfg = loadConfig({ WEIR_PORT: "0", WEIR_DATA_DIR: dir, WEIR_PARTITIONS: "1", WEIR_TOKENS: `${ingest}:ingest,${read}:read,${admin}:admin`, WEIR_LAKE: "0" });
    w = await startWeir(cfg, createLog("debug", {}, (line) => void logged.push(line)));
  });
  afterAll(async () => {
    await w?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const get = (path: string, token?: string) => fetch(`${w.url}${path}`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });

  test("http - a route that does not exist: 401 to a stranger (no token, or an unknown one), 404 to a token holder", async () => {
    for (const path of ["/api/v1/nope", "/nowhere", "/api/v2/series"]) {
      const stranger = await get(path);
      expect([path, stranger.status, await stranger.json()]).toEqual([path, 401, { error: "authorization: bearer token required" }]);
      expect((await get(path, "guess")).status).toBe(401);
      const known = await get(path, read);
      expect([path, known.status]).toEqual([path, 404]);
    }
    const post = await fetch(`${w.url}/api/v1/nope`, { method: "POST", body: "{}" });
    expect(post.status).toBe(401);
  });

  test("http - no token reaches the log: sent as a header or as ?token=, right or wrong, on good and bad requests", async () => {
    await get("/api/v1/series", read);
    await get("/api/v1/series", `${admin}x`);
    await fetch(`${w.url}/api/v1/stream?topic=nonsense&token=${read}`);
    await fetch(`${w.url}/api/v1/events?token=${ingest}`, { method: "POST", body: "{not json", headers: { "content-type": "application/json" } });
    await fetch(`${w.url}/api/v1/events`, { method: "POST", body: JSON.stringify({ name: "tok.test", value: 1 }), headers: { "content-type": "application/json", authorization: `Bearer ${ingest}` } });
    await fetch(`${w.url}/api/v1/rules/x?token=${admin}`, { method: "PUT", body: "{", headers: { "content-type": "application/json" } });
    expect(logged.length).toBeGreaterThan(0); // the log was captured
    const leaks = logged.filter((l) => [ingest, read, admin].some((t) => l.includes(t)));
    expect(leaks).toEqual([]);
  });

  // Last: it blocks this test process's address for the rest of the window.
  test("http - failed attempts from one address: past the bound 429 with Retry-After, even for a right token, until the window ends", async () => {
    let refused: Response | undefined;
    let failures = 0;
    for (let i = 0; i < limits.authFailuresPerWindowMax * 2 && refused === undefined; i++) {
      const r = await get("/api/v1/series", `wrong-${i}`);
      if (r.status === 429) refused = r;
      else {
        expect(r.status).toBe(401);
        failures++;
      }
    }
    // The earlier tests' strangers count too: the first 429 comes once the window holds the bound.
    expect(failures).toBeLessThanOrEqual(limits.authFailuresPerWindowMax);
    expect([refused?.status, await refused?.json()]).toEqual([429, { error: "authorization: too many failed attempts from this address; try again later" }]);
    expect(Number(refused?.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await get("/api/v1/series", read)).status).toBe(429); // the address, not the token, is held back
    expect((await get("/health")).status).toBe(200); // what needs no token is unaffected
  });
});

describe("http - auth failure counting", () => {
  test("auth - counts per address in a window, blocks past the bound until the window ends, forgets the oldest address past its bound", () => {
    const f = new AuthFailures(3, 60_000, 2);
    for (let i = 0; i < 3; i++) f.fail("a", 1_000 + i);
    expect([f.blockedFor("a", 2_000), f.blockedFor("b", 2_000)]).toEqual([59, 0]);
    expect(f.blockedFor("a", 61_000)).toBe(0); // the window has passed
    f.fail("a", 61_000); // a new window
    expect(f.blockedFor("a", 61_001)).toBe(0);
    f.fail("b", 61_002);
    f.fail("c", 61_003); // a third address: the oldest (a) is forgotten
    expect(f.size).toBe(2);
    for (let i = 0; i < 3; i++) f.fail("c", 61_004);
    expect(f.blockedFor("c", 61_005)).toBe(60);
  });
});
