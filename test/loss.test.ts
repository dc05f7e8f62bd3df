import { describe, expect, it } from 'vitest';
import { Tensor, tidy } from '../src/autograd/tensor.js';
import { ShapeError } from '../src/gpu/index.js';
import { add, mulScalar } from '../src/layers/elementwise.js';
import { mseLoss, totalVariation } from '../src/layers/loss.js';
import { useGpu } from './helpers/gpu.js';
import { checkOp, input } from './helpers/opcheck.js';
import { mseRef, mseVjp, tvRef, tvVjp } from './reference/loss.js';

const gpu = useGpu();

describe('mseLoss', () => {
  // [2,3,97,101] has 58782 terms: two reduction passes.
  const SHAPES = [[1], [7], [3, 5], [2, 3, 7, 11], [1, 1, 255], [1, 3, 17, 19], [2, 3, 97, 101]];
  for (const [k, shape] of SHAPES.entries()) {
    it(`${shape}: forward and both gradients`, async () => {
      await checkOp(gpu(), {
        name: `mseLoss ${shape}`,
        inputs: [input(shape, 40 + k), input(shape, 60 + k)],
        gpu: ([a, b]) => mseLoss(a, b),
        ref: ([a, b]) => mseRef(a, b),
        vjp: ([a, b], dy) => mseVjp(a, b, dy),
        fdSamples: 8,
        fdStep: 1e-2, // quadratic: central differences are exact
      });
    });
  }

  it('against a constant target (no gradient for b)', async () => {
    const shape = [2, 3, 5, 5];
    await checkOp(gpu(), {
      name: 'mseLoss constant b',
      inputs: [input(shape, 1), input(shape, 2, 1, false)],
      gpu: ([a, b]) => mseLoss(a, b),
      ref: ([a, b]) => mseRef(a, b),
      vjp: ([a, b], dy) => [mseVjp(a, b, dy)[0], null],
    });
  });

  it('weighted sum of losses: 2.5·mse(a, b) + 0.1·tv(a)', async () => {
    const shape = [1, 3, 9, 7];
    await checkOp(gpu(), {
      name: 'weighted',
      inputs: [input(shape, 3), input(shape, 4)],
      gpu: ([a, b]) => add(mulScalar(mseLoss(a, b), 2.5), mulScalar(totalVariation(a), 0.1)),
      ref: ([a, b]) => ({ y: Float64Array.of(2.5 * mseRef(a, b).y[0] + 0.1 * tvRef(a, shape).y[0]), shape: [1] }),
      vjp: ([a, b], dy) => {
        const [da, db] = mseVjp(a, b, dy);
        const dt = tvVjp(a, shape, dy);
        return [da.map((v, i) => 2.5 * v + 0.1 * dt[i]), db.map((v) => 2.5 * v)];
      },
    });
  });

  it('rejects mismatched shapes, naming the op and both shapes', () => {
    const a = Tensor.from(gpu(), new Float32Array(24), [1, 2, 3, 4]);
    const b = Tensor.from(gpu(), new Float32Array(24), [1, 2, 4, 3]);
    expect(() => mseLoss(a, b)).toThrow(ShapeError);
    expect(() => mseLoss(a, b)).toThrow(/^mseLoss: .*a \[1,2,3,4\], b \[1,2,4,3\]/);
    a.dispose();
    b.dispose();
  });
});

describe('totalVariation', () => {
  // 1×W and H×1 images have only one kind of term; 1×1 has none. [2,3,91,93] takes two passes.
  const SHAPES = [[1, 1, 1, 1], [1, 1, 1, 17], [1, 2, 13, 1], [2, 3, 7, 5], [1, 3, 17, 19], [2, 3, 91, 93]];
  for (const [k, shape] of SHAPES.entries()) {
    it(`${shape}: forward and gradient`, async () => {
      await checkOp(gpu(), {
        name: `totalVariation ${shape}`,
        inputs: [input(shape, 80 + k)],
        gpu: ([x]) => totalVariation(x),
        ref: ([x]) => tvRef(x, shape),
        vjp: ([x], dy) => [tvVjp(x, shape, dy)],
        fdSamples: 12,
        fdStep: 1e-2, // quadratic: central differences are exact, a large step avoids cancellation in Σ
      });
    });
  }

  it('is zero on a constant image and on 1×1 images', async () => {
    const v = await tidy(() => totalVariation(Tensor.from(gpu(), new Float32Array(2 * 3 * 5 * 4).fill(0.7), [2, 3, 5, 4]))).data();
    expect(v[0]).toBe(0);
    const w = await tidy(() => totalVariation(Tensor.from(gpu(), Float32Array.of(1, 2, 3), [1, 3, 1, 1]))).data();
    expect(w[0]).toBe(0);
  });

  it('rejects a non-4-D input, naming the op and the shape', () => {
    const x = Tensor.from(gpu(), new Float32Array(12), [3, 4]);
    expect(() => totalVariation(x)).toThrow(ShapeError);
    expect(() => totalVariation(x)).toThrow(/^totalVariation: .*x \[3,4\]/);
    x.dispose();
  });
});
