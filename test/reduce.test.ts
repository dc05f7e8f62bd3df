import { describe, expect, it } from 'vitest';
import { Tensor, tidy } from '../src/autograd/tensor.js';
import { ShapeError } from '../src/gpu/index.js';
import { gramSplit } from '../src/kernels/gram.js';
import { sumForward } from '../src/kernels/reduce.js';
import { gram } from '../src/layers/gram.js';
import { add } from '../src/layers/elementwise.js';
import { mseLoss, totalVariation } from '../src/layers/loss.js';
import { mean, sum } from '../src/layers/reduce.js';
import { useGpu } from './helpers/gpu.js';
import { checkOp, expectClose, input } from './helpers/opcheck.js';
import { rng, uniform } from './helpers/rand.js';
import { mseRef, mseVjp, tvRef, tvVjp } from './reference/loss.js';
import { gramRef, gramVjp, sumRef, sumVjp } from './reference/reduce.js';

const gpu = useGpu();

describe('sum and mean', () => {
  // Around the 256-wide workgroup and the 4096 terms one workgroup sums; 65537 and 1_000_003 take
  // two passes.
  for (const n of [1, 255, 256, 257, 4097, 65537, 1_000_003]) {
    it(`n = ${n}: forward and gradient`, async () => {
      const big = n > 100_000;
      for (const [op, f, scale] of [['sum', sum, 1], ['mean', mean, 1 / n]] as const) {
        await checkOp(gpu(), {
          name: `${op} ${n}`,
          inputs: [input([n], n + (op === 'sum' ? 1 : 2))],
          gpu: ([x]) => f(x),
          ref: ([x]) => sumRef(x, scale),
          vjp: ([x], dy) => [sumVjp(x.length, dy, scale)],
          fdSamples: big ? 4 : 24,
          fdTol: 1e-5,
        });
      }
    });
  }

  it('takes three passes when each workgroup sums only 256 terms', async () => {
    const n = 65537 * 3; // 769 partial sums, then 4, then 1
    const d = uniform(n, rng(4), -1, 1);
    const x = gpu().upload(Float32Array.from(d), [n]);
    const y = sumForward(gpu(), x, 0.5, 1);
    expectClose(await gpu().read(y), sumRef(d, 0.5).y, 1e-5, 'three-pass sum');
    gpu().release(x);
    gpu().release(y);
  });

  it('sums a million positive values to float32 accuracy (no cancellation)', async () => {
    const n = 1_000_003;
    const d = uniform(n, rng(3), 0, 1);
    const got = await tidy(() => sum(Tensor.from(gpu(), Float32Array.from(d), [n]))).data();
    expectClose(got, sumRef(d).y, 1e-6, 'sum of 1e6 uniforms');
  });

  it('reduces over every dimension of a 4-D tensor', async () => {
    const shape = [2, 3, 17, 13];
    await checkOp(gpu(), {
      name: 'mean 4-D',
      inputs: [input(shape, 9)],
      gpu: ([x]) => mean(x),
      ref: ([x]) => sumRef(x, 1 / x.length),
      vjp: ([x], dy) => [sumVjp(x.length, dy, 1 / x.length)],
    });
  });
});

describe('folded grids (above 65535 workgroups per dimension)', () => {
  // The device limit cannot be reached on a small test, so fold at 7 workgroups: every kernel must index
  // with gid.x + gid.y·nwg.x·WG and ignore the workgroups past the end of the last row.
  it('sum, mse, tv, gram forward and backward on a grid folded at 7', async () => {
    const g = gpu();
    const grid = g.grid.bind(g);
    g.grid = (n: number, wg: number) => {
      const groups = Math.max(1, Math.ceil(n / wg));
      return groups <= 7 ? [groups, 1, 1] : [7, Math.ceil(groups / 7), 1];
    };
    try {
      for (const n of [65537, 9000]) {
        await checkOp(g, {
          name: `sum folded ${n}`,
          inputs: [input([n], n)],
          gpu: ([x]) => sum(x),
          ref: ([x]) => sumRef(x),
          vjp: ([x], dy) => [sumVjp(x.length, dy)],
          fdSamples: 4,
        });
      }
      const img = [1, 3, 51, 53]; // 8109 terms: 32 workgroups in the backward kernels
      await checkOp(g, {
        name: 'mse + tv folded',
        inputs: [input(img, 6), input(img, 7)],
        gpu: ([a, b]) => add(mseLoss(a, b), totalVariation(a)),
        ref: ([a, b]) => ({ y: Float64Array.of(mseRef(a, b).y[0] + tvRef(a, img).y[0]), shape: [1] }),
        vjp: ([a, b], dy) => {
          const [da, db] = mseVjp(a, b, dy);
          const dt = tvVjp(a, img, dy);
          return [da.map((v, i) => v + dt[i]), db];
        },
        fdStep: 1e-2,
      });
      const shape = [1, 2, 30, 31]; // 15 column blocks in the backward
      await checkOp(g, {
        name: 'gram folded',
        inputs: [input(shape, 5)],
        gpu: ([x]) => gram(x),
        ref: ([x]) => gramRef(x, shape),
        vjp: ([x], dy) => [gramVjp(x, shape, dy)],
      });
    } finally {
      g.grid = grid;
    }
  });
});

describe('gram', () => {
  const cases: number[][] = [
    [1, 1, 1, 1],
    [1, 3, 5, 7],
    [2, 5, 3, 9],
    [1, 17, 13, 11],
    [2, 33, 7, 5],
    [1, 3, 33, 31], // K = 1023 is split into slices
    [2, 70, 5, 7], // 2×2 tiles: only the upper ones are computed and mirrored
    [1, 130, 3, 3], // 3×3 tiles, K below one chunk
  ];
  for (const shape of cases) {
    it(`${shape}: forward and gradient`, async () => {
      await checkOp(gpu(), {
        name: `gram ${shape}`,
        inputs: [input(shape, shape.reduce((a, b) => a * 31 + b, 7))],
        gpu: ([x]) => gram(x),
        ref: ([x]) => gramRef(x, shape),
        vjp: ([x], dy) => [gramVjp(x, shape, dy)],
        tolForward: 1e-5,
        tolGrad: 1e-5,
      });
    });
  }

  it('splits K for few tiles and keeps one slice for many', () => {
    expect(gramSplit(1, 64, 65536).S).toBeGreaterThan(16);
    expect(gramSplit(1, 3, 1023).S).toBe(4);
    expect(gramSplit(4, 512, 4096).S).toBeLessThanOrEqual(2);
    const { S, kPer } = gramSplit(1, 64, 65536);
    expect(S * kPer).toBeGreaterThanOrEqual(65536);
    expect((S - 1) * kPer).toBeLessThan(65536);
  });

  it('rejects a non-4-D input, naming the op and the shape', () => {
    const x = Tensor.from(gpu(), new Float32Array(12), [3, 4]);
    expect(() => gram(x)).toThrow(ShapeError);
    expect(() => gram(x)).toThrow(/^gram: .*x \[3,4\]/);
    x.dispose();
  });
});
