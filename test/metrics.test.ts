// SR metrics: Y (BT.601, float), border shave, PSNR, SSIM of Wang et al. (against a direct 2-D evaluation of
// their ssim_index.m), histogram matching (against hand-computed quantile maps).
import { describe, expect, it } from 'vitest';
import { evalChannel, matchHistogram, matchHistogramChannel, psnr, rgbToY, shave, srMetrics, ssim, type Plane } from '../src/eval/metrics.js';
import { createImage } from '../src/io/image.js';
import { rng, uniform } from './helpers/rand.js';

const plane = (width: number, height: number, data: ArrayLike<number>): Plane => ({ width, height, data: Float64Array.from(data) });

/** ssim_index.m evaluated literally: fspecial('gaussian', 11, 1.5), filter2 'valid' as explicit 11×11 sums. */
function ssimDirect(a: Plane, b: Plane): number {
  const n = 11;
  const win: number[] = [];
  let s = 0;
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) s += win[y * n + x] = Math.exp(-((x - 5) ** 2 + (y - 5) ** 2) / (2 * 1.5 * 1.5));
  for (let i = 0; i < win.length; i++) win[i] /= s;
  const C1 = (0.01 * 255) ** 2;
  const C2 = (0.03 * 255) ** 2;
  let total = 0;
  let count = 0;
  for (let y0 = 0; y0 + n <= a.height; y0++) {
    for (let x0 = 0; x0 + n <= a.width; x0++) {
      let m1 = 0, m2 = 0, s11 = 0, s22 = 0, s12 = 0;
      for (let y = 0; y < n; y++) {
        for (let x = 0; x < n; x++) {
          const w = win[y * n + x];
          const u = a.data[(y0 + y) * a.width + x0 + x];
          const v = b.data[(y0 + y) * b.width + x0 + x];
          m1 += w * u;
          m2 += w * v;
          s11 += w * u * u;
          s22 += w * v * v;
          s12 += w * u * v;
        }
      }
      const v1 = s11 - m1 * m1;
      const v2 = s22 - m2 * m2;
      const c = s12 - m1 * m2;
      total += ((2 * m1 * m2 + C1) * (2 * c + C2)) / ((m1 * m1 + m2 * m2 + C1) * (v1 + v2 + C2));
      count++;
    }
  }
  return total / count;
}

describe('Y channel and shave', () => {
  it('Y = 16 + 65.481 R + 128.553 G + 24.966 B on 0..1, not rounded', () => {
    // pixels: black, white, red, green, blue, (10, 200, 77)
    const r = [0, 255, 255, 0, 0, 10];
    const g = [0, 255, 0, 255, 0, 200];
    const b = [0, 255, 0, 0, 255, 77];
    const y = rgbToY(createImage(6, 1, Float32Array.from([...r, ...g, ...b])));
    const want = [16, 235, 16 + 65.481, 16 + 128.553, 16 + 24.966, 16 + (65.481 * 10 + 128.553 * 200 + 24.966 * 77) / 255];
    want.forEach((v, i) => expect(y.data[i]).toBeCloseTo(v, 10));
    expect(Number.isInteger(y.data[5])).toBe(false);
  });

  it('greyscale ground truth: the grey value itself; colour pixels reduced by BT.601 luma', () => {
    const img = createImage(2, 1, Float32Array.from([100, 255, 100, 0, 100, 0]));
    const y = evalChannel(img, true);
    expect(y.data[0]).toBe(100);
    expect(y.data[1]).toBeCloseTo(0.299 * 255, 10);
  });

  it('shave drops the border on every side', () => {
    const p = plane(5, 4, Array.from({ length: 20 }, (_, i) => i));
    expect(shave(p, 1)).toEqual(plane(3, 2, [6, 7, 8, 11, 12, 13]));
    expect(() => shave(p, 2)).toThrow(/nothing left/);
  });
});

