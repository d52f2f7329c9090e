/**
 * A real tmpfs of a given size, for tests that fill a disk. Mounting needs
 * root (or CAP_SYS_ADMIN); without it the test fails with that hint, never
 * skips.
 *
 * @example
 *   await withTmpfs("4m", async (dir) => { ...fill dir... });
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function mountTmpfs(size: string): { dir: string; unmount: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "weir-tmpfs-"));
  const mount = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
  if (mount.exitCode !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(
      `mount -t tmpfs failed (exit ${mount.exitCode}: ${mount.stderr.toString().trim()}); ` +
      "this test needs a real tmpfs to fill: run it as root, in a container with CAP_SYS_ADMIN (e.g. --privileged)",
    );
  }
  return {
    dir,
    unmount: () => {
      if (Bun.spawnSync(["umount", dir]).exitCode !== 0) Bun.spawnSync(["umount", "-l", dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Mounts a tmpfs of `size` for `fn` and unmounts it after, whatever `fn` did. */
export function withTmpfs<T>(size: string, fn: (dir: string) => T): T {
  const m = mountTmpfs(size);
  let result: T;
  try {
    result = fn(m.dir);
  } catch (e) {
    m.unmount();
    throw e;
  }
  if (result instanceof Promise) return result.finally(m.unmount) as T;
  m.unmount();
  return result;
}
