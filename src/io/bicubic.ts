// MATLAB-compatible bicubic `imresize` and a Gaussian blur, on the CPU in float64: the reference for the GPU version
// (kernels/bicubic.ts, layers/resize.ts) and what the SR evaluation uses to make its inputs.
//
// MATLAB's imresize(A, scale, 'bicubic') (imresize.m, `contributions`), reproduced here term by term:
//  * Keys' cubic kernel with a = −0.5 (`cubic`), support |x| < 2;
//  * output length `ceil(in · scale)`; output index x = 1..out maps to input coordinate
//    `u = x / scale + 0.5 · (1 − 1 / scale)` (1-based);
//  * when downscaling (scale < 1) with antialiasing (the default), the kernel is widened:
//    `h(x) = scale · cubic(scale · x)`, kernel width 4 / scale; otherwise h = cubic, width 4;
//  * taps `left = floor(u − width / 2)`, then `P = ceil(width) + 2` consecutive indices, weights `h(u − index)`
//    normalised to sum to 1; out-of-range indices are CLAMPED to [1, in] (edge replication: MATLAB's
//    "replicating end-points"). Symmetric mirroring would not reproduce MATLAB (see data/README.md).
//  * separable: one 1-D pass per dimension, the dimension with the smaller scale first (MATLAB sorts the
//    scales; on a tie, rows/height before columns/width);
//  * for uint8 images (option `uint8`) every pass is rounded half away from zero and clipped to 0..255, as
//    MATLAB's uint8 intermediate does.
// With integer factors 2, 4, 8 every weight is a dyadic rational with few bits and the weights sum exactly to 1,
// so these sums are exact in float64 and (for ×2, ×4) in float32 as well: the GPU version can be bit-exact.
import type { Image } from './image.js';

/** Keys' cubic convolution kernel with a = −0.5, written as MATLAB's imresize writes it. */
export function cubic(x: number): number {
  const a = Math.abs(x);
  const a2 = a * a;
  const a3 = a2 * a;
  return (1.5 * a3 - 2.5 * a2 + 1) * (a <= 1 ? 1 : 0) + (-0.5 * a3 + 2.5 * a2 - 4 * a + 2) * (1 < a && a <= 2 ? 1 : 0);
}

/** A 1-D linear resampling: output o = Σ_k weights[o·taps + k] · input[indices[o·taps + k]] (0-based, in range). */
export interface Contributions {
  inSize: number;
  outSize: number;
  taps: number;
  indices: Int32Array;
  weights: Float64Array;
}

/** MATLAB imresize's output length for a scale factor: ceil(in · scale). */
export function imresizeOutSize(inSize: number, scale: number): number {
  return Math.ceil(inSize * scale);
}

/** MATLAB's `contributions(in_length, out_length, scale, @cubic, 4, antialiasing)`, with indices made 0-based. */
export function bicubicContributions(inSize: number, outSize: number, scale: number, antialias = true): Contributions {
  if (!(inSize >= 1 && outSize >= 1 && Number.isInteger(inSize) && Number.isInteger(outSize))) {
    throw new Error(`imresize: invalid sizes ${inSize} → ${outSize}`);
  }
  if (!(scale > 0 && Number.isFinite(scale))) throw new Error(`imresize: invalid scale ${scale}`);
  const aa = scale < 1 && antialias;
  const width = aa ? 4 / scale : 4;
  const h = aa ? (x: number) => scale * cubic(scale * x) : cubic;
  const taps = Math.ceil(width) + 2;
  const indices = new Int32Array(outSize * taps);
  const weights = new Float64Array(outSize * taps);
  for (let o = 0; o < outSize; o++) {
    const x = o + 1;
    const u = x / scale + 0.5 * (1 - 1 / scale);
    const left = Math.floor(u - width / 2);
    let sum = 0;
    for (let k = 0; k < taps; k++) {
      const w = h(u - (left + k));
      weights[o * taps + k] = w;
      sum += w;
    }
    for (let k = 0; k < taps; k++) {
      weights[o * taps + k] /= sum;
      indices[o * taps + k] = Math.min(Math.max(1, left + k), inSize) - 1;
    }
  }
  return { inSize, outSize, taps, indices, weights };
}

/** Normalised 1-D Gaussian exp(−x²/2σ²), x = −radius..radius. Default radius ⌈3σ⌉ (7 taps for σ = 1). */
export function gaussianWeights(sigma: number, radius = Math.ceil(3 * sigma)): Float64Array {
  if (!(sigma > 0)) throw new Error(`gaussianBlur: sigma must be positive, got ${sigma}`);
  if (!(Number.isInteger(radius) && radius >= 0)) throw new Error(`gaussianBlur: radius must be a non-negative integer, got ${radius}`);
  const g = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) sum += g[i + radius] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < g.length; i++) g[i] /= sum;
  return g;
}

/** A same-size Gaussian filter as a resampling; borders replicate the edge pixel (MATLAB imgaussfilt's default). */
export function gaussianContributions(size: number, sigma: number, radius = Math.ceil(3 * sigma)): Contributions {
  const g = gaussianWeights(sigma, radius);
  const taps = g.length;
  const indices = new Int32Array(size * taps);
  const weights = new Float64Array(size * taps);
  for (let o = 0; o < size; o++) {
    for (let k = 0; k < taps; k++) {
      indices[o * taps + k] = Math.min(Math.max(0, o - radius + k), size - 1);
      weights[o * taps + k] = g[k];
    }
  }
  return { inSize: size, outSize: size, taps, indices, weights };
}

