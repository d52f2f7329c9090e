/**
 * The one-file executable (issue 18, item 7): built by scripts/build-exe.ts
 * into a temporary directory, copied alone into an empty one (no
 * node_modules, no web/ beside it), started on port 0 (its URL read from
 * the "weir listening" log line), fed events, read back, and stopped.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { waitFor } from "./helpers/wait.ts";

const root = join(import.meta.dir, "..");
let buildDir = "";
let runDir = "";
let proc: Subprocess<"ignore", "ignore", "pipe"> | undefined;
let url = "";

/** Reads the child's stderr until the log line that names its URL. */
async function listeningUrl(stderr: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of stderr) {
    text += decoder.decode(chunk, { stream: true });
    const m = /"msg":"weir listening","url":"([^"]+)"/.exec(text);
    if (m) return m[1];
  }
  throw new Error(`weir exited before listening: ${text.slice(-2000)}`);
}

beforeAll(async () => {
  buildDir = mkdtempSync(join(tmpdir(), "weir-exe-build-"));
  runDir = mkdtempSync(join(tmpdir(), "weir-exe-run-"));
  const build = Bun.spawnSync(["bun", join(root, "scripts/build-exe.ts"), join(buildDir, "weir")], { cwd: root, stderr: "pipe" });
  expect(build.exitCode).toBe(0);
  copyFileSync(join(buildDir, "weir"), join(runDir, "weir"));
  Bun.spawnSync(["chmod", "+x", join(runDir, "weir")]);
  proc = Bun.spawn([join(runDir, "weir")], {
    cwd: runDir,
    env: { PATH: process.env.PATH ?? "", WEIR_PORT: "0", WEIR_DATA_DIR: join(runDir, "data"), WEIR_PARTITIONS: "2" },
    stdin: "ignore", stdout: "ignore", stderr: "pipe",
  });
  url = await listeningUrl(proc.stderr);
  await waitFor(async () => (await fetch(`${url}/ready`)).status === 200, 20_000, "the executable to be ready");
}, 120_000);

afterAll(async () => {
  proc?.kill("SIGTERM");
  await proc?.exited;
  for (const d of [buildDir, runDir]) if (d) rmSync(d, { recursive: true, force: true });
});

describe("executable", () => {
  test("executable - runs alone: nothing but itself (and its data) in its directory", () => {
    expect(readdirSync(runDir).sort()).toEqual(["data", "weir"]);
  });

  test("executable - ingests and reads back an exact window", async () => {
    const t0 = Math.floor(Date.now() / 10_000) * 10_000 - 60_000;
    const events = [1, 2, 3].map((v, i) => ({ name: "exe.check", value: v, ts: t0 + i * 1000 }));
    events.push({ name: "exe.check", value: 10, ts: t0 + 20_000 }); // moves the series' watermark past the first window
    const res = await fetch(`${url}/api/v1/events`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(events) });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ accepted: 4, rejected: 0, errors: [] });
    const read = async () => (await (await fetch(`${url}/api/v1/windows?series=exe.check&window=10s`)).json()) as { windows: { start: number; count: number; sum: number }[] };
    await waitFor(async () => (await read()).windows.length >= 1, 10_000, "the first window");
    const first = (await read()).windows[0];
    expect({ start: first.start, count: first.count, sum: first.sum }).toEqual({ start: t0, count: 3, sum: 6 });
  });

  test("executable - serves the dashboard and uPlot from inside itself", async () => {
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<html");
    const uplot = await fetch(`${url}/vendor/uPlot.esm.js`);
    expect(uplot.status).toBe(200);
    expect(uplot.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect((await uplot.text()).length).toBeGreaterThan(10_000);
  });

  test("executable - SQL over DuckDB works inside it (the embedded libduckdb)", async () => {
    const res = await fetch(`${url}/api/v1/query`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sql: "SELECT 42 AS x" }) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ columns: ["x"], rows: [[42]], truncated: false });
  });
});
