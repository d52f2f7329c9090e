import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClientEvent } from "../src/client/emit.ts";
import { reply, startReceiver, type Receiver } from "./helpers/receiver.ts";

const clientPath = join(import.meta.dir, "../src/client/emit.ts");
const nodePath = Bun.which("node");

/** A producer that emits three events and then simply ends: no flush(), no close(). */
const producer = (importPath: string) => `
import { createClient } from ${JSON.stringify(importPath)};
const c = createClient({ url: process.argv[2], flushIntervalMs: 60_000 });
c.emit("exit.a", 1);
c.emit("exit.b", 2, { k: "v" });
c.emit("exit.c", 3);
`;

describe("client - flush on exit, in Bun and in Node", () => {
  let dir: string;
  let r: Receiver;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "weir-client-"));
    r = startReceiver((req) => reply(202, { accepted: (JSON.parse(req.body) as unknown[]).length, rejected: 0, errors: [] }));
    const built = await Bun.build({ entrypoints: [clientPath], target: "node", format: "esm", outdir: dir, naming: "emit.mjs" });
    expect(built.success).toBe(true);
  });
  afterAll(async () => {
    await r.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(cmd: string[]): Promise<ClientEvent[]> {
    const before = r.received.length;
    const p = Bun.spawn([...cmd, r.url], { stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => p.kill(), 10_000); // a hung child fails the test instead of hanging it
    const code = await p.exited;
    clearTimeout(timer);
    expect({ code, stderr: await new Response(p.stderr).text() }).toEqual({ code: 0, stderr: "" });
    return r.received.slice(before).flatMap((q) => JSON.parse(q.body) as ClientEvent[]);
  }

  test("client - a Bun process that ends without flush() still sends what it emitted", async () => {
    writeFileSync(join(dir, "bun-producer.ts"), producer(clientPath));
    const got = await run([process.execPath, join(dir, "bun-producer.ts")]);
    expect(got.map((e) => [e.name, e.value, e.tags])).toEqual([["exit.a", 1, undefined], ["exit.b", 2, { k: "v" }], ["exit.c", 3, undefined]]);
  });

  test.skipIf(nodePath === null)("client - a Node process (plain fetch) that ends without flush() still sends what it emitted", async () => {
    writeFileSync(join(dir, "node-producer.mjs"), producer("./emit.mjs"));
    const got = await run([nodePath!, join(dir, "node-producer.mjs")]);
    expect(got.map((e) => [e.name, e.value])).toEqual([["exit.a", 1], ["exit.b", 2], ["exit.c", 3]]);
  });

  test("client - builds for a browser with no Node module and no weir module in it", async () => {
    const built = await Bun.build({ entrypoints: [clientPath], target: "browser", format: "esm", outdir: join(dir, "web") });
    expect(built.success).toBe(true);
    const code = readFileSync(built.outputs[0].path, "utf8");
    expect(code).not.toMatch(/from\s*["']node:|require\(/);
    expect(code).toContain("createClient");
  });
});
