import { describe, expect, it } from 'vitest';
import { Tensor, noGrad, tidy } from '../src/autograd/tensor.js';
import { ShapeError } from '../src/gpu/errors.js';
import * as S from '../src/layers/spatial.js';
import { useGpu } from './helpers/gpu.js';
import { checkOp, expectClose, input } from './helpers/opcheck.js';
import { numel, randn, rng, uniform } from './helpers/rand.js';
import { avgPoolGlobalRef, concatRef, cropRef, maxPoolRef, poolLen, reflectionPadRef, upsampleRef, type Shape4, type Sides4 } from './reference/spatial.js';

const gpu = useGpu();

/** Runs op on x (requiring grad), backpropagates dy; returns y and dx on the CPU. */
async function run(x: Float64Array, shape: number[], op: (t: Tensor) => Tensor, dy?: Float64Array) {
  const { y, dx } = tidy(() => {
    const t = Tensor.from(gpu(), Float32Array.from(x), shape, true);
    const y = op(t);
    y.backward(dy ? Tensor.from(gpu(), Float32Array.from(dy), y.shape) : undefined);
    const dx = t.grad!;
    t.grad = null;
    return { y, dx };
  });
  try {
    return { y: await y.data(), yShape: [...y.shape], dx: await dx.data() };
  } finally {
    y.dispose();
    dx.dispose();
  }
}

function expectShapeError(f: () => unknown, ...parts: string[]): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ShapeError);
  for (const p of parts) expect((err as Error).message).toContain(p);
}

const asSides = (v: number | Sides4): Sides4 => (typeof v === 'number' ? [v, v, v, v] : v);

describe('reflectionPad2d', () => {
  it('matches the PyTorch documentation example and folds gradients onto their sources', async () => {
    const r = await run(Float64Array.from({ length: 9 }, (_, i) => i), [1, 1, 3, 3], (t) => S.reflectionPad2d(t, 2));
    expect(r.yShape).toEqual([1, 1, 7, 7]);
    const rows = [[8, 7, 6, 7, 8, 7, 6], [5, 4, 3, 4, 5, 4, 3], [2, 1, 0, 1, 2, 1, 0]];
    expect([...r.y]).toEqual([...rows, rows[1], rows[0], rows[1], rows[2]].flat());
    // Pixel 0 of [x0 x1 x2] padded by 2 on both sides appears at columns 2 and 6 of x2 x1 x0 x1 x2 x1 x0.
    const g = await run(new Float64Array([1, 2, 3]), [1, 1, 1, 3], (t) => S.reflectionPad2d(t, [2, 2, 0, 0]));
    expect([...g.y]).toEqual([3, 2, 1, 2, 3, 2, 1]);
    expect([...g.dx]).toEqual([2, 3, 2]);
  });

  const cases: [Shape4, number | Sides4][] = [
    [[2, 3, 7, 9], 1],
    [[1, 5, 13, 11], 4],
    [[1, 3, 33, 65], 4],
    [[2, 1, 7, 7], 6], // pad close to the size: reflections reach the far edge
    [[1, 3, 5, 8], [6, 7, 4, 2]],
    [[3, 3, 6, 5], [0, 2, 3, 1]],
    [[1, 3, 1, 5], [2, 3, 0, 0]], // one row: only horizontal padding is allowed
    [[2, 1, 2, 2], 1],
    [[1, 1, 1, 1], 0],
    [[1, 1, 41, 45], 40], // the paper's 40 px pad
  ];
  for (const [k, [shape, pad]] of cases.entries()) {
    it(`forward and gradient on ${shape} pad ${pad}`, async () => {
      const r = reflectionPadRef(shape, asSides(pad));
      await checkOp(gpu(), {
        name: `reflectionPad2d ${shape} ${pad}`,
        inputs: [input(shape, 10 + k)],
        gpu: ([x]) => S.reflectionPad2d(x, pad),
        ref: ([x]) => r.ref(x),
        vjp: ([x], dy) => [r.vjp(x, dy)],
      });
    });
  }

  it('rejects a pad as large as the dimension, naming the op and the shape', () => {
    const x = Tensor.zeros(gpu(), [1, 3, 5, 7]);
    expectShapeError(() => S.reflectionPad2d(x, [7, 0, 0, 0]), 'reflectionPad2d', '[1,3,5,7]', 'left 7');
    expectShapeError(() => S.reflectionPad2d(x, [0, 0, 0, 5]), 'reflectionPad2d', '[1,3,5,7]');
    expectShapeError(() => S.reflectionPad2d(Tensor.zeros(gpu(), [1, 3, 1, 4]), [1, 1, 1, 0]), 'reflectionPad2d', '[1,3,1,4]');
    expectShapeError(() => S.reflectionPad2d(Tensor.zeros(gpu(), [3, 5, 7]), 1), 'reflectionPad2d', '[3,5,7]');
    expectShapeError(() => S.reflectionPad2d(x, -1), 'reflectionPad2d');
    x.dispose();
  });
});

