// Differentiable spatial ops on NCHW tensors: reflection padding, cropping, nearest upsampling, max and
// global average pooling, concatenation; and parameter-free module wrappers for them.
import type { Tensor } from '../autograd/tensor.js';
import { ShapeError } from '../gpu/errors.js';
import { centerCrop2dBackward, centerCrop2dForward, reflectionPad2dBackward, reflectionPad2dForward, type Sides } from '../kernels/pad.js';
import { avgPool2dGlobalBackward, avgPool2dGlobalForward, maxPool2dBackward, maxPool2dForward } from '../kernels/pool2d.js';
import { concatForward, sliceAlong, upsampleNearest2dBackward, upsampleNearest2dForward } from '../kernels/spatial.js';
import { check, checkRank, recordOp } from './check.js';

/** A number for all four sides, or [left, right, top, bottom] (PyTorch's padding tuple order). */
export type SidesArg = number | readonly [number, number, number, number];

function sides(op: string, what: string, v: SidesArg): Sides {
  const s: Sides = typeof v === 'number' ? [v, v, v, v] : v;
  if (s.length !== 4 || !s.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ShapeError(`${op}: ${what} must be a non-negative integer or [left, right, top, bottom] of them; got ${JSON.stringify(v)}`);
  }
  return [s[0], s[1], s[2], s[3]];
}

const fmtSides = (s: Sides) => `[left ${s[0]}, right ${s[1]}, top ${s[2]}, bottom ${s[3]}]`;

/** PyTorch ReflectionPad2d: the edge is not repeated; every pad must be smaller than its dimension.
 *  The gradient of each output pixel is folded back onto the input pixel it was copied from. */
export function reflectionPad2d(x: Tensor, pad: SidesArg): Tensor {
  const op = 'reflectionPad2d';
  checkRank(op, 'x', x, 4);
  const s = sides(op, 'pad', pad);
  const [, , H, W] = x.shape;
  check(s[0] < W && s[1] < W && s[2] < H && s[3] < H, op, `pad ${fmtSides(s)} must be smaller than the input's width (left, right) and height (top, bottom)`, { x });
  const gpu = x.gpu;
  const y = reflectionPad2dForward(gpu, x.raw, s);
  return recordOp(op, [x], y, (dy) => [reflectionPad2dBackward(gpu, x.shape, dy, s)]);
}

/** Removes crop pixels from each side (the paper's residual blocks crop 2 per side on the identity path). */
export function centerCrop2d(x: Tensor, crop: SidesArg): Tensor {
  const op = 'centerCrop2d';
  checkRank(op, 'x', x, 4);
  const s = sides(op, 'crop', crop);
  const [, , H, W] = x.shape;
  check(s[0] + s[1] < W && s[2] + s[3] < H, op, `crop ${fmtSides(s)} must leave at least one row and one column`, { x });
  const gpu = x.gpu;
  const y = centerCrop2dForward(gpu, x.raw, s);
  return recordOp(op, [x], y, (dy) => [centerCrop2dBackward(gpu, x.shape, dy, s)]);
}

/** PyTorch F.interpolate(x, scale_factor=scale, mode='nearest') for an integer scale. */
export function upsampleNearest2d(x: Tensor, scale = 2): Tensor {
  const op = 'upsampleNearest2d';
  checkRank(op, 'x', x, 4);
  if (!(Number.isInteger(scale) && scale >= 1)) throw new ShapeError(`${op}: scale must be a positive integer; got ${scale}`);
  const gpu = x.gpu;
  const y = upsampleNearest2dForward(gpu, x.raw, scale);
  return recordOp(op, [x], y, (dy) => [upsampleNearest2dBackward(gpu, x.shape, dy, scale)]);
}

export interface MaxPool2dOptions {
  kernelSize: number;
  /** Defaults to kernelSize. */
  stride?: number;
  padding?: number;
  ceilMode?: boolean;
}

/** PyTorch's pooling output size (dilation 1): with ceilMode the last window must start inside the input
 *  or the left padding. */
export function poolOutputSize(size: number, kernelSize: number, stride: number, padding: number, ceilMode: boolean): number {
  const span = size + 2 * padding - kernelSize;
  let out = Math.floor((span + (ceilMode ? stride - 1 : 0)) / stride) + 1;
  if (ceilMode && (out - 1) * stride >= size + padding) out--;
  return out;
}

