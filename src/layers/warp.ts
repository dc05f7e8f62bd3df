// Differentiable resampling of images by known affine motions, and the warp-consistency loss built on it.
// A video's frames under a camera pan, zoom or small rotation are (up to what enters the frame) one image warped by
// an affine map of pixel coordinates; stylized frames should move the same way. Wang et al. 2020 ("Consistent Video
// Style Transfer via Compound Regularization") train for it: the network's output for a warped (and noisy) input
// should be the warped output, compared where the warp sees inside the frame.
import { record, Tensor } from '../autograd/tensor.js';
import { affineWarpBackward, affineWarpForward } from '../kernels/warp.js';
import { check } from './check.js';
import { mul, mulScalar } from './elementwise.js';
import { mseLoss } from './loss.js';

/** A 2-D affine map of pixel coordinates, (x, y) ↦ (a·x + b·y + c, d·x + e·y + f); pixel centres are integers. */
export type Affine = readonly [a: number, b: number, c: number, d: number, e: number, f: number];

export const IDENTITY: Affine = [1, 0, 0, 0, 1, 0];

/** p ∘ q: the map x ↦ p(q(x)). */
export function composeAffine(p: Affine, q: Affine): Affine {
  return [
    p[0] * q[0] + p[1] * q[3],
    p[0] * q[1] + p[1] * q[4],
    p[0] * q[2] + p[1] * q[5] + p[2],
    p[3] * q[0] + p[4] * q[3],
    p[3] * q[1] + p[4] * q[4],
    p[3] * q[2] + p[4] * q[5] + p[5],
  ];
}

export function invertAffine(m: Affine): Affine {
  const det = m[0] * m[4] - m[1] * m[3];
  if (!(Math.abs(det) > 1e-12) || !Number.isFinite(det)) throw new Error(`invertAffine: the map [${m.join(', ')}] is not invertible`);
  const [a, b, d, e] = [m[4] / det, -m[1] / det, -m[3] / det, m[0] / det];
  return [a, b, -(a * m[2] + b * m[5]), d, e, -(d * m[2] + e * m[5])];
}

/** A motion about the point (cx, cy): scaled by `scale`, rotated by `angle` radians, then shifted by (dx, dy). */
export interface Motion {
  dx?: number;
  dy?: number;
  scale?: number;
  angle?: number;
}

/** The map of a motion about (cx, cy): p ↦ c + s·R(angle)·(p − c) + (dx, dy). */
export function affineAbout(cx: number, cy: number, m: Motion): Affine {
  const s = m.scale ?? 1;
  const [cos, sin] = [Math.cos(m.angle ?? 0) * s, Math.sin(m.angle ?? 0) * s];
  return [cos, -sin, cx - cos * cx + sin * cy + (m.dx ?? 0), sin, cos, cy - sin * cx - cos * cy + (m.dy ?? 0)];
}

export interface WarpOptions {
  /** Output [height, width] (default: the input's). */
  size?: readonly [number, number];
  /** Taps outside the source: 'zeros' (default; differentiable) or 'border' (sample points clamped into the source,
   *  as for a camera's view, which never shows black; forward only). */
  padding?: 'zeros' | 'border';
}

/**
 * y[n, :, oy, ox] = x[n] sampled bilinearly at theta_n(ox, oy), for x [N, C, H, W] and one map per sample (or one
 * for all). Differentiable w.r.t. x with zero padding; the maps are constants.
 */
export function affineWarp(x: Tensor, theta: Affine | readonly Affine[], opts: WarpOptions = {}): Tensor {
  const op = 'affineWarp';
  check(x.shape.length === 4, op, 'x must be [N, C, H, W]', { x });
  const [N, , H, W] = x.shape;
  const maps = (typeof theta[0] === 'number' ? Array.from({ length: N }, () => theta as Affine) : (theta as readonly Affine[])) as readonly Affine[];
  check(maps.length === N, op, `one map per sample (${N}) or one for all, got ${maps.length}`, { x });
  check(maps.every((m) => m.length === 6 && m.every(Number.isFinite)), op, 'maps must be 6 finite numbers each', { x });
  const [Ho, Wo] = opts.size ?? [H, W];
  check(Number.isInteger(Ho) && Number.isInteger(Wo) && Ho >= 1 && Wo >= 1, op, `output size must be positive integers, got ${Ho}×${Wo}`, { x });
  const border = opts.padding === 'border';
  check(!(border && x.requiresGrad), op, "padding 'border' has no backward: use 'zeros' where a gradient is needed", { x });
  const gpu = x.gpu;
  const t = gpu.upload(maps.flat(), [N, 6], 'affineWarp maps');
  const y = affineWarpForward(gpu, x.raw, t, Ho, Wo, border);
  let inv: ReturnType<typeof gpu.upload> | null = null;
  return record(
    op,
    [x],
    y,
    (dy) => {
      inv ??= gpu.upload(maps.flatMap((m) => invertAffine(m)), [N, 6], 'affineWarp inverse maps');
      return [affineWarpBackward(gpu, x.shape, dy, t, inv)];
    },
    // The maps live as long as the graph node (released at once when no gradient is recorded).
    () => {
      gpu.release(t);
      if (inv) gpu.release(inv);
    },
  );
}

/** [Ho·Wo]: 1 where theta's sample point lies inside an H×W source (the pixels a warp sees, all four taps inside), else 0. */
export function warpMask(theta: Affine, H: number, W: number, Ho = H, Wo = W): Float32Array {
  const m = new Float32Array(Ho * Wo);
  const eps = 1e-6;
  for (let y = 0; y < Ho; y++)
    for (let x = 0; x < Wo; x++) {
      const sx = theta[0] * x + theta[1] * y + theta[2];
      const sy = theta[3] * x + theta[4] * y + theta[5];
      m[y * Wo + x] = sx >= -eps && sy >= -eps && sx <= W - 1 + eps && sy <= H - 1 + eps ? 1 : 0;
    }
  return m;
}

/**
 * The warp-consistency loss: the mean over the pixels theta sees inside the frame (and over channels) of
 * (a − warp(b, theta))², for a = F(warp(x) + noise) and b = F(x). Differentiable w.r.t. a and b.
 */
export function warpConsistency(a: Tensor, b: Tensor, theta: readonly Affine[]): Tensor {
  check(a.shape.length === 4 && a.shape.join() === b.shape.join(), 'warpConsistency', 'a and b must be [N, C, H, W] of one shape', { a, b });
  const [N, C, H, W] = a.shape;
  const mask = new Float32Array(N * C * H * W);
  let seen = 0;
  theta.forEach((m, n) => {
    const plane = warpMask(m, H, W);
    for (let c = 0; c < C; c++) mask.set(plane, (n * C + c) * H * W);
    seen += C * plane.reduce((s, v) => s + v, 0);
  });
  const M = Tensor.from(a.gpu, mask, a.shape);
  // mse over every element, rescaled to the mean over the visible ones (0 when the warp sees nothing).
  return mulScalar(mseLoss(mul(a, M), mul(affineWarp(b, theta), M)), seen ? mask.length / seen : 0);
}
