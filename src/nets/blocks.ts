// Pieces the image-to-image networks (TransformerNet, SRNet) share.
import { isGradEnabled, type Tensor } from '../autograd/tensor.js';
import type { Gpu } from '../gpu/index.js';
import { relu } from '../layers/elementwise.js';
import type { Module } from '../layers/module.js';
import { BatchNorm2d, InstanceNorm2d } from '../layers/norm.js';

export type Norm = BatchNorm2d | InstanceNorm2d;
export type Free = (t: Tensor) => void;

export function makeNorm(gpu: Gpu, c: number, norm: 'batch' | 'instance'): Norm {
  return norm === 'batch' ? new BatchNorm2d(gpu, c) : new InstanceNorm2d(gpu, c, { affine: true });
}

/** relu(norm(x)), freeing x and the normalised tensor when they are not needed for backward. */
export function normRelu(norm: Norm, x: Tensor, free: Free): Tensor {
  const n = norm.forward(x);
  free(x);
  const y = relu(n);
  free(n);
  return y;
}

/** Without a graph to keep (inference), intermediate activations are freed as soon as they are consumed;
 *  the input itself belongs to the caller. */
export function freeIntermediates(net: Module, x: Tensor): Free {
  const inference = !isGradEnabled() || (!x.requiresGrad && net.parameters().every((p) => !p.requiresGrad));
  return (t) => {
    if (inference && t !== x) t.dispose();
  };
}
