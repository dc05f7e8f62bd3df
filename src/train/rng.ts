// A seeded PRNG whose whole state is four uint32 words: xoshiro128** (Blackman & Vigna, 2018), seeded through
// splitmix32. Only 32-bit integer arithmetic (Math.imul, >>>), so every platform produces the same sequence, and
// the state round-trips through JSON (getState / fromState) for checkpoints. Not for cryptography.

const TWO32 = 4294967296;

const rotl = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;

/** splitmix32's output function: a bijective avalanche of a 32-bit word. */
function mix32(z: number): number {
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** The 32-bit words of a seed: a safe integer (two words, two's complement for negatives) or a string (UTF-16 units). */
function seedWords(seed: number | string): number[] {
  if (typeof seed === 'string') return [0x5eed5eed, seed.length, ...Array.from(seed, (c) => c.codePointAt(0)!)];
  if (!Number.isSafeInteger(seed)) throw new Error(`Rng: seed must be a safe integer or a string, got ${seed}`);
  const u = BigInt.asUintN(64, BigInt(seed));
  return [Number(u & 0xffffffffn), Number(u >> 32n)];
}

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /** A generator seeded from `seed` (any safe integer or a string); equal seeds give equal sequences. */
  constructor(seed: number | string = 0) {
    // Fold the seed words into a splitmix32 counter, then draw the four state words from it.
    let x = 0x9e3779b9;
    for (const w of seedWords(seed)) x = mix32((x ^ w) >>> 0) ^ 0x632be5ab;
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      words.push(mix32(x));
    }
    if (!words.some((w) => w !== 0)) words[0] = 1; // the all-zero state is a fixed point (never happens in practice)
    [this.s0, this.s1, this.s2, this.s3] = words;
  }

  /** A generator for a sub-stream identified by `keys` (e.g. seed, epoch, index): independent of any other state. */
  static derive(seed: number | string, ...keys: (number | string)[]): Rng {
    const parts = [seed, ...keys].map((k) => (typeof k === 'string' ? `s${k.length}:${k}` : `n${k}`));
    for (const k of keys) if (typeof k === 'number' && !Number.isSafeInteger(k)) throw new Error(`Rng.derive: key ${k} is not a safe integer`);
    return new Rng(parts.join('/'));
  }

  /** The next raw uint32 (xoshiro128**). */
  uint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1), with 32 bits of resolution. */
  next(): number {
    return this.uint32() / TWO32;
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling); 1 <= n <= 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO32) throw new Error(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    const limit = TWO32 - (TWO32 % n); // the largest multiple of n not above 2^32
    for (;;) {
      const u = this.uint32();
      if (u < limit) return u % n;
    }
  }

  /** Shuffles `arr` in place (Fisher–Yates) and returns it. */
  shuffle<T>(arr: T[]): T[] {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = arr[i];
      arr[i] = arr[j];
      arr[j] = t;
    }
    return arr;
  }

  /** A standard normal sample (Box–Muller; two uniforms per sample, nothing cached, so the state stays 4 words). */
  normal(mean = 0, std = 1): number {
    const u = 1 - this.next(); // (0, 1]
    const v = this.next();
    return mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** The state: four uint32 words (JSON-safe). */
  getState(): number[] {
    return [this.s0, this.s1, this.s2, this.s3];
  }

  /** Replaces the state with one from getState. */
  setState(s: readonly number[]): void {
    if (!Array.isArray(s) || s.length !== 4 || !s.every((w) => Number.isInteger(w) && w >= 0 && w < TWO32) || s.every((w) => w === 0)) {
      throw new Error(`Rng: invalid state ${JSON.stringify(s)} (expected 4 uint32 words, not all zero)`);
    }
    [this.s0, this.s1, this.s2, this.s3] = s;
  }

  /** A generator continuing exactly where the one that produced `s` (getState) was. */
  static fromState(s: readonly number[]): Rng {
    const r = new Rng(0);
    r.setState(s);
    return r;
  }

  /** An independent copy with the same state. */
  clone(): Rng {
    return Rng.fromState(this.getState());
  }
}