describe('centerCrop2d', () => {
  const cases: [Shape4, number | Sides4][] = [
    [[2, 3, 9, 11], 2],
    [[1, 5, 8, 7], [1, 0, 2, 3]],
    [[1, 1, 17, 33], 0],
    [[3, 3, 5, 5], 2],
  ];
  for (const [k, [shape, crop]] of cases.entries()) {
    it(`forward and gradient on ${shape} crop ${crop}`, async () => {
      const r = cropRef(shape, asSides(crop));
      await checkOp(gpu(), {
        name: `centerCrop2d ${shape} ${crop}`,
        inputs: [input(shape, 30 + k)],
        gpu: ([x]) => S.centerCrop2d(x, crop),
        ref: ([x]) => r.ref(x),
        vjp: ([x], dy) => [r.vjp(x, dy)],
      });
    });
  }
  it('rejects a crop that leaves nothing', () => {
    const x = Tensor.zeros(gpu(), [1, 3, 4, 9]);
    expectShapeError(() => S.centerCrop2d(x, 2), 'centerCrop2d', '[1,3,4,9]');
    x.dispose();
  });
});

describe('upsampleNearest2d', () => {
  const cases: [Shape4, number][] = [
    [[2, 3, 5, 7], 2],
    [[1, 5, 13, 17], 2],
    [[1, 1, 1, 1], 3],
    [[2, 1, 3, 4], 1],
  ];
  for (const [k, [shape, scale]] of cases.entries()) {
    it(`forward and gradient on ${shape} scale ${scale}`, async () => {
      const r = upsampleRef(shape, scale);
      await checkOp(gpu(), {
        name: `upsampleNearest2d ${shape} ${scale}`,
        inputs: [input(shape, 50 + k)],
        gpu: ([x]) => (scale === 2 ? new S.UpsampleNearest2d().forward(x) : S.upsampleNearest2d(x, scale)),
        ref: ([x]) => r.ref(x),
        vjp: ([x], dy) => [r.vjp(x, dy)],
      });
    });
  }
});