describe('PSNR and SSIM', () => {
  it('PSNR = 10 log10(255² / MSE) on the 0..255 scale', () => {
    const a = plane(2, 2, [0, 10, 20, 30]);
    const b = plane(2, 2, [1, 12, 20, 27]); // squared errors 1, 4, 0, 9 → MSE 3.5
    expect(psnr(a, b)).toBeCloseTo(10 * Math.log10((255 * 255) / 3.5), 12);
    expect(psnr(a, a)).toBe(Infinity);
    expect(() => psnr(a, plane(1, 4, [0, 0, 0, 0]))).toThrow(/differ in size/);
  });

  it("SSIM equals a literal evaluation of Wang et al.'s ssim_index.m on random images", () => {
    const r = rng(1);
    for (const [w, h] of [[11, 11], [23, 17], [30, 12]]) {
      const a = plane(w, h, uniform(w * h, r, 0, 255));
      const noise = uniform(w * h, r, -40, 40);
      const b = plane(w, h, a.data.map((v, i) => v * 0.8 + 20 + noise[i]));
      const got = ssim(a, b);
      expect(got).toBeGreaterThan(0);
      expect(got).toBeLessThan(1);
      expect(Math.abs(got - ssimDirect(a, b))).toBeLessThan(1e-12);
      expect(ssim(a, a)).toBeCloseTo(1, 12);
    }
    expect(() => ssim(plane(10, 12, new Float64Array(120)), plane(10, 12, new Float64Array(120)))).toThrow(/smaller than the 11x11 window/);
  });

  it('srMetrics: Y, shave by the scale, PSNR and SSIM', () => {
    const r = rng(2);
    const hr = createImage(24, 20, Float32Array.from(uniform(3 * 480, r, 0, 255)));
    const sr = createImage(24, 20, hr.data.map((v, i) => (i % 7 === 0 ? v + 9 : v)));
    const m = srMetrics(sr, hr, { shave: 4 });
    const a = shave(rgbToY(sr), 4);
    const b = shave(rgbToY(hr), 4);
    expect(m).toEqual({ psnr: psnr(a, b), ssim: ssim(a, b) });
    expect(() => srMetrics(createImage(20, 20), hr, { shave: 4 })).toThrow(/differ in size/);
  });
});

describe('histogram matching', () => {
  it('maps each source value to the reference value at its quantile (numpy.interp between quantiles)', () => {
    // src quantiles 0.25 (1), 0.75 (2), 1 (3); reference quantiles k/8 for 10..80.
    expect([...matchHistogramChannel([3, 1, 2, 2], [80, 10, 30, 20, 40, 50, 70, 60])]).toEqual([80, 20, 60, 60]);
    // src quantiles 0.5, 1; reference 0 @ 1/3, 10 @ 2/3, 20 @ 1: 0.5 is halfway between 0 and 10.
    const m = matchHistogramChannel([5, 6], [20, 0, 10]);
    expect(m[0]).toBeCloseTo(5, 12);
    expect(m[1]).toBe(20);
    // Below the reference's first quantile: its smallest value.
    expect([...matchHistogramChannel([1, 2, 3, 4], [7, 7, 7, 9])]).toEqual([7, 7, 7, 9]);
  });

  it('a same-size image gets exactly the reference histogram, order preserved; per channel', () => {
    const r = rng(3);
    const src = Float32Array.from(uniform(3 * 64, r, 0, 100));
    const ref = Float32Array.from(uniform(3 * 64, r, 50, 255)); // distinct values
    const out = matchHistogram(createImage(8, 8, src), createImage(16, 4, ref));
    for (let c = 0; c < 3; c++) {
      const o = out.data.subarray(c * 64, (c + 1) * 64);
      const s = src.subarray(c * 64, (c + 1) * 64);
      // Distinct source values (continuous random): the matched values are the sorted reference values.
      expect([...o].sort((x, y) => x - y)).toEqual([...ref.subarray(c * 64, (c + 1) * 64)].sort((x, y) => x - y));
      for (let i = 0; i < 64; i++) for (let j = 0; j < 64; j++) if (s[i] < s[j]) expect(o[i]).toBeLessThanOrEqual(o[j]);
    }
  });
});
