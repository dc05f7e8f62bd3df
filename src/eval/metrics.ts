// Super-resolution metrics, float64 on the CPU, with the evaluation protocol of the SR literature (and of
// ../shared/PAPER.md): luma Y of ITU-R BT.601 ("studio swing", MATLAB rgb2ycbcr on doubles), kept in floating point;
// a border of `scale` pixels shaved; PSNR on the 0..255 scale; SSIM of Wang et al. 2004 (their ssim_index.m:
// 11×11 Gaussian window σ = 1.5, K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering, mean of the map, no
// downsampling). Also histogram matching, the paper's post-processing of SR outputs.
import type { Image } from '../io/image.js';

/** One channel, row-major, float64. */
export interface Plane {
  readonly width: number;
  readonly height: number;
  readonly data: Float64Array;
}

/** Y = 16 + 65.481 R + 128.553 G + 24.966 B with R, G, B in 0..1 (the image holds 0..255), not rounded. */
export function rgbToY(img: Image): Plane {
  const n = img.width * img.height;
  const d = img.data;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = 16 + (65.481 * d[i] + 128.553 * d[n + i] + 24.966 * d[2 * n + i]) / 255;
  return { width: img.width, height: img.height, data: out };
}

/**
 * The channel metrics are computed on. RGB images: Y (rgbToY). Greyscale images (`grey`: the file had one
 * channel, e.g. Set14's bridge) are evaluated on their grey values, which play the role of Y (what MATLAB
 * evaluation scripts do with a 2-D image); a colour result for a grey ground truth is reduced to grey by
 * BT.601 luma 0.299 R + 0.587 G + 0.114 B (= (Y − 16)·255/219, MATLAB rgb2gray), which is the value itself when
 * R = G = B.
 */
export function evalChannel(img: Image, grey = false): Plane {
  if (!grey) return rgbToY(img);
  const n = img.width * img.height;
  const d = img.data;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = d[i];
    const g = d[n + i];
    const b = d[2 * n + i];
    out[i] = r === g && g === b ? r : (65.481 * r + 128.553 * g + 24.966 * b) / 219;
  }
  return { width: img.width, height: img.height, data: out };
}

/** Drops `border` pixels on every side. */
export function shave(p: Plane, border: number): Plane {
  if (!(Number.isInteger(border) && border >= 0)) throw new Error(`shave: border must be a non-negative integer, got ${border}`);
  const width = p.width - 2 * border;
  const height = p.height - 2 * border;
  if (width < 1 || height < 1) throw new Error(`shave: a ${p.width}x${p.height} image has nothing left after shaving ${border} px`);
  const out = new Float64Array(width * height);
  for (let y = 0; y < height; y++) out.set(p.data.subarray((y + border) * p.width + border, (y + border) * p.width + border + width), y * width);
  return { width, height, data: out };
}

function sameSize(op: string, a: Plane, b: Plane): void {
  if (a.width !== b.width || a.height !== b.height) throw new Error(`${op}: images differ in size: ${a.width}x${a.height} and ${b.width}x${b.height}`);
}

/** 10·log10(peak² / MSE); Infinity for identical planes. */
export function psnr(a: Plane, b: Plane, peak = 255): number {
  sameSize('psnr', a, b);
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += (a.data[i] - b.data[i]) ** 2;
  const mse = s / a.data.length;
  return mse === 0 ? Infinity : 10 * Math.log10((peak * peak) / mse);
}

export interface SsimOptions {
  /** Window size (11) and Gaussian σ (1.5). */
  window?: number;
  sigma?: number;
  k1?: number;
  k2?: number;
  /** Dynamic range L (255). */
  range?: number;
}

/** The normalised 1-D Gaussian whose outer product is MATLAB's fspecial('gaussian', n, σ). */
function gauss1d(n: number, sigma: number): Float64Array {
  const g = new Float64Array(n);
  const c = (n - 1) / 2;
  let s = 0;
  for (let i = 0; i < n; i++) s += g[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
  return g.map((v) => v / s);
}

/**
 * 'valid' 2-D filtering with the separable window g⊗g (filter2(window, ·, 'valid')) of the five planes SSIM needs:
 * x, y, x², y², x·y. Returns them as one array of 5 planes of (h − n + 1) × (w − n + 1).
 */
function localMoments(x: Float64Array, y: Float64Array, w: number, h: number, g: Float64Array): { out: Float64Array; size: number } {
  const n = g.length;
  const ow = w - n + 1;
  const oh = h - n + 1;
  const tmp = new Float64Array(5 * h * ow);
  const T = h * ow;
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < ow; c++) {
      let a = 0, b = 0, aa = 0, bb = 0, ab = 0;
      for (let k = 0, i = r * w + c; k < n; k++, i++) {
        const u = x[i];
        const v = y[i];
        const gk = g[k];
        a += gk * u;
        b += gk * v;
        aa += gk * (u * u);
        bb += gk * (v * v);
        ab += gk * (u * v);
      }
      const o = r * ow + c;
      tmp[o] = a;
      tmp[T + o] = b;
      tmp[2 * T + o] = aa;
      tmp[3 * T + o] = bb;
      tmp[4 * T + o] = ab;
    }
  }
  const size = oh * ow;
  const out = new Float64Array(5 * size);
  for (let m = 0; m < 5; m++) {
    for (let r = 0; r < oh; r++) {
      for (let c = 0; c < ow; c++) {
        let acc = 0;
        for (let k = 0, i = m * T + r * ow + c; k < n; k++, i += ow) acc += g[k] * tmp[i];
        out[m * size + r * ow + c] = acc;
      }
    }
  }
  return { out, size };
}