/** floor(v + 0.5) clipped to 0..255: MATLAB's conversion of a double result to uint8 (NaN → 0). */
export const roundUint8 = (v: number): number => (v >= 0.5 ? (v >= 255 ? 255 : Math.floor(v + 0.5)) : 0);

/**
 * One 1-D pass over planes of `h × w` (row-major), along the height (axis 0) or the width (axis 1).
 * Returns planes of (c.outSize × w) or (h × c.outSize).
 */
export function resampleAxis(src: ArrayLike<number>, planes: number, h: number, w: number, axis: 0 | 1, c: Contributions, uint8 = false): Float64Array {
  const L = axis === 0 ? h : w;
  if (c.inSize !== L) throw new Error(`imresize: contributions for length ${c.inSize} applied to length ${L}`);
  const oh = axis === 0 ? c.outSize : h;
  const ow = axis === 0 ? w : c.outSize;
  const out = new Float64Array(planes * oh * ow);
  const { taps, indices, weights } = c;
  for (let p = 0; p < planes; p++) {
    const si = p * h * w;
    const so = p * oh * ow;
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        const o = axis === 0 ? y : x;
        let acc = 0;
        for (let k = 0; k < taps; k++) {
          const j = indices[o * taps + k];
          acc += weights[o * taps + k] * src[axis === 0 ? si + j * w + x : si + y * w + j];
        }
        out[so + y * ow + x] = uint8 ? roundUint8(acc) : acc;
      }
    }
  }
  return out;
}

export interface ImresizeOptions {
  /** Widen the kernel when downscaling (MATLAB's 'Antialiasing', default true). */
  antialias?: boolean;
  /** Treat the data as a MATLAB uint8 image: round and clip to 0..255 after every pass (default false: double). */
  uint8?: boolean;
}

/** Output size and per-dimension scales, as MATLAB derives them from a scale factor or an output size. */
export type ResizeTarget = { scale: number } | { width: number; height: number };

export interface ResizePlan {
  outH: number;
  outW: number;
  /** The 1-D passes in MATLAB's order (smaller scale first; height first on a tie). */
  passes: { axis: 0 | 1; c: Contributions }[];
}

export function imresizePlan(h: number, w: number, target: ResizeTarget, antialias = true): ResizePlan {
  if (!(h >= 1 && w >= 1)) throw new Error(`imresize: cannot resize an empty ${w}x${h} image`);
  let sh: number, sw: number, outH: number, outW: number;
  if ('scale' in target) {
    sh = sw = target.scale;
    if (!(sh > 0 && Number.isFinite(sh))) throw new Error(`imresize: invalid scale ${sh}`);
    outH = imresizeOutSize(h, sh);
    outW = imresizeOutSize(w, sw);
  } else {
    ({ height: outH, width: outW } = target);
    if (!(Number.isInteger(outH) && Number.isInteger(outW) && outH >= 1 && outW >= 1)) {
      throw new Error(`imresize: invalid output size ${outW}x${outH}`);
    }
    sh = outH / h;
    sw = outW / w;
  }
  const passes: ResizePlan['passes'] = [];
  const hp = { axis: 0 as const, c: bicubicContributions(h, outH, sh, antialias) };
  const wp = { axis: 1 as const, c: bicubicContributions(w, outW, sw, antialias) };
  if (sw < sh) passes.push(wp, hp);
  else passes.push(hp, wp);
  return { outH, outW, passes };
}

/** MATLAB imresize(…, 'bicubic') of `planes` planes of h × w; returns float64 planes of outH × outW. */
export function imresizePlanes(
  data: ArrayLike<number>,
  planes: number,
  h: number,
  w: number,
  target: ResizeTarget,
  opts: ImresizeOptions = {},
): { data: Float64Array; height: number; width: number } {
  const plan = imresizePlan(h, w, target, opts.antialias ?? true);
  let cur: ArrayLike<number> = data;
  let ch = h;
  let cw = w;
  for (const { axis, c } of plan.passes) {
    cur = resampleAxis(cur, planes, ch, cw, axis, c, opts.uint8 ?? false);
    if (axis === 0) ch = c.outSize;
    else cw = c.outSize;
  }
  return { data: cur instanceof Float64Array ? cur : Float64Array.from(cur), height: ch, width: cw };
}

/** MATLAB `imresize(img, scale, 'bicubic')` (or to an output size) of an RGB image. */
export function imresize(img: Image, target: ResizeTarget, opts: ImresizeOptions = {}): Image {
  const r = imresizePlanes(img.data, 3, img.height, img.width, target, opts);
  return { width: r.width, height: r.height, data: Float32Array.from(r.data) };
}

export interface GaussianBlurOptions {
  /** Half-width of the kernel in pixels (default ⌈3σ⌉). */
  radius?: number;
  uint8?: boolean;
}

/** Separable Gaussian blur (rows first, then columns), edge-replicated borders, float64 accumulation. */
export function gaussianBlurPlanes(data: ArrayLike<number>, planes: number, h: number, w: number, sigma: number, opts: GaussianBlurOptions = {}): Float64Array {
  const a = resampleAxis(data, planes, h, w, 0, gaussianContributions(h, sigma, opts.radius), opts.uint8);
  return resampleAxis(a, planes, h, w, 1, gaussianContributions(w, sigma, opts.radius), opts.uint8);
}

/** Gaussian blur of an RGB image (the SR training data's σ = 1.0 blur before bicubic downsampling). */
export function gaussianBlur(img: Image, sigma = 1, opts: GaussianBlurOptions = {}): Image {
  return { width: img.width, height: img.height, data: Float32Array.from(gaussianBlurPlanes(img.data, 3, img.height, img.width, sigma, opts)) };
}