/** PyTorch MaxPool2d (square kernel, dilation 1). Padding is −inf; the gradient goes to the first maximum. */
export function maxPool2d(x: Tensor, opts: MaxPool2dOptions): Tensor {
  const op = 'maxPool2d';
  checkRank(op, 'x', x, 4);
  const { kernelSize: k, stride: s = k, padding: p = 0, ceilMode = false } = opts;
  const ints = Number.isInteger(k) && k >= 1 && Number.isInteger(s) && s >= 1 && Number.isInteger(p) && p >= 0;
  if (!ints) throw new ShapeError(`${op}: kernelSize and stride must be positive integers and padding a non-negative integer; got kernelSize ${k}, stride ${s}, padding ${p}`);
  if (2 * p > k) throw new ShapeError(`${op}: padding must be at most half the kernel size; got padding ${p}, kernelSize ${k}`);
  const [, , H, W] = x.shape;
  const out: [number, number] = [poolOutputSize(H, k, s, p, ceilMode), poolOutputSize(W, k, s, p, ceilMode)];
  check(out[0] >= 1 && out[1] >= 1, op, `kernelSize ${k}, stride ${s}, padding ${p} give an empty output [${out[0]},${out[1]}]`, { x });
  const gpu = x.gpu;
  const geom = { kernelSize: k, stride: s, padding: p };
  const { y, argmax } = maxPool2dForward(gpu, x.raw, geom, out);
  return recordOp(op, [x], y, (dy) => [maxPool2dBackward(gpu, x.shape, dy, argmax, geom)], () => gpu.release(argmax));
}

/** The mean of each plane: [N,C,H,W] → [N,C,1,1] (PyTorch AdaptiveAvgPool2d(1)). */
export function avgPool2dGlobal(x: Tensor): Tensor {
  const op = 'avgPool2dGlobal';
  checkRank(op, 'x', x, 4);
  check(x.shape[2] * x.shape[3] >= 1, op, 'x must have at least one pixel', { x });
  const gpu = x.gpu;
  const y = avgPool2dGlobalForward(gpu, x.raw);
  return recordOp(op, [x], y, (dy) => [avgPool2dGlobalBackward(gpu, x.shape, dy)]);
}

/** Concatenation along dim (negative counts from the end); shapes must agree on every other dim. */
export function concat(xs: readonly Tensor[], dim = 1): Tensor {
  const op = 'concat';
  if (xs.length === 0) throw new ShapeError(`${op}: needs at least one tensor`);
  const named = Object.fromEntries(xs.map((t, i) => [`x${i}`, t]));
  const rank = xs[0].shape.length;
  const d = dim < 0 ? dim + rank : dim;
  check(Number.isInteger(d) && d >= 0 && d < rank, op, `dim ${dim} is out of range for rank ${rank}`, named);
  const ok = xs.every((t) => t.shape.length === rank && t.shape.every((v, i) => i === d || v === xs[0].shape[i]));
  check(ok, op, `shapes must match except along dim ${d}`, named);
  const gpu = xs[0].gpu;
  const y = concatForward(
    gpu,
    xs.map((t) => t.raw),
    d,
  );
  const starts = xs.map((_, i) => xs.slice(0, i).reduce((a, t) => a + t.shape[d], 0));
  return recordOp(op, [...xs], y, (dy, needs) => xs.map((t, i) => (needs[i] ? sliceAlong(gpu, dy, d, starts[i], t.shape[d]) : null)));
}

// ---- parameter-free modules ---------------------------------------------------------------------------

export class ReflectionPad2d {
  constructor(readonly pad: SidesArg) {}
  forward(x: Tensor): Tensor {
    return reflectionPad2d(x, this.pad);
  }
}

export class CenterCrop2d {
  constructor(readonly crop: SidesArg) {}
  forward(x: Tensor): Tensor {
    return centerCrop2d(x, this.crop);
  }
}

export class UpsampleNearest2d {
  constructor(readonly scale = 2) {}
  forward(x: Tensor): Tensor {
    return upsampleNearest2d(x, this.scale);
  }
}

export class MaxPool2d {
  constructor(readonly opts: MaxPool2dOptions) {}
  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.opts);
  }
}

/** AdaptiveAvgPool2d(1). */
export class AvgPool2dGlobal {
  forward(x: Tensor): Tensor {
    return avgPool2dGlobal(x);
  }
}
