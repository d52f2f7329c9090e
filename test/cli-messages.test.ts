/**
 * Operating errors reach a person as a message and what to do, with an exit
 * status, never as a stack: checked on the mapping itself and on a real
 * `bun src/main.ts` whose raw log holds a record weir did not write.
 */
import { describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IngestRecordError, ingestRecordFormat } from "../src/actors/ingest-record.ts";
import { cliMessageOf } from "../src/cli-messages.ts";
import { ConfigError } from "../src/config.ts";
import { OverloadedError } from "../src/engine/engine.ts";
import { StoreError } from "../src/storage/db.ts";
import { RawLog } from "../src/storage/rawlog.ts";

describe("cli messages", () => {
  test("cli messages - each operating error maps to its lines and exit status; a programmer error does not map", () => {
    expect(cliMessageOf(new ConfigError("WEIR_PORT: must be a whole number"))).toEqual({ lines: ["WEIR_PORT: must be a whole number"], exitCode: 2 });
    expect(cliMessageOf(new StoreError("store x: file is not a database"))).toEqual({
      lines: ["store x: file is not a database", "'bun run weir rebuild' moves the store aside and rebuilds it from the raw log"], exitCode: 1,
    });
    expect(cliMessageOf(new IngestRecordError("raw log: not a version-1 ingest record"))!.lines[1]).toMatch(/^'bun run weir verify'/);
    expect(cliMessageOf(new OverloadedError("partition 0 queue full"))).toEqual({ lines: ["partition 0 queue full"], exitCode: 1 });
    expect(cliMessageOf(new Error("assertion failed"))).toBeNull();
  });

  test("cli messages - a raw-log record weir did not write stops start-up with a message, exit 1, no stack", async () => {
    const dir = mkdtempSync(join(tmpdir(), "weir-test-"));
    try {
      const log = new RawLog(join(dir, "raw"), { profile: "fast" });
      log.append(ingestRecordFormat, Date.now(), encode({ v: 9 })); // a framed, checksummed record of another version
      log.close();
      const p = Bun.spawn(["bun", join(import.meta.dir, "../src/main.ts")], {
        env: { ...process.env, WEIR_PORT: "0", WEIR_DATA_DIR: dir, WEIR_LOG_LEVEL: "error" }, stdout: "ignore", stderr: "pipe",
      });
      const [code, stderr] = await Promise.all([p.exited, new Response(p.stderr).text()]);
      expect(code).toBe(1);
      expect(stderr).toContain("weir: raw log: not a version-1 or version-2 ingest record");
      expect(stderr).toContain("weir: 'bun run weir verify'");
      expect(stderr).not.toMatch(/^\s+at /m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
