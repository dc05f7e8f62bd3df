// MATLAB-compatible bicubic imresize and Gaussian blur: the CPU float64 version (io/bicubic.ts) against the
// standard x4 LR benchmark images (MATLAB's own output) bit for bit, and the GPU version (layers/resize.ts)
// against the CPU one: bit-exact in uint8 mode, within float32 precision otherwise, with gradients.
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tensor, tidy } from '../src/autograd/tensor.js';
import { ShapeError } from '../src/gpu/errors.js';
import {
  bicubicContributions,
  cubic,
  gaussianBlurPlanes,
  gaussianContributions,
  gaussianWeights,
  imresize,
  imresizePlanes,
  imresizePlan,
  type Contributions,
  type ResizeTarget,
} from '../src/io/bicubic.js';
import { crop, type Image } from '../src/io/image.js';
import { readImage } from '../src/io/image-node.js';
import { bicubicResize2d, gaussianBlur2d } from '../src/layers/resize.js';
import { useGpu } from './helpers/gpu.js';
import { checkOp, input } from './helpers/opcheck.js';
import { numel, rng, uniform } from './helpers/rand.js';
import { SHARED_TAG } from './helpers/shared.js';

const gpu = useGpu();

const SR = fileURLToPath(new URL('../../shared/data/sr', import.meta.url));
const SETS = ['Set5', 'Set14', 'BSD100'];
const HAVE_SR = SETS.every((s) => existsSync(`${SR}/${s}`) && existsSync(`${SR}/reference_lr_x4/${s}`));

const cropTo = (img: Image, s: number): Image => crop(img, 0, 0, img.width - (img.width % s), img.height - (img.height % s));

/** Resizes with the GPU op and reads back planar data. */
async function gpuResize(data: ArrayLike<number>, shape: number[], target: ResizeTarget, uint8: boolean): Promise<{ data: Float32Array; shape: readonly number[] }> {
  const y = tidy(() => bicubicResize2d(Tensor.from(gpu(), Float32Array.from(data), shape), target, { uint8 }));
  try {
    return { data: await y.data(), shape: y.shape };
  } finally {
    y.dispose();
  }
}

function countDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) d++;
  return d;
}

/** y = A x along one axis, written directly from the contributions: the float64 reference for the VJP. */
function vjpAxis(dy: Float64Array, planes: number, h: number, w: number, axis: 0 | 1, c: Contributions): Float64Array {
  // dy has the output size along `axis`; dx gets the input size.
  const oh = axis === 0 ? c.outSize : h;
  const ow = axis === 0 ? w : c.outSize;
  const ih = axis === 0 ? c.inSize : h;
  const iw = axis === 0 ? w : c.inSize;
  const dx = new Float64Array(planes * ih * iw);
  for (let p = 0; p < planes; p++) {
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        const o = axis === 0 ? y : x;
        const g = dy[p * oh * ow + y * ow + x];
        for (let k = 0; k < c.taps; k++) {
          const j = c.indices[o * c.taps + k];
          dx[p * ih * iw + (axis === 0 ? j * iw + x : y * iw + j)] += c.weights[o * c.taps + k] * g;
        }
      }
    }
  }
  return dx;
}

describe('MATLAB bicubic kernel and contributions', () => {
  it('cubic is Keys a = −0.5', () => {
    expect(cubic(0)).toBe(1);
    expect(cubic(1)).toBe(0);
    expect(cubic(2)).toBe(0);
    expect(cubic(2.5)).toBe(0);
    expect(cubic(0.5)).toBe(0.5625); // 1.5/8 − 2.5/4 + 1
    expect(cubic(-1.5)).toBe(-0.0625); // −0.5·3.375 + 2.5·2.25 − 6 + 2
  });

  it('downscaling ×1/4: 18 taps, widened kernel, u = 4x − 1.5, clamped indices, weights summing to 1', () => {
    const c = bicubicContributions(16, 4, 0.25);
    expect(c.taps).toBe(18);
    for (let o = 0; o < 4; o++) {
      const u = 4 * (o + 1) - 1.5;
      const left = Math.floor(u - 8);
      let s = 0;
      for (let k = 0; k < 18; k++) {
        expect(c.indices[o * 18 + k]).toBe(Math.min(Math.max(left + k, 1), 16) - 1);
        s += c.weights[o * 18 + k];
      }
      expect(s).toBe(1);
    }
    // First output: taps at 1-based −6..11, centre 2.5; weight of index 2 (|d| = 0.5) is 0.25·cubic(0.125).
    expect(c.weights[0 * 18 + 8]).toBe(0.25 * cubic(0.125));
  });

  it('upscaling ×4: 6 taps of the plain kernel at u = x/4 + 0.375', () => {
    const c = bicubicContributions(4, 16, 4);
    expect(c.taps).toBe(6);
    const u = 1 / 4 + 0.375;
    for (let k = 0; k < 6; k++) expect(c.weights[k]).toBe(cubic(u - (Math.floor(u - 2) + k)));
  });

  it('output sizes and pass order follow MATLAB', () => {
    const p = imresizePlan(321, 481, { scale: 0.25 });
    expect([p.outH, p.outW]).toEqual([81, 121]);
    expect(p.passes.map((q) => q.axis)).toEqual([0, 1]); // equal scales: height first
    const q = imresizePlan(10, 10, { width: 5, height: 20 });
    expect(q.passes.map((r) => r.axis)).toEqual([1, 0]); // smaller scale first
  });

  it('Gaussian σ = 1: radius ⌈3σ⌉ = 3, normalised, symmetric; edge-replicated borders', () => {
    const g = gaussianWeights(1);
    expect(g.length).toBe(7);
    expect(g.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 15);
    expect(g[2] / g[3]).toBeCloseTo(Math.exp(-0.5), 14);
    const c = gaussianContributions(5, 1);
    expect(Array.from(c.indices.subarray(0, 7))).toEqual([0, 0, 0, 0, 1, 2, 3]);
    // A constant image stays constant.
    const out = gaussianBlurPlanes(new Float64Array(35).fill(7), 1, 5, 7, 1);
    for (const v of out) expect(v).toBeCloseTo(7, 12);
  });
});

