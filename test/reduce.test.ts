import { describe, expect, it } from 'vitest';
import { Tensor, tidy } from '../src/autograd/tensor.js';
import { sumForward } from '../src/kernels/reduce.js';
import { add } from '../src/layers/elementwise.js';
import { mseLoss, totalVariation } from '../src/layers/loss.js';
import { mean, sum } from '../src/layers/reduce.js';
import { useGpu } from './helpers/gpu.js';
import { withGridsFoldedAt } from './helpers/grid.js';
import { checkOp, expectClose, input } from './helpers/opcheck.js';
import { rng, uniform } from './helpers/rand.js';
import { mseRef, mseVjp, tvRef, tvVjp } from './reference/loss.js';
import { sumRef, sumVjp } from './reference/reduce.js';

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
  it('sum, mse and tv forward and backward on a grid folded at 7', async () => {
    const g = gpu();
    await withGridsFoldedAt(g, 7, async () => {
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
    });
  });
});
