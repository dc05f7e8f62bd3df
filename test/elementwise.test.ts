import { describe, it } from 'vitest';
import * as L from '../src/layers/elementwise.js';
import { checkOp, input } from './helpers/opcheck.js';
import { rng, randInt } from './helpers/rand.js';
import { scaledTanhRef, unaryRef } from './reference/elementwise.js';
import { useGpu } from './helpers/gpu.js';

const gpu = useGpu();

// Odd sizes, sizes around the 256-wide workgroup, and one above it.
const SHAPES = [[1], [3, 5], [2, 3, 7, 11], [257], [1, 1, 255], [2, 3, 17, 19]];

/** Keeps values away from the kinks of relu/abs so finite differences are valid there. */
function awayFromZero(d: Float64Array): Float64Array {
  return d.map((v) => (Math.abs(v) < 0.05 ? Math.fround(v + 0.1 * Math.sign(v || 1)) : v));
}

describe('unary activations', () => {
  for (const [op, r] of Object.entries(unaryRef)) {
    it(`${op} forward and gradient`, async () => {
      for (const [k, shape] of SHAPES.entries()) {
        const x = input(shape, 100 + k, 2);
        x.data = awayFromZero(x.data);
        await checkOp(gpu(), {
          name: `${op} ${shape}`,
          inputs: [x],
          gpu: ([t]) => (L as unknown as Record<string, (t: unknown) => ReturnType<typeof L.relu>>)[op](t),
          ref: ([d]) => ({ y: d.map(r.f), shape }),
          vjp: ([d], dy) => [d.map((v, i) => r.df(v) * dy[i])],
        });
      }
    });
  }

  it('scaledTanh (paper output layer) and affine', async () => {
    for (const [a, b] of [[127.5, 127.5], [150, 0]]) {
      const r = scaledTanhRef(a, b);
      await checkOp(gpu(), {
        name: `scaledTanh ${a},${b}`,
        inputs: [input([2, 3, 5, 7], 3)],
        gpu: ([t]) => L.scaledTanh(t, a, b),
        ref: ([d]) => ({ y: d.map(r.f), shape: [2, 3, 5, 7] }),
        vjp: ([d], dy) => [d.map((v, i) => r.df(v) * dy[i])],
        fdTol: 1e-5,
      });
    }
    await checkOp(gpu(), {
      name: 'affine',
      inputs: [input([3, 300], 4)],
      gpu: ([t]) => L.affine(t, -2.5, 0.75),
      ref: ([d]) => ({ y: d.map((v) => -2.5 * v + 0.75), shape: [3, 300] }),
      vjp: (_, dy) => [dy.map((v) => -2.5 * v)],
    });
  });

  it('tanh stays finite for large inputs', async () => {
    const x = new Float64Array([-100, -30, 0, 30, 100]);
    await checkOp(gpu(), {
      name: 'tanh large',
      inputs: [{ data: x, shape: [5], grad: true }],
      gpu: ([t]) => L.tanh(t),
      ref: ([d]) => ({ y: d.map(Math.tanh), shape: [5] }),
      vjp: ([d], dy) => [d.map((v, i) => (1 - Math.tanh(v) ** 2) * dy[i])],
    });
  });
});

describe('binary ops', () => {
  const r = rng(5);
  for (let trial = 0; trial < 3; trial++) {
    const shape = [randInt(r, 1, 3), randInt(r, 1, 5), randInt(r, 1, 40), randInt(r, 1, 33)];
    it(`add, sub, mul, linearCombination on ${shape}`, async () => {
      const a = input(shape, 10 + trial);
      const b = input(shape, 20 + trial);
      await checkOp(gpu(), { name: 'add', inputs: [a, b], gpu: ([u, v]) => L.add(u, v), ref: ([u, v]) => ({ y: u.map((x, i) => x + v[i]), shape }), vjp: (_, dy) => [dy, dy] });
      await checkOp(gpu(), { name: 'sub', inputs: [a, b], gpu: ([u, v]) => L.sub(u, v), ref: ([u, v]) => ({ y: u.map((x, i) => x - v[i]), shape }), vjp: (_, dy) => [dy, dy.map((x) => -x)] });
      await checkOp(gpu(), {
        name: 'mul',
        inputs: [a, b],
        gpu: ([u, v]) => L.mul(u, v),
        ref: ([u, v]) => ({ y: u.map((x, i) => x * v[i]), shape }),
        vjp: ([u, v], dy) => [dy.map((g, i) => g * v[i]), dy.map((g, i) => g * u[i])],
      });
      await checkOp(gpu(), {
        name: 'linearCombination',
        inputs: [a, b],
        gpu: ([u, v]) => L.linearCombination(u, v, 0.3, -1.7),
        ref: ([u, v]) => ({ y: u.map((x, i) => 0.3 * x - 1.7 * v[i]), shape }),
        vjp: (_, dy) => [dy.map((g) => 0.3 * g), dy.map((g) => -1.7 * g)],
      });
    });
  }
  it('fan-out accumulates: y = x·x + x', async () => {
    const shape = [4, 9];
    await checkOp(gpu(), {
      name: 'fan-out',
      inputs: [input(shape, 31)],
      gpu: ([x]) => L.add(L.mul(x, x), x),
      ref: ([u]) => ({ y: u.map((v) => v * v + v), shape }),
      vjp: ([u], dy) => [dy.map((g, i) => g * (2 * u[i] + 1))],
    });
  });
});
