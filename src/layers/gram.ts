// The Gram matrix of feature maps (the paper's style representation):
// G[n,c,c'] = Σ_{h,w} F[n,c,h,w]·F[n,c',h,w] / (C·H·W), batched over n: x [N,C,H,W] → [N,C,C].
import type { Tensor } from '../autograd/tensor.js';
import { gramBackward, gramForward } from '../kernels/gram.js';
import { checkRank, recordOp } from './check.js';

export function gram(x: Tensor): Tensor {
  checkRank('gram', 'x', x, 4);
  const gpu = x.gpu;
  const [, C, H, W] = x.shape;
  const scale = 1 / (C * H * W);
  const y = gramForward(gpu, x.raw, scale);
  return recordOp('gram', [x], y, (dy) => [gramBackward(gpu, x.raw, dy, scale)]);
}
