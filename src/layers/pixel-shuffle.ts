// pixelShuffle (PyTorch F.pixel_shuffle): [N, C·r², H, W] → [N, C, H·r, W·r], the sub-pixel convolution's
// rearrangement (ESPCN, Shi et al. 2016): an upsampling whose convolution runs at the low resolution.
import { ShapeError } from '../gpu/errors.js';
import type { Tensor } from '../autograd/tensor.js';
import { pixelShuffleBackward, pixelShuffleForward } from '../kernels/pixel-shuffle.js';
import { check, checkRank, recordOp } from './check.js';

export function pixelShuffle(x: Tensor, r: number): Tensor {
  const op = 'pixelShuffle';
  checkRank(op, 'x', x, 4);
  if (!(Number.isInteger(r) && r >= 1)) throw new ShapeError(`${op}: the factor must be a positive integer; got ${r}`);
  check(x.shape[1] % (r * r) === 0, op, `channels must be a multiple of r² = ${r * r}`, { x });
  const gpu = x.gpu;
  return recordOp(op, [x], pixelShuffleForward(gpu, x.raw, r), (dy) => [pixelShuffleBackward(gpu, x.shape, dy, r)]);
}