describe.skipIf(!HAVE_SR)(`the x4 benchmark LR images (MATLAB imresize) on Set5, Set14, BSD100 ${SHARED_TAG}`, () => {
  const images: { set: string; file: string; hr: Image; ref: Image }[] = [];
  beforeAll(async () => {
    for (const set of SETS) {
      for (const file of readdirSync(`${SR}/${set}`).sort()) {
        images.push({ set, file, hr: cropTo(await readImage(`${SR}/${set}/${file}`), 4), ref: await readImage(`${SR}/reference_lr_x4/${set}/${file}`) });
      }
    }
  }, 60_000);

  it('the CPU imresize reproduces all 119 LR images bit for bit', () => {
    expect(images.length).toBe(119);
    const bad: string[] = [];
    for (const { set, file, hr, ref } of images) {
      const lr = imresize(hr, { scale: 1 / 4 }, { uint8: true });
      expect([lr.width, lr.height]).toEqual([ref.width, ref.height]);
      const d = countDiff(lr.data, ref.data);
      if (d) bad.push(`${set}/${file}: ${d} values differ`);
    }
    expect(bad).toEqual([]);
  });

  it('the GPU bicubicResize2d reproduces all 119 LR images bit for bit, and its ×4 upscale equals the CPU one', async () => {
    const bad: string[] = [];
    for (const { set, file, hr, ref } of images) {
      const lr = await gpuResize(hr.data, [1, 3, hr.height, hr.width], { scale: 1 / 4 }, true);
      expect(lr.shape).toEqual([1, 3, ref.height, ref.width]);
      const d = countDiff(lr.data, ref.data);
      if (d) bad.push(`${set}/${file} ↓4: ${d} values differ`);
      const up = await gpuResize(ref.data, [1, 3, ref.height, ref.width], { scale: 4 }, true);
      const upCpu = imresize(ref, { scale: 4 }, { uint8: true });
      const e = countDiff(up.data, upCpu.data);
      if (e) bad.push(`${set}/${file} ↑4: ${e} values differ`);
    }
    expect(bad).toEqual([]);
  });

  it('×8 down and up, uint8: GPU equals CPU on Set5', async () => {
    for (const { hr } of images.filter((i) => i.set === 'Set5')) {
      const h8 = cropTo(hr, 8);
      const lrCpu = imresize(h8, { scale: 1 / 8 }, { uint8: true });
      const lr = await gpuResize(h8.data, [1, 3, h8.height, h8.width], { scale: 1 / 8 }, true);
      expect(countDiff(lr.data, lrCpu.data)).toBe(0);
      const up = await gpuResize(lrCpu.data, [1, 3, lrCpu.height, lrCpu.width], { scale: 8 }, true);
      expect(countDiff(up.data, imresize(lrCpu, { scale: 8 }, { uint8: true }).data)).toBe(0);
    }
  });
});

