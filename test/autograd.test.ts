// The tape's contracts: fan-out accumulation, leaf accumulation across backward calls, frozen leaves,
// noGrad, and freeing intermediates.
import { describe, expect, it } from 'vitest';
import { Tensor, keep, noGrad, tidy } from '../src/autograd/tensor.js';
import { add, mul, mulScalar, relu } from '../src/layers/elementwise.js';
import { useGpu } from './helpers/gpu.js';

const gpu = useGpu();

describe('autograd', () => {
  it('accumulates a leaf gradient across backward calls, and zeroGrad clears it', async () => {
    const g = gpu();
    const x = Tensor.param(g, [1, 2, 3], [3]);
    tidy(() => mul(x, x).backward());
    tidy(() => mulScalar(x, 3).backward());
    expect([...(await x.grad!.data())]).toEqual([2 + 3, 4 + 3, 6 + 3]);
    x.zeroGrad();
    expect(x.grad).toBeNull();
    x.dispose();
  });

  it('frozen leaves get no gradient; trainable ones do', async () => {
    const g = gpu();
    const w = Tensor.param(g, [2, 2], [2]);
    const frozen = Tensor.param(g, [5, 5], [2]);
    frozen.requiresGrad = false;
    tidy(() => mul(add(w, frozen), w).backward());
    expect(frozen.grad).toBeNull();
    // d/dw (w + f)·w = 2w + f
    expect([...(await w.grad!.data())]).toEqual([9, 9]);
    w.dispose();
    frozen.dispose();
  });

  it('noGrad records nothing', () => {
    const g = gpu();
    const w = Tensor.param(g, [1, -1], [2]);
    tidy(() => {
      const y = noGrad(() => relu(mul(w, w)));
      expect(y.requiresGrad).toBe(false);
      expect(y.node).toBeNull();
      expect(() => y.backward()).toThrow(/does not depend on anything that requires a gradient/);
    });
    w.dispose();
  });

  it('tidy frees everything but what it returns; backward frees intermediate gradients', async () => {
    const g = gpu();
    const w = Tensor.param(g, new Float32Array(1000).fill(0.5), [1000]);
    await g.sync();
    const before = g.stats().inUseBytes;
    const kept = tidy(() => {
      let h = w;
      for (let i = 0; i < 10; i++) h = relu(add(mul(h, w), h));
      h.backward();
      return keep(mulScalar(h, 1));
    });
    await g.sync();
    // Left: w's gradient and the kept result (1000 floats each, rounded to the pool's 4 KiB class).
    expect(g.stats().inUseBytes - before).toBe(2 * 4096);
    kept.dispose();
    w.dispose();
  });
});
