// Scalar ([1]) losses. Weighting terms uses mulScalar from ./elementwise.js; summing them, add.
import type { Tensor } from '../autograd/tensor.js';
import { mseBackward, mseForward, tvBackward, tvForward } from '../kernels/loss.js';
import { checkRank, checkSame, recordOp } from './check.js';

/** mean((a − b)²) over all elements, as PyTorch's MSELoss (reduction 'mean'); b may be a constant. */
export function mseLoss(a: Tensor, b: Tensor): Tensor {
  checkSame('mseLoss', { a, b });
  const gpu = a.gpu;
  const y = mseForward(gpu, a.raw, b.raw);
  return recordOp('mseLoss', [a, b], y, (dy, needs) => [
    needs[0] ? mseBackward(gpu, a.raw, b.raw, dy, 1) : null,
    needs[1] ? mseBackward(gpu, a.raw, b.raw, dy, -1) : null,
  ]);
}

/**
 * Squared anisotropic total variation of x [N,C,H,W], summed (Johnson's fast-neural-style TV regulariser):
 * Σ (x[n,c,h,w+1] − x[n,c,h,w])² + (x[n,c,h+1,w] − x[n,c,h,w])². An H or W of 1 contributes no term.
 */
export function totalVariation(x: Tensor): Tensor {
  checkRank('totalVariation', 'x', x, 4);
  const gpu = x.gpu;
  const y = tvForward(gpu, x.raw);
  return recordOp('totalVariation', [x], y, (dy) => [tvBackward(gpu, x.raw, dy)]);
}
