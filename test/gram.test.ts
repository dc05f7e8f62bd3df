// Batched Gram matrices G[n] = F·Fᵀ / (C·H·W) (kernels/gram.ts, layers/gram.ts) against the float64 reference
// (reference/gram.ts), forward and gradient, on tiled, split and folded grids.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/autograd/tensor.js';
import { ShapeError } from '../src/gpu/index.js';
import { gramSplit } from '../src/kernels/gram.js';
import { gram } from '../src/layers/gram.js';
import { useGpu } from './helpers/gpu.js';
import { withGridsFoldedAt } from './helpers/grid.js';
import { checkOp, input } from './helpers/opcheck.js';
import { gramRef, gramVjp } from './reference/gram.js';

const gpu = useGpu();

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

  it('forward and backward on a grid folded at 7', async () => {
    const g = gpu();
    const shape = [1, 2, 30, 31]; // 15 column blocks in the backward
    await withGridsFoldedAt(g, 7, () =>
      checkOp(g, {
        name: 'gram folded',
        inputs: [input(shape, 5)],
        gpu: ([x]) => gram(x),
        ref: ([x]) => gramRef(x, shape),
        vjp: ([x], dy) => [gramVjp(x, shape, dy)],
      }),
    );
  });
});
