// The op test harness. For one op on one set of shapes it checks:
//  1. the float64 reference's VJP against central finite differences of the reference forward;
//  2. the GPU forward against the reference forward;
//  3. every GPU gradient against the reference VJP, with the output weighted by random numbers (so index
//     bugs cannot cancel out in a plain sum).
import { expect } from 'vitest';
import { Tensor, tidy } from '../../src/autograd/tensor.js';
import type { Gpu } from '../../src/gpu/index.js';
import { numel, randn, rng } from './rand.js';

export interface RefOut {
  y: Float64Array;
  shape: number[];
}

export interface OpCase {
  name: string;
  /** Input data and shapes (float32-representable values). */
  inputs: { data: Float64Array; shape: number[]; grad?: boolean }[];
  /** The op under test, on GPU tensors. */
  gpu: (xs: Tensor[]) => Tensor;
  /** Float64 forward from the math. */
  ref: (xs: Float64Array[]) => RefOut;
  /** Float64 vector-Jacobian product: gradient of sum(dy · y) w.r.t. each input (null where not differentiable). */
  vjp: (xs: Float64Array[], dy: Float64Array) => (Float64Array | null)[];
  /** Relative L2 tolerances against float32. */
  tolForward?: number;
  tolGrad?: number;
  /** Finite-difference step and tolerance (the reference is float64). */
  fdStep?: number;
  fdTol?: number;
  /** Coordinates per input checked by finite differences. */
  fdSamples?: number;
  seed?: number;
}

export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  const e = relErr(actual, expected);
  if (!(e <= tol)) {
    let worst = 0;
    for (let i = 0; i < actual.length; i++) if (Math.abs(actual[i] - expected[i]) > Math.abs(actual[worst] - expected[worst])) worst = i;
    throw new Error(`${what}: relative L2 error ${e.toExponential(3)} > ${tol}; worst at [${worst}]: got ${actual[worst]}, expected ${expected[worst]}`);
  }
}

/** Checks a reference VJP against central finite differences of the reference forward. */
export function checkRefGrad(c: OpCase, dy: Float64Array): void {
  const xs = c.inputs.map((i) => Float64Array.from(i.data));
  const grads = c.vjp(xs, dy);
  const h = c.fdStep ?? 1e-5;
  const r = rng((c.seed ?? 1) + 99);
  const L = (): number => {
    const { y } = c.ref(xs);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * dy[i];
    return s;
  };
  c.inputs.forEach((inp, k) => {
    const g = grads[k];
    if (inp.grad === false || !g) return;
    const n = inp.data.length;
    const m = Math.min(n, c.fdSamples ?? 24);
    for (let s = 0; s < m; s++) {
      const j = m === n ? s : Math.floor(r() * n);
      const x0 = xs[k][j];
      xs[k][j] = x0 + h;
      const lp = L();
      xs[k][j] = x0 - h;
      const lm = L();
      xs[k][j] = x0;
      const fd = (lp - lm) / (2 * h);
      const tol = (c.fdTol ?? 1e-6) * Math.max(1, Math.abs(fd), Math.abs(g[j]));
      if (!(Math.abs(fd - g[j]) <= tol)) {
        throw new Error(`${c.name}: reference gradient of input ${k} at [${j}] is ${g[j]}, finite differences give ${fd}`);
      }
    }
  });
}

export async function checkOp(gpu: Gpu, c: OpCase): Promise<void> {
  const ref = c.ref(c.inputs.map((i) => i.data));
  const dy = randn(ref.y.length, rng((c.seed ?? 1) + 7));
  checkRefGrad(c, dy);

  const { y, grads } = tidy(() => {
    const xs = c.inputs.map((i) => Tensor.from(gpu, Float32Array.from(i.data), i.shape, i.grad !== false));
    const out = c.gpu(xs);
    out.backward(Tensor.from(gpu, Float32Array.from(dy), out.shape));
    const grads = xs.map((x) => x.grad);
    xs.forEach((x) => (x.grad = null)); // the gradients outlive the inputs, which the scope frees
    return { y: out, grads };
  });
  try {
    expect(y.shape).toEqual(ref.shape);
    expectClose(await y.data(), ref.y, c.tolForward ?? 1e-5, `${c.name} forward`);
    const refGrads = c.vjp(c.inputs.map((i) => i.data), dy);
    for (let k = 0; k < c.inputs.length; k++) {
      if (c.inputs[k].grad === false || !refGrads[k]) continue;
      const g = grads[k];
      expect(g, `${c.name}: no gradient for input ${k}`).toBeTruthy();
      expect(g!.shape).toEqual(c.inputs[k].shape);
      expectClose(await g!.data(), refGrads[k]!, c.tolGrad ?? 1e-5, `${c.name} gradient of input ${k}`);
    }
  } finally {
    y.dispose();
    grads.forEach((g) => g?.dispose());
  }
}

/** Random float32-representable inputs for a shape. */
export function input(shape: number[], seed: number, scale = 1, grad = true): { data: Float64Array; shape: number[]; grad: boolean } {
  return { data: randn(numel(shape), rng(seed), scale), shape, grad };
}
