// Differentiable per-channel affine map with an optional channel gather, and the named input preprocessings
// of the pretrained loss networks built on it. Every network in this project takes RGB in 0..255.
import type { Tensor } from '../autograd/tensor.js';
import { channelAffineBackward, channelAffineForward } from '../kernels/channel-affine.js';
import { check, recordOp } from './check.js';

/**
 * y[n,c] = scale[c] · x[n, perm[c]] + shift[c] for x [N, C, ...] (any trailing dims). `perm` defaults to the
 * identity; it may reorder channels (RGB → BGR: [2,1,0]) and, more generally, pick any input channel for
 * each output channel (repeats allowed: [0,0,0] makes 3 channels of one), so the output has perm.length channels.
 */
export function channelAffine(x: Tensor, scale: readonly number[], shift: readonly number[], perm?: readonly number[]): Tensor {
  const op = 'channelAffine';
  const src = perm ?? scale.map((_, c) => c);
  const named = { x, scale: [scale.length], shift: [shift.length], ...(perm ? { perm: [perm.length] } : {}) };
  check(x.shape.length >= 2, op, 'x must have at least 2 dimensions (N,C,...)', named);
  const C = x.shape[1];
  check(
    src.length >= 1 && scale.length === src.length && shift.length === src.length,
    op,
    perm ? 'scale, shift and perm must have one entry per output channel' : 'scale and shift must have one entry per channel',
    named,
  );
  if (!perm) check(scale.length === C, op, `scale and shift must have one entry per channel (${C})`, named);
  else {
    const bad = perm.findIndex((j) => !(Number.isInteger(j) && j >= 0 && j < C));
    check(bad < 0, op, `perm[${bad}] = ${perm[bad]} is not a channel of x (0..${C - 1})`, named);
  }
  const finite = [...scale, ...shift].every(Number.isFinite);
  check(finite, op, 'scale and shift must be finite numbers', named);
  const gpu = x.gpu;
  const y = channelAffineForward(gpu, x.raw, scale, shift, src);
  return recordOp(op, [x], y, (dy) => [channelAffineBackward(gpu, x.shape, dy, scale, src)]);
}

// ---- input preprocessing of pretrained networks ---------------------------------------------------------

/**
 * What a weight file's first layer expects, named as in the safetensors `__metadata__.input` of this project's
 * weight files:
 * - `rgb01_imagenet_norm` (torchvision): RGB scaled to [0,1], then (x − [0.485,0.456,0.406]) / [0.229,0.224,0.225];
 * - `bgr255_mean_sub` (Caffe / Keras VGG): BGR order, 0..255, minus [103.939,116.779,123.68] (B,G,R).
 */
export type Preprocess = 'rgb01_imagenet_norm' | 'bgr255_mean_sub';

export const PREPROCESS_NAMES: readonly Preprocess[] = ['rgb01_imagenet_norm', 'bgr255_mean_sub'];

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];
const CAFFE_MEAN_BGR = [103.939, 116.779, 123.68];

/** channelAffine parameters mapping RGB 0..255 to the named input. */
export function preprocessParams(p: Preprocess): { scale: number[]; shift: number[]; perm: number[] } {
  switch (p) {
    case 'rgb01_imagenet_norm':
      // (x/255 − m)/s = x · 1/(255 s) − m/s
      return { scale: IMAGENET_STD.map((s) => 1 / (255 * s)), shift: IMAGENET_MEAN.map((m, c) => -m / IMAGENET_STD[c]), perm: [0, 1, 2] };
    case 'bgr255_mean_sub':
      return { scale: [1, 1, 1], shift: CAFFE_MEAN_BGR.map((m) => -m), perm: [2, 1, 0] };
  }
}

/**
 * The preprocessing named by a metadata value; only its leading token counts ("rgb01_imagenet_norm, 224x224 ..."
 * is `rgb01_imagenet_norm`). Throws on an unknown name, listing the known ones.
 */
export function parsePreprocess(value: string): Preprocess {
  const token = value.trim().split(/[\s,;:()]+/)[0] ?? '';
  const p = PREPROCESS_NAMES.find((n) => n === token);
  if (!p) throw new Error(`unknown input preprocessing "${value}" (known: ${PREPROCESS_NAMES.join(', ')})`);
  return p;
}

/** RGB 0..255 [N,3,H,W] → the input the weights expect, differentiably. */
export function preprocessImage(x: Tensor, p: Preprocess): Tensor {
  check(x.shape.length === 4 && x.shape[1] === 3, 'preprocess', `input must be RGB images [N,3,H,W] with values in 0..255 (${p})`, { x });
  const { scale, shift, perm } = preprocessParams(p);
  return channelAffine(x, scale, shift, perm);
}
