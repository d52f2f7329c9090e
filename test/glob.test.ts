/**
 * compileGlob (src/runtime/series.ts): the same answers as the RegExp a
 * glob used to compile to, on seeded random globs and keys; and linear
 * where that RegExp was exponential.
 */
import { expect, test } from "bun:test";
import { compileGlob } from "../src/runtime/series.ts";
import { mulberry32 } from "./helpers/prng.ts";

/** The old compilation, kept here as the reference. */
function reference(glob: string): RegExp {
  let re = "^";
  for (const ch of glob) re += ch === "*" ? ".*" : ch === "?" ? "." : ch.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`${re}$`, "s");
}

test("glob - the same answers as the reference RegExp, 20,000 seeded glob/key pairs", () => {
  const rand = mulberry32(20261205);
  const alphabet = "ab*?.{}\\\n";
  const word = (n: number, chars: string) => Array.from({ length: Math.floor(rand() * n) }, () => chars[Math.floor(rand() * chars.length)]).join("");
  for (let i = 0; i < 20_000; i++) {
    const glob = word(8, alphabet);
    const key = word(10, "ab.{}\\\n");
    if (compileGlob(glob).test(key) !== reference(glob).test(key)) throw new Error(`${JSON.stringify(glob)} on ${JSON.stringify(key)}`);
  }
});

test("glob - many stars against a long key that fails: answered at once (the RegExp form backtracks exponentially)", () => {
  const glob = `${"*a".repeat(40)}*b`;
  const key = "a".repeat(5_000);
  // No timing asserted: an exponential matcher would not return, and the test's timeout would fail it.
  expect(compileGlob(glob).test(key)).toBe(false);
  expect(compileGlob(glob).test(`${key}b`)).toBe(true);
});
