// Differentiable reductions to a scalar ([1]): sum and mean over every element.
import type { Tensor } from '../autograd/tensor.js';
import { recordOp } from './check.js';
import { sumBackward, sumForward } from '../kernels/reduce.js';

function reduce(op: string, x: Tensor, scale: number): Tensor {
  const gpu = x.gpu;
  const shape = x.shape;
  const y = sumForward(gpu, x.raw, scale);
  return recordOp(op, [x], y, (dy) => [sumBackward(gpu, dy, shape, scale)]);
}

/** Σ x over all elements, shape [1]. */
export const sum = (x: Tensor): Tensor => reduce('sum', x, 1);

/** Mean over all elements, shape [1] (NaN for an empty tensor, as in PyTorch). */
export const mean = (x: Tensor): Tensor => reduce('mean', x, 1 / x.size);