describe('GPU resampling against the float64 CPU reference', () => {
  // [N, C, H, W] and a target; odd sizes, sizes above the 256-wide workgroup, non-integer and mixed scales.
  const cases: [number[], ResizeTarget][] = [
    [[1, 1, 1, 1], { scale: 4 }],
    [[2, 3, 7, 13], { scale: 0.25 }],
    [[1, 3, 17, 5], { scale: 2 }],
    [[2, 1, 33, 65], { width: 20, height: 50 }],
    [[1, 2, 9, 300], { scale: 1 / 3 }],
    [[1, 3, 13, 11], { width: 11, height: 26 }],
  ];
  for (const [shape, target] of cases) {
    it(`bicubicResize2d ${JSON.stringify(shape)} → ${JSON.stringify(target)}: forward and gradient`, async () => {
      const [N, C, H, W] = shape;
      const plan = imresizePlan(H, W, target);
      await checkOp(gpu(), {
        name: `bicubicResize2d ${shape}`,
        inputs: [input(shape, numel(shape), 50)],
        gpu: ([x]) => bicubicResize2d(x, target),
        ref: ([x]) => ({ y: imresizePlanes(x, N * C, H, W, target).data, shape: [N, C, plan.outH, plan.outW] }),
        vjp: (_, dy) => {
          // Back through the passes in reverse order.
          const sizes: [number, number][] = [[H, W]];
          for (const { axis, c } of plan.passes) {
            const [h, w] = sizes.at(-1)!;
            sizes.push(axis === 0 ? [c.outSize, w] : [h, c.outSize]);
          }
          let g = dy;
          for (let i = plan.passes.length - 1; i >= 0; i--) {
            const [h, w] = sizes[i];
            g = vjpAxis(g, N * C, h, w, plan.passes[i].axis, plan.passes[i].c);
          }
          return [g];
        },
        tolForward: 1e-6,
        tolGrad: 1e-6,
        fdSamples: 8,
      });
    });
  }

  it('uint8 mode: GPU equals CPU exactly on random 0..255 integers (×1/4, ×4, ×1/2, ×2); no gradient recorded', async () => {
    const r = rng(3);
    for (const [shape, target] of [
      [[2, 3, 37, 21], { scale: 0.25 }],
      [[1, 3, 9, 14], { scale: 4 }],
      [[1, 2, 31, 18], { scale: 0.5 }],
      [[1, 1, 5, 3], { scale: 2 }],
    ] as [number[], ResizeTarget][]) {
      const d = uniform(numel(shape), r, 0, 256).map(Math.floor);
      const [N, C, H, W] = shape;
      const cpu = imresizePlanes(d, N * C, H, W, target, { uint8: true }).data;
      const g = await gpuResize(d, shape, target, true);
      expect(countDiff(g.data, cpu)).toBe(0);
    }
    const y = tidy(() => bicubicResize2d(Tensor.from(gpu(), new Float32Array(16), [1, 1, 4, 4], true), { scale: 2 }, { uint8: true }));
    expect(y.requiresGrad).toBe(false);
    y.dispose();
  });

  for (const [shape, sigma, radius] of [
    [[1, 3, 17, 19], 1, undefined],
    [[2, 1, 5, 3], 1, undefined],
    [[1, 2, 7, 65], 2.5, 4],
  ] as [number[], number, number | undefined][]) {
    it(`gaussianBlur2d σ=${sigma} ${JSON.stringify(shape)}: forward and gradient against the CPU blur`, async () => {
      const [N, C, H, W] = shape;
      const rad = radius ?? Math.ceil(3 * sigma);
      await checkOp(gpu(), {
        name: `gaussianBlur2d ${shape}`,
        inputs: [input(shape, 7 + H, 50)],
        gpu: ([x]) => gaussianBlur2d(x, sigma, { radius }),
        ref: ([x]) => ({ y: gaussianBlurPlanes(x, N * C, H, W, sigma, { radius }), shape }),
        vjp: (_, dy) => [vjpAxis(vjpAxis(dy, N * C, H, W, 1, gaussianContributions(W, sigma, rad)), N * C, H, W, 0, gaussianContributions(H, sigma, rad))],
        tolForward: 1e-6,
        tolGrad: 1e-6,
        fdSamples: 8,
      });
    });
  }

  it('shape errors name the op and the shapes', () => {
    const err = (f: () => unknown): Error => {
      try {
        tidy(() => void f());
      } catch (e) {
        return e as Error;
      }
      throw new Error('expected an error');
    };
    const x3 = Tensor.from(gpu(), new Float32Array(12), [3, 2, 2]);
    let e = err(() => bicubicResize2d(x3, { scale: 2 }));
    expect(e).toBeInstanceOf(ShapeError);
    expect(e.message).toMatch(/^bicubicResize2d: .*x \[3,2,2\]/);
    const x4 = Tensor.from(gpu(), new Float32Array(12), [1, 3, 2, 2]);
    e = err(() => bicubicResize2d(x4, { width: 0, height: 3 }));
    expect(e).toBeInstanceOf(ShapeError);
    expect(e.message).toMatch(/^bicubicResize2d: invalid output size 0x3; x \[1,3,2,2\]/);
    e = err(() => gaussianBlur2d(x3));
    expect(e.message).toMatch(/^gaussianBlur2d: .*x \[3,2,2\]/);
    x3.dispose();
    x4.dispose();
  });
});
