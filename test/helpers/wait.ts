/**
 * Poll `cond` until it holds; throw naming `what` if it does not within
 * `timeoutMs`. Tests wait on conditions like this, never on fixed sleeps.
 *
 * @example
 *   await waitFor(() => sup.restartsTotal("a") === 1, 3000, "one restart of a");
 */
const pollMs = 5;

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (performance.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(pollMs);
  }
}