describe('maxPool2d', () => {
  it('output sizes follow PyTorch, ceil_mode included', () => {
    // k3 s2: floor and ceil differ on even sizes only.
    for (const [L, floor, ceil] of [[14, 6, 7], [16, 7, 8], [56, 27, 28], [13, 6, 6], [15, 7, 7], [55, 27, 27], [111, 55, 55]]) {
      expect([S.poolOutputSize(L, 3, 2, 0, false), S.poolOutputSize(L, 3, 2, 0, true)]).toEqual([floor, ceil]);
    }
    // The last window would start in the right padding: dropped (5 + 2·1 − 2 = 5 → ceil(5/2) + 1 = 4 → 3).
    expect(S.poolOutputSize(5, 2, 2, 1, true)).toBe(3);
    expect(S.poolOutputSize(5, 2, 2, 1, false)).toBe(3);
    expect(S.poolOutputSize(6, 2, 2, 1, true)).toBe(4);
    expect(poolLen(6, 2, 2, 1, true)).toBe(4);
  });

  const cases: { shape: Shape4; k: number; s: number; p: number; ceil: boolean; shift?: number }[] = [
    { shape: [2, 3, 14, 14], k: 3, s: 2, p: 0, ceil: true },
    { shape: [2, 3, 14, 14], k: 3, s: 2, p: 0, ceil: false },
    { shape: [1, 5, 15, 13], k: 3, s: 2, p: 0, ceil: true },
    { shape: [1, 1, 55, 16], k: 3, s: 2, p: 0, ceil: true },
    { shape: [1, 1, 111, 6], k: 3, s: 2, p: 0, ceil: true },
    { shape: [2, 3, 16, 13], k: 3, s: 2, p: 1, ceil: false, shift: -3 }, // all-negative data: padding must be −inf
    { shape: [1, 3, 5, 6], k: 2, s: 2, p: 1, ceil: true },
    { shape: [2, 1, 9, 7], k: 3, s: 1, p: 1, ceil: false },
    { shape: [1, 5, 7, 8], k: 2, s: 2, p: 0, ceil: false },
    { shape: [1, 1, 1, 1], k: 1, s: 1, p: 0, ceil: false },
    { shape: [1, 3, 33, 65], k: 5, s: 3, p: 2, ceil: true },
  ];
  for (const [i, c] of cases.entries()) {
    it(`forward and gradient on ${c.shape} k${c.k} s${c.s} p${c.p} ceil ${c.ceil}`, async () => {
      const r = maxPoolRef(c.shape, c.k, c.s, c.p, c.ceil);
      const x = input(c.shape, 70 + i);
      if (c.shift) x.data = x.data.map((v) => Math.fround(v + c.shift!));
      await checkOp(gpu(), {
        name: `maxPool2d ${c.shape} k${c.k} s${c.s} p${c.p} ceil ${c.ceil}`,
        inputs: [x],
        gpu: ([t]) => new S.MaxPool2d({ kernelSize: c.k, stride: c.s, padding: c.p, ceilMode: c.ceil }).forward(t),
        ref: ([t]) => r.ref(t),
        vjp: ([t], dy) => [r.vjp(t, dy)],
      });
    });
  }

  it('routes the gradient to the first maximum on ties (constant input), never to padding', async () => {
    for (const [shape, k, s, p, ceil] of [
      [[1, 2, 6, 7], 3, 2, 0, true],
      [[2, 1, 7, 5], 3, 2, 1, false],
      [[1, 1, 6, 6], 2, 1, 1, true],
    ] as [Shape4, number, number, number, boolean][]) {
      const x = new Float64Array(numel(shape)).fill(-1.5);
      const r = maxPoolRef(shape, k, s, p, ceil);
      const dy = randn(numel(r.out), rng(3));
      const got = await run(x, shape, (t) => S.maxPool2d(t, { kernelSize: k, stride: s, padding: p, ceilMode: ceil }), dy);
      expect(got.yShape).toEqual(r.out);
      expect([...got.y].every((v) => v === -1.5)).toBe(true);
      expectClose(got.dx, r.vjp(x, dy), 1e-6, `maxPool2d ties ${shape} k${k} s${s} p${p}`);
    }
  });

  it('frees the saved argmax with the output, and at once when no gradient is recorded', async () => {
    const g = gpu();
    const x = Tensor.from(g, uniform(2 * 3 * 9 * 9, rng(9)), [2, 3, 9, 9], true);
    await g.sync();
    const before = g.stats().inUseBuffers;
    const y = S.maxPool2d(x, { kernelSize: 3, stride: 2, ceilMode: true });
    expect(y.shape).toEqual([2, 3, 4, 4]);
    await g.sync();
    expect(g.stats().inUseBuffers).toBe(before + 2);
    y.dispose();
    const z = noGrad(() => S.maxPool2d(x, { kernelSize: 3, stride: 2 }));
    await g.sync();
    expect(g.stats().inUseBuffers).toBe(before + 1);
    z.dispose();
    x.dispose();
  });

  it('rejects bad geometry, naming the op and the shape', () => {
    const x = Tensor.zeros(gpu(), [1, 3, 2, 9]);
    expectShapeError(() => S.maxPool2d(x, { kernelSize: 3 }), 'maxPool2d', '[1,3,2,9]');
    expectShapeError(() => S.maxPool2d(x, { kernelSize: 3, padding: 2 }), 'maxPool2d', 'padding');
    x.dispose();
  });
});

