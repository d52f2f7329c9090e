/**
 * Refuses writes before the disk is full rather than after: ingest asks the
 * guard on every request and answers 503 while free space under the data
 * directory is below a reserve, so the raw log never has to find out by
 * ENOSPC. statfs(2) is cached for checkIntervalMs, which makes the per-request
 * call a clock read; once space returns the next check after the interval
 * reports ok again.
 *
 * @example
 *   const guard = new DiskGuard("./data", { reserveBytes: 64 * 1024 * 1024, checkIntervalMs: 1000 });
 *   const disk = guard.check();
 *   if (!disk.ok) throw new HttpError(503, disk.message);
 */
import { strict as assert } from "node:assert";
import { statfsSync } from "node:fs";

export const diskGuardLimits = {
  checkIntervalMsMax: 60_000, // a slower check lets a fast writer fill the reserve unseen
} as const;

/** The two statfs(2) fields the guard reads. */
export interface FsSpace { bavail: number; bsize: number }

export type DiskCheck = { ok: true } | { ok: false; freeBytes: number; reserveBytes: number; message: string };

export interface DiskGuardOptions {
  reserveBytes: number;
  checkIntervalMs: number;
  /** Monotonic milliseconds; tests pass their own clock. */
  now?: () => number;
  statfs?: (dir: string) => FsSpace;
}

const ok: DiskCheck = { ok: true };
const byteUnits = ["B", "KiB", "MiB", "GiB", "TiB"] as const;

export class DiskGuard {
  private readonly now: () => number;
  private readonly statfs: (dir: string) => FsSpace;
  private checkedAtMs = 0;
  private last: DiskCheck | undefined;

  constructor(private readonly dir: string, private readonly opts: DiskGuardOptions) {
    assert(opts.reserveBytes >= 0, "disk reserve must not be negative");
    assert(opts.checkIntervalMs > 0 && opts.checkIntervalMs <= diskGuardLimits.checkIntervalMsMax, "disk check interval out of range");
    this.now = opts.now ?? (() => performance.now());
    this.statfs = opts.statfs ?? statfsSync;
  }

  /**
   * Whether free space is at least the reserve, as of the last statfs, which
   * is at most checkIntervalMs old.
   *
   * @example
   *   guard.check(); // { ok: false, freeBytes: 3250176, reserveBytes: 67108864, message: "disk nearly full: 3.1 MiB free under ./data, reserve 64 MiB" }
   */
  check(): DiskCheck {
    const nowMs = this.now();
    if (this.last !== undefined && nowMs - this.checkedAtMs < this.opts.checkIntervalMs) return this.last;
    this.checkedAtMs = nowMs;
    this.last = this.measure();
    return this.last;
  }

  private measure(): DiskCheck {
    const { reserveBytes } = this.opts;
    let free: number;
    try {
      free = spaceBytes(this.statfs(this.dir));
    } catch (err) {
      // Cannot tell how much space is left: refuse, as a full disk would.
      const reason = (err as { code?: string }).code ?? String(err);
      return { ok: false, freeBytes: 0, reserveBytes, message: `disk check failed under ${this.dir}: ${reason}` };
    }
    if (free >= reserveBytes) return ok;
    const message = `disk nearly full: ${formatBytes(free)} free under ${this.dir}, reserve ${formatBytes(reserveBytes)}`;
    return { ok: false, freeBytes: free, reserveBytes, message };
  }
}

/**
 * Bytes an unprivileged writer may still use on the file system holding `dir`.
 *
 * @example
 *   freeBytes("./data"); // 52428800
 */
export function freeBytes(dir: string): number {
  return spaceBytes(statfsSync(dir));
}

function spaceBytes(fs: FsSpace): number {
  return fs.bavail * fs.bsize;
}

/** `3.1 MiB`, `64 MiB`, `512 B`: binary units, one decimal at most. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < byteUnits.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Math.round(value * 10) / 10} ${byteUnits[unit]}`;
}
