// pixelShuffle against a float64 reference written from PyTorch's definition (view as [N, C, r, r, H, W], permute to
// [N, C, H, r, W, r]), forward and gradient, on odd shapes; and its shape errors.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/autograd/tensor.js';
import { ShapeError } from '../src/gpu/errors.js';
import { pixelShuffle } from '../src/layers/pixel-shuffle.js';
import { useGpu } from './helpers/gpu.js';
import { checkOp, input } from './helpers/opcheck.js';

const gpu = useGpu();

/** y[n][c][h][i][w][j] = x[n][c][i][j][h][w], flattened: a view of x as [N, C, r, r, H, W] permuted (0,1,4,2,5,3). */
function shuffleRef(x: Float64Array, [N, Cr, H, W]: number[], r: number): { y: Float64Array; shape: number[] } {
  const C = Cr / (r * r);
  const y = new Float64Array(x.length);
  let k = 0;
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let h = 0; h < H; h++)
        for (let i = 0; i < r; i++)
          for (let w = 0; w < W; w++)
            for (let j = 0; j < r; j++) y[k++] = x[((((n * C + c) * r + i) * r + j) * H + h) * W + w];
  return { y, shape: [N, C, H * r, W * r] };
}

/** The adjoint of a permutation: dx at each source index takes its dy. */
function shuffleVjp(shape: number[], r: number, dy: Float64Array): Float64Array {
  const idx = shuffleRef(Float64Array.from({ length: dy.length }, (_, i) => i), shape, r).y;
  const dx = new Float64Array(dy.length);
  idx.forEach((src, k) => (dx[src] += dy[k]));
  return dx;
}

describe('pixelShuffle', () => {
  for (const [shape, r] of [[[2, 12, 3, 5], 2], [[1, 18, 4, 3], 3], [[1, 48, 5, 7], 4], [[1, 3, 2, 2], 1]] as [number[], number][]) {
    it(`${JSON.stringify(shape)}, r = ${r}: forward and gradient`, async () => {
      await checkOp(gpu(), {
        name: `pixelShuffle r${r}`,
        inputs: [input(shape, r + shape[1])],
        gpu: ([x]) => pixelShuffle(x, r),
        ref: ([x]) => shuffleRef(x, shape, r),
        vjp: (_xs, dy) => [shuffleVjp(shape, r, dy)],
        tolForward: 0,
        tolGrad: 0,
      });
    });
  }

  it('shape errors name the op and the shape', () => {
    const x = Tensor.zeros(gpu(), [1, 6, 2, 2]);
    expect(() => pixelShuffle(x, 2)).toThrow(new ShapeError('pixelShuffle: channels must be a multiple of r² = 4; x [1,6,2,2]'));
    expect(() => pixelShuffle(x, 0)).toThrow('pixelShuffle: the factor must be a positive integer; got 0');
    x.dispose();
  });
});
