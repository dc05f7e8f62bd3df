// Float64 references for the affine bilinear warp and the warp-consistency loss, from the definitions: each
// output pixel is a weighted sum of at most four input pixels, weights (1 − |sx − ix|)(1 − |sy − iy|) for the taps
// within one pixel of the sample point (zero padding); the VJP scatters each output gradient back with those weights.
import type { RefOut } from '../helpers/opcheck.js';

export type Map6 = readonly number[];

/** The taps of sample point (sx, sy) in an H×W plane: flat index and weight (zero padding: outside taps dropped). */
function taps(sx: number, sy: number, H: number, W: number, border: boolean): [number, number][] {
  if (border) {
    sx = Math.min(Math.max(sx, 0), W - 1);
    sy = Math.min(Math.max(sy, 0), H - 1);
  }
  const x0 = Math.floor(sx);
  const y0 = Math.floor(sy);
  const out: [number, number][] = [];
  for (const iy of [y0, y0 + 1])
    for (const ix of [x0, x0 + 1]) {
      const w = Math.max(0, 1 - Math.abs(sx - ix)) * Math.max(0, 1 - Math.abs(sy - iy));
      if (w > 0 && ix >= 0 && iy >= 0 && ix < W && iy < H) out.push([iy * W + ix, w]);
    }
  return out;
}

/** Warp of x [N,C,H,W] to [N,C,Ho,Wo] by one map per sample. */
export function warpRef(shape: readonly number[], maps: readonly Map6[], Ho: number, Wo: number, border = false) {
  const [N, C, H, W] = shape;
  // For each output element, its taps as absolute input indices (the op is linear in x).
  const rows: [number, number][][] = [];
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let oy = 0; oy < Ho; oy++)
        for (let ox = 0; ox < Wo; ox++) {
          const m = maps[n];
          const base = (n * C + c) * H * W;
          rows.push(taps(m[0] * ox + m[1] * oy + m[2], m[3] * ox + m[4] * oy + m[5], H, W, border).map(([j, w]) => [base + j, w]));
        }
  return {
    ref: (x: Float64Array): RefOut => ({ y: Float64Array.from(rows, (r) => r.reduce((s, [j, w]) => s + w * x[j], 0)), shape: [N, C, Ho, Wo] }),
    vjp: (x: Float64Array, dy: Float64Array): Float64Array => {
      const dx = new Float64Array(x.length);
      rows.forEach((r, i) => r.forEach(([j, w]) => (dx[j] += w * dy[i])));
      return dx;
    },
  };
}

/** Σ mask·(a − warp(b))² / Σ mask over [N,C,H,W], mask 1 where the sample point lies inside the plane. */
export function consistencyRef(shape: readonly number[], maps: readonly Map6[]) {
  const [N, C, H, W] = shape;
  const warp = warpRef(shape, maps, H, W);
  const mask = new Float64Array(N * C * H * W);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const m = maps[n];
          const sx = m[0] * x + m[1] * y + m[2];
          const sy = m[3] * x + m[4] * y + m[5];
          mask[((n * C + c) * H + y) * W + x] = sx >= 0 && sy >= 0 && sx <= W - 1 && sy <= H - 1 ? 1 : 0;
        }
  const count = mask.reduce((s, v) => s + v, 0);
  const diff = (a: Float64Array, b: Float64Array) => {
    const wb = warp.ref(b).y;
    return Float64Array.from(a, (v, i) => mask[i] * (v - wb[i]));
  };
  return {
    ref: (a: Float64Array, b: Float64Array): RefOut => ({ y: Float64Array.of(diff(a, b).reduce((s, d) => s + d * d, 0) / count), shape: [1] }),
    /** Gradients w.r.t. a and b of dy·loss. */
    vjp: (a: Float64Array, b: Float64Array, dy: number): [Float64Array, Float64Array] => {
      const da = diff(a, b).map((d) => (2 * dy * d) / count);
      return [da, warp.vjp(b, da.map((v) => -v))];
    },
  };
}