/** Mean SSIM of Wang et al. (ssim_index.m): Gaussian-weighted local statistics over the valid region. */
export function ssim(a: Plane, b: Plane, opts: SsimOptions = {}): number {
  sameSize('ssim', a, b);
  const { window = 11, sigma = 1.5, k1 = 0.01, k2 = 0.03, range = 255 } = opts;
  const { width: w, height: h } = a;
  if (w < window || h < window) throw new Error(`ssim: a ${w}x${h} image is smaller than the ${window}x${window} window`);
  const c1 = (k1 * range) ** 2;
  const c2 = (k2 * range) ** 2;
  const { out: M, size } = localMoments(a.data, b.data, w, h, gauss1d(window, sigma));
  let sum = 0;
  for (let i = 0; i < size; i++) {
    const m1 = M[i];
    const m2 = M[size + i];
    const v1 = M[2 * size + i] - m1 * m1;
    const v2 = M[3 * size + i] - m2 * m2;
    const cov = M[4 * size + i] - m1 * m2;
    sum += ((2 * m1 * m2 + c1) * (2 * cov + c2)) / ((m1 * m1 + m2 * m2 + c1) * (v1 + v2 + c2));
  }
  return sum / size;
}

export interface SrMetrics {
  psnr: number;
  ssim: number;
}

export interface SrMetricsOptions {
  /** Border shaved before measuring (the SR scale factor). */
  shave: number;
  /** The ground truth is a greyscale image (see evalChannel). */
  grey?: boolean;
}

/** PSNR and SSIM of a super-resolved image against its ground truth, on Y with the border shaved. */
export function srMetrics(sr: Image, hr: Image, opts: SrMetricsOptions): SrMetrics {
  if (sr.width !== hr.width || sr.height !== hr.height) {
    throw new Error(`srMetrics: output ${sr.width}x${sr.height} and ground truth ${hr.width}x${hr.height} differ in size`);
  }
  const a = shave(evalChannel(sr, opts.grey), opts.shave);
  const b = shave(evalChannel(hr, opts.grey), opts.shave);
  return { psnr: psnr(a, b), ssim: ssim(a, b) };
}

/**
 * Classic CDF (quantile) histogram matching of one channel, as scikit-image's `match_histograms` computes it:
 * each distinct source value v gets the reference value at the same quantile, `interp(F_src(v), F_ref, ref values)`
 * (linear interpolation between the reference's distinct values; F = cumulative count / size, taken at each
 * distinct value). Sizes may differ (an SR output matched to its low-resolution input).
 */
export function matchHistogramChannel(src: ArrayLike<number>, ref: ArrayLike<number>): Float64Array {
  const uniq = (d: ArrayLike<number>) => {
    const s = Float64Array.from(d).sort();
    const values: number[] = [];
    const cdf: number[] = [];
    for (let i = 0; i < s.length; i++) {
      if (i + 1 < s.length && s[i + 1] === s[i]) continue;
      values.push(s[i]);
      cdf.push((i + 1) / s.length);
    }
    return { values, cdf };
  };
  if (src.length === 0 || ref.length === 0) throw new Error('matchHistogram: empty image');
  const S = uniq(src);
  const R = uniq(ref);
  const mapped = new Map<number, number>();
  let j = 0;
  for (let i = 0; i < S.values.length; i++) {
    const q = S.cdf[i];
    while (j < R.cdf.length - 1 && R.cdf[j + 1] < q) j++;
    let v: number;
    if (q <= R.cdf[0]) v = R.values[0];
    else if (j >= R.cdf.length - 1) v = R.values[R.values.length - 1];
    else {
      // R.cdf[j] < q <= R.cdf[j + 1] (numpy.interp between the neighbouring quantiles).
      const t = (q - R.cdf[j]) / (R.cdf[j + 1] - R.cdf[j]);
      v = R.values[j] + t * (R.values[j + 1] - R.values[j]);
    }
    mapped.set(S.values[i], v);
  }
  return Float64Array.from(src as ArrayLike<number>, (v) => mapped.get(v)!);
}

/** Per-channel histogram matching of `img` to `ref` (the paper's SR post-processing: output matched to the LR input). */
export function matchHistogram(img: Image, ref: Image): Image {
  const n = img.width * img.height;
  const m = ref.width * ref.height;
  const out = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) {
    out.set(matchHistogramChannel(img.data.subarray(c * n, (c + 1) * n), ref.data.subarray(c * m, (c + 1) * m)), c * n);
  }
  return { width: img.width, height: img.height, data: out };
}
