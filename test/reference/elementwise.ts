// Float64 references for elementwise ops, from the math.
import type { RefOut } from '../helpers/opcheck.js';

export function mapRef(x: Float64Array, shape: number[], f: (v: number) => number): RefOut {
  return { y: x.map(f), shape };
}

export const unaryRef = {
  relu: { f: (x: number) => Math.max(x, 0), df: (x: number) => (x > 0 ? 1 : 0) },
  tanh: { f: Math.tanh, df: (x: number) => 1 - Math.tanh(x) ** 2 },
  sigmoid: { f: (x: number) => 1 / (1 + Math.exp(-x)), df: (x: number) => Math.exp(-x) / (1 + Math.exp(-x)) ** 2 },
  square: { f: (x: number) => x * x, df: (x: number) => 2 * x },
  abs: { f: Math.abs, df: Math.sign },
};

export function scaledTanhRef(a: number, b: number) {
  return { f: (x: number) => a * Math.tanh(x) + b, df: (x: number) => a * (1 - Math.tanh(x) ** 2) };
}
