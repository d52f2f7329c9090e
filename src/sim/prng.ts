/**
 * A small seeded pseudo-random generator for the simulators.
 *
 * mulberry32: 32 bits of state, one multiply-xorshift round per draw. Not
 * cryptographic and not for statistics papers, but fast, allocation-free and
 * identical on every runtime, which is what a replayable load needs: the same
 * seed gives the same events, spikes included.
 */

export interface Prng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Standard normal: mean 0, standard deviation 1. */
  gaussian(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
}

const twoPi = 2 * Math.PI;
const uint32Range = 4294967296;

/**
 * Creates a generator; the same seed always yields the same sequence.
 *
 * @example
 *   const rng = createPrng(42);
 *   rng.next();     // 0.6011037519201636, on every run
 *   rng.gaussian(); // a standard normal draw
 *   rng.int(6);     // 0..5
 */
export function createPrng(seed: number): Prng {
  let state = seed >>> 0;
  // Box–Muller yields normals in pairs; keeping the second halves the cost.
  let spare = 0;
  let hasSpare = false;

  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / uint32Range;
  };

  const gaussian = (): number => {
    if (hasSpare) {
      hasSpare = false;
      return spare;
    }
    // 1 - next() lies in (0, 1], so the logarithm is finite.
    const r = Math.sqrt(-2 * Math.log(1 - next()));
    const theta = twoPi * next();
    spare = r * Math.sin(theta);
    hasSpare = true;
    return r * Math.cos(theta);
  };

  const int = (n: number): number => Math.floor(next() * n);

  return { next, gaussian, int };
}
