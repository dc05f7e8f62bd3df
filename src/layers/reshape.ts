// reshape: the same elements under another shape (a copy, so every tensor owns its buffer).
import type { Tensor } from '../autograd/tensor.js';
import { numel } from '../gpu/index.js';
import { check, recordOp } from './check.js';

/** One dimension may be −1 (inferred). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const to = shape.map((d) => (d === -1 ? x.size / Math.max(known, 1) : d));
  check(shape.filter((d) => d === -1).length <= 1 && numel(to) === x.size && to.every(Number.isInteger), 'reshape', 'element counts must match', {
    x,
    shape: shape as number[],
  });
  const gpu = x.gpu;
  const y = gpu.empty(to, 'reshape output', x.raw.dtype);
  gpu.copy(x.raw, y);
  return recordOp('reshape', [x], y, (dy) => {
    const dx = gpu.empty(x.shape, 'reshape dx');
    gpu.copy(dy, dx);
    return [dx];
  });
}

/** [N, ...] → [N, rest]. */
export const flatten = (x: Tensor): Tensor => reshape(x, [x.shape[0], -1]);