describe('avgPool2dGlobal', () => {
  const cases: { shape: Shape4; lo?: number }[] = [
    { shape: [1, 3, 300, 301] },
    { shape: [1, 3, 300, 301], lo: 0 }, // pixel-like values in [0, 255]
    { shape: [2, 5, 7, 9] },
    { shape: [3, 1, 1, 1] },
    { shape: [1, 1, 17, 33] },
  ];
  for (const [i, c] of cases.entries()) {
    it(`forward and gradient on ${c.shape}${c.lo === 0 ? ' (values in [0,255])' : ''}`, async () => {
      const r = avgPoolGlobalRef(c.shape);
      const x = input(c.shape, 90 + i);
      if (c.lo === 0) x.data = uniform(numel(c.shape), rng(91), 0, 255);
      await checkOp(gpu(), {
        name: `avgPool2dGlobal ${c.shape}`,
        inputs: [x],
        gpu: ([t]) => new S.AvgPool2dGlobal().forward(t),
        ref: ([t]) => r.ref(t),
        vjp: ([t], dy) => [r.vjp(t, dy)],
        tolForward: 1e-5,
        fdTol: 1e-5,
      });
    });
  }

  it('handles more planes than one grid dimension holds', async () => {
    const shape: Shape4 = [1, 66000, 1, 2];
    const x = uniform(numel(shape), rng(5));
    const r = avgPoolGlobalRef(shape);
    const got = await run(x, shape, (t) => S.avgPool2dGlobal(t));
    expectClose(got.y, r.ref(x).y, 1e-6, 'avgPool2dGlobal 66000 planes');
  });
});

describe('concat', () => {
  const cases: { shapes: number[][]; dim: number }[] = [
    { shapes: [[2, 3, 5, 7], [2, 1, 5, 7], [2, 5, 5, 7]], dim: 1 },
    { shapes: [[1, 3, 13, 9], [1, 3, 13, 9]], dim: 1 },
    { shapes: [[2, 3, 5, 7], [1, 3, 5, 7], [3, 3, 5, 7]], dim: 0 },
    { shapes: [[2, 3, 4, 5], [2, 3, 4, 1]], dim: -1 },
    { shapes: [[1, 64, 3, 3], [1, 64, 3, 3]], dim: 1 },
  ];
  for (const [i, c] of cases.entries()) {
    it(`forward and gradient of ${c.shapes.map((s) => `[${s}]`).join(' + ')} along ${c.dim}`, async () => {
      const d = c.dim < 0 ? c.dim + c.shapes[0].length : c.dim;
      const r = concatRef(c.shapes, d);
      await checkOp(gpu(), {
        name: `concat dim ${c.dim}`,
        inputs: c.shapes.map((s, k) => input(s, 110 + 10 * i + k)),
        gpu: (xs) => S.concat(xs, c.dim),
        ref: (xs) => r.ref(xs),
        vjp: (xs, dy) => r.vjp(xs, dy),
      });
    });
  }

  it('skips inputs that need no gradient', async () => {
    const shapes = [[1, 2, 3, 3], [1, 3, 3, 3], [1, 1, 3, 3]];
    const r = concatRef(shapes, 1);
    await checkOp(gpu(), {
      name: 'concat partial grad',
      inputs: shapes.map((s, k) => ({ ...input(s, 140 + k), grad: k !== 1 })),
      gpu: (xs) => S.concat(xs),
      ref: (xs) => r.ref(xs),
      vjp: (xs, dy) => r.vjp(xs, dy).map((g, k) => (k === 1 ? null : g)),
    });
  });

  it('rejects mismatched shapes, naming the op and every shape', () => {
    const a = Tensor.zeros(gpu(), [1, 3, 5, 7]);
    const b = Tensor.zeros(gpu(), [1, 2, 5, 6]);
    const c = Tensor.zeros(gpu(), [1, 3, 5]);
    expectShapeError(() => S.concat([a, b]), 'concat', '[1,3,5,7]', '[1,2,5,6]', 'dim 1');
    expectShapeError(() => S.concat([a, c]), 'concat', '[1,3,5,7]', '[1,3,5]');
    expectShapeError(() => S.concat([a, a], 4), 'concat', 'dim 4');
    expectShapeError(() => S.concat([]), 'concat');
    [a, b, c].forEach((t) => t.dispose());
  });
});
