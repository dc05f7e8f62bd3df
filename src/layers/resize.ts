// Resampling ops on [N, C, H, W] tensors: MATLAB-compatible bicubic imresize and a Gaussian blur, separable, on the
// GPU (kernels/bicubic.ts) with the weights computed on the CPU in float64 (io/bicubic.ts).
// Both are linear, so they are differentiable: the gradient is the resampling by the transposed matrices (a
// gather too). With `uint8` (MATLAB's rounding to uint8 after each pass) the output is piecewise constant in x:
// it records no gradient (the result is a constant, like an image read from a file).
import { Tensor } from '../autograd/tensor.js';
import { ShapeError } from '../gpu/errors.js';
import { gaussianContributions, imresizePlan, type ImresizeOptions, type ResizeTarget } from '../io/bicubic.js';
import { resampleSeparable, type ResampleSpec } from '../kernels/bicubic.js';
import { check, checkRank, recordOp } from './check.js';

type Pass = { axis: 2 | 3; m: ResampleSpec };

/** The transposed 1-D resampling (inSize ↔ outSize) in ELL form; duplicate (output, input) pairs are merged and
 *  short rows padded with weight 0 at index 0. */
export function transposeResample(m: ResampleSpec): ResampleSpec {
  const rows: Map<number, number>[] = Array.from({ length: m.inSize }, () => new Map());
  for (let o = 0; o < m.outSize; o++) {
    for (let k = 0; k < m.taps; k++) {
      const j = m.indices[o * m.taps + k];
      const w = m.weights[o * m.taps + k];
      rows[j].set(o, (rows[j].get(o) ?? 0) + w);
    }
  }
  const taps = Math.max(1, ...rows.map((r) => r.size));
  const indices = new Int32Array(m.inSize * taps);
  const weights = new Float64Array(m.inSize * taps);
  rows.forEach((r, j) => {
    let k = 0;
    for (const [o, w] of r) {
      indices[j * taps + k] = o;
      weights[j * taps + k] = w;
      k++;
    }
  });
  return { inSize: m.outSize, outSize: m.inSize, taps, indices, weights };
}

function separable(op: string, x: Tensor, passes: Pass[], round: boolean): Tensor {
  const gpu = x.gpu;
  const y = resampleSeparable(gpu, x.raw, passes, round, op);
  if (round) return new Tensor(gpu, y);
  return recordOp(op, [x], y, (dy) => [
    resampleSeparable(
      gpu,
      dy,
      [...passes].reverse().map(({ axis, m }) => ({ axis, m: transposeResample(m) })),
      false,
      `${op} dx`,
    ),
  ]);
}

/**
 * MATLAB `imresize(x, scale, 'bicubic')` (or to { width, height }) of every plane of x [N, C, H, W]: Keys cubic
 * a = −0.5, antialiasing when downscaling, clamped borders, height first on equal scales; `uint8` rounds and clips
 * after each pass as MATLAB does for uint8 images (bit-exact with io/bicubic.ts's `imresize` for ×1/4 and ×4).
 */
export function bicubicResize2d(x: Tensor, target: ResizeTarget, opts: ImresizeOptions = {}): Tensor {
  const op = 'bicubicResize2d';
  checkRank(op, 'x', x, 4);
  const [, , H, W] = x.shape;
  check(H >= 1 && W >= 1, op, 'input planes must not be empty', { x });
  let plan;
  try {
    plan = imresizePlan(H, W, target, opts.antialias ?? true);
  } catch (e) {
    throw new ShapeError(`${op}: ${(e as Error).message.replace(/^imresize: /, '')}; x [${x.shape.join(',')}]`);
  }
  const passes: Pass[] = plan.passes.filter(({ c }) => !(c.inSize === c.outSize && isIdentity(c))).map(({ axis, c }) => ({ axis: axis === 0 ? 2 : 3, m: c }));
  return separable(op, x, passes, opts.uint8 ?? false);
}

/** A resampling that copies its input (scale 1: MATLAB's cubic at integer offsets is 1 at 0, 0 elsewhere). */
function isIdentity(c: ResampleSpec): boolean {
  for (let o = 0; o < c.outSize; o++) {
    for (let k = 0; k < c.taps; k++) {
      const w = c.weights[o * c.taps + k];
      if (w !== 0 && !(w === 1 && c.indices[o * c.taps + k] === o)) return false;
    }
  }
  return true;
}

export interface GaussianBlur2dOptions {
  /** Kernel half-width in pixels; default ⌈3σ⌉ (7 taps for σ = 1). */
  radius?: number;
}

/** Separable Gaussian blur of every plane of x [N, C, H, W] (normalised weights, edge-replicated borders). */
export function gaussianBlur2d(x: Tensor, sigma = 1, opts: GaussianBlur2dOptions = {}): Tensor {
  const op = 'gaussianBlur2d';
  checkRank(op, 'x', x, 4);
  if (!(sigma > 0 && Number.isFinite(sigma))) throw new ShapeError(`${op}: sigma must be positive, got ${sigma}; x [${x.shape.join(',')}]`);
  const r = opts.radius ?? Math.ceil(3 * sigma);
  if (!(Number.isInteger(r) && r >= 0)) throw new ShapeError(`${op}: radius must be a non-negative integer, got ${r}; x [${x.shape.join(',')}]`);
  const [, , H, W] = x.shape;
  check(H >= 1 && W >= 1, op, 'input planes must not be empty', { x });
  return separable(op, x, [
    { axis: 2, m: gaussianContributions(H, sigma, r) },
    { axis: 3, m: gaussianContributions(W, sigma, r) },
  ], false);
}
