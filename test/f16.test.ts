// f16 storage (issue #19 item 3): host conversion against the IEEE 754 rules; upload/read/copy of f16 tensors; the
// derived f16 kernel variants against their f32 paths (one f16 rounding of the f32 result apart) and against the
// float64 references; the networks in f16 against f32; gradients through f16 refused; tiled f16 against one piece.
import { describe, expect, it } from 'vitest';
import { Tensor, noGrad, tidy } from '../src/autograd/tensor.js';
import { runImageNetwork } from '../src/api/tiled.js';
import { DtypeError, f16Bits, fromF16, kernel, pickPrecision, toF16, type Dtype } from '../src/gpu/index.js';
import { f16Variant } from '../src/gpu/f16.js';
import { createImage, imageToTensor } from '../src/io/image.js';
import { channelAffine } from '../src/layers/channel-affine.js';
import { conv2d, convTranspose2d } from '../src/layers/conv.js';
import { add, cast, relu, scaledTanh } from '../src/layers/elementwise.js';
import { batchNorm2d, instanceNorm2d } from '../src/layers/norm.js';
import { bicubicResize2d } from '../src/layers/resize.js';
import { centerCrop2d, reflectionPad2d, upsampleNearest2d } from '../src/layers/spatial.js';
import { SRNet, upscaleImage } from '../src/nets/sr-net.js';
import { TransformerNet } from '../src/nets/transformer-net.js';
import { useGpu } from './helpers/gpu.js';
import { expectClose, relErr } from './helpers/opcheck.js';
import { numel, randn, rng } from './helpers/rand.js';
import { conv2dRef, convTranspose2dRef } from './reference/conv.js';
import { normRef } from './reference/norm.js';

const gpu = useGpu();

// ---- host conversion ---------------------------------------------------------------------------------------

/** Every finite non-negative binary16 value, by bits 0..0x7bff (increasing), from the definition in float64. */
const F16 = Array.from({ length: 0x7c00 }, (_, h) => {
  const e = h >> 10;
  const m = h & 0x3ff;
  return e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
});

/** The IEEE rule, independently: nearest binary16 to the float32 value, ties to the even significand, ±Inf from
 *  65520 (the largest finite value plus half its spacing) on. */
function refBits(v: number): number {
  const a = Math.abs(Math.fround(v));
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  if (a >= 65520) return sign | 0x7c00;
  let lo = 0;
  let hi = F16.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (F16[mid] <= a) lo = mid;
    else hi = mid - 1;
  }
  if (F16[lo] === a || lo === F16.length - 1) return sign | lo;
  const [dl, dh] = [a - F16[lo], F16[lo + 1] - a];
  return sign | (dl < dh || (dl === dh && lo % 2 === 0) ? lo : lo + 1);
}

describe('f32 → f16 → f32 on the host', () => {
  it('follows the IEEE rules: ties to even, subnormals, overflow to ±Inf, NaN, signed zero', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff], // the largest finite value
      [65519.99, 0x7bff], // below the midpoint to Inf
      [65520, 0x7c00], // the midpoint: ties to even is Inf
      [1e6, 0x7c00],
      [-1e6, 0xfc00],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // the smallest normal
      [1023.5 * 2 ** -24, 0x0400], // between the largest subnormal (odd) and the smallest normal: up
      [2 ** -24, 0x0001], // the smallest subnormal
      [2 ** -25, 0x0000], // half of it: ties to even is zero
      [-(2 ** -25), 0x8000],
      [2 ** -25 * (1 + 2 ** -23), 0x0001], // just above half: up
      [1.5 * 2 ** -24, 0x0002], // tie between 1 and 2 units: even
      [2.5 * 2 ** -24, 0x0002], // tie between 2 and 3 units: even
      [1 + 2 ** -11, 0x3c00], // tie: even
      [1 + 3 * 2 ** -11, 0x3c02], // tie: even (up)
      [1 + 2 ** -11 + 2 ** -23, 0x3c01], // above the tie: up
      [1e-10, 0x0000], // underflow
    ];
    for (const [v, bits] of cases) {
      expect(f16Bits(v), `${v}`).toBe(bits);
      expect(refBits(v), `reference on ${v}`).toBe(bits);
    }
    for (const v of [NaN, -NaN]) {
      const b = f16Bits(v);
      expect(b & 0x7c00).toBe(0x7c00);
      expect(b & 0x3ff).not.toBe(0);
      expect(fromF16(Uint16Array.of(b))[0]).toBeNaN();
    }
  });

  it('rounds random float32 values of every magnitude as the IEEE reference does', () => {
    const r = rng(3);
    const f32 = new Float32Array(1);
    const u32 = new Uint32Array(f32.buffer);
    for (let i = 0; i < 20000; i++) {
      // Random bits with exponents from far below the subnormals to beyond the overflow.
      u32[0] = ((r() < 0.5 ? 0 : 0x80000000) | ((90 + Math.floor(r() * 60)) << 23) | Math.floor(r() * 0x800000)) >>> 0;
      expect(f16Bits(f32[0]), `${f32[0]}`).toBe(refBits(f32[0]));
    }
  });

  it('reads every binary16 value back exactly (round trip of all 65536 bit patterns)', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, h) => h);
    const back = fromF16(all);
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00 && h & 0x3ff) expect(back[h]).toBeNaN();
      else expect(f16Bits(back[h]), `0x${h.toString(16)}`).toBe(h);
    }
    expect(Array.from(toF16([0.1, 300.3]))).toEqual([refBits(0.1), refBits(300.3)]);
  });
});

// ---- tensors and kernels -------------------------------------------------------------------------------------

/** float32 values rounded to f16 (so that the f32 path and the f16 path start from the same numbers). */
const r16 = (v: ArrayLike<number>): Float32Array => fromF16(toF16(v));

/** One f16 spacing at |v| (the subnormal spacing below the normals). */
const ulp16 = (v: number): number => (Math.abs(v) < 2 ** -14 ? 2 ** -24 : 2 ** (Math.floor(Math.log2(Math.abs(v))) - 10));

/** The f16 result is the f32 result rounded once: within one f16 spacing (WGSL lets a conversion round either way);
 *  `extra`: what an op of several passes adds by storing its intermediates in f16. */
function expectOneRounding(half: Float32Array, full: Float32Array, what: string, extra = 0): void {
  expect(half.length).toBe(full.length);
  for (let i = 0; i < full.length; i++) {
    const d = Math.abs(half[i] - full[i]);
    if (!(d <= ulp16(full[i]) + extra)) throw new Error(`${what}: [${i}] f16 ${half[i]} vs f32 ${full[i]}: ${d} > one f16 spacing + ${extra}`);
  }
}

describe('f16 tensors', () => {
  it('upload, read (as float32 or as stored bits), copy and write, odd lengths included', async () => {
    const g = gpu();
    const v = Float32Array.from({ length: 7 }, (_, i) => (i - 3) * 1.37 + 0.001);
    const t = g.upload(v, [7], 'f16 test', 'f16');
    expect(t.dtype).toBe('f16');
    expect(Array.from(await g.read(t))).toEqual(Array.from(r16(v)));
    expect(Array.from((await g.readStored(t)) as Uint16Array)).toEqual(Array.from(toF16(v)));
    const c = g.empty([7], 'f16 copy', 'f16');
    g.copy(t, c);
    expect(Array.from(await g.read(c))).toEqual(Array.from(r16(v)));
    g.write(c, [1, 2, 3, 4, 5, 6, 65519]);
    expect(Array.from(await g.read(c))).toEqual([1, 2, 3, 4, 5, 6, 65504]);
    const bits = g.upload(toF16([0.5, -0.25, 2 ** -24]), [3], 'f16 bits', 'f16');
    expect(Array.from(await g.read(bits))).toEqual([0.5, -0.25, 2 ** -24]);
    expect(() => g.copy(t, g.empty([7]))).toThrow(/Gpu.copy: f16 \[7\] into f32 \[7\]/);
    [t, c, bits].forEach((x) => g.release(x));
  });

  it('derives one f16 variant per set of bindings: reads widened, writes (and compound writes) narrowed', async () => {
    const g = gpu();
    const k = kernel('f16test.sample', /* wgsl */ `
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= p.n) { return; }
  // x[i] in a comment is left alone
  y[i] = x[i] * 2.0 + w[i / 4u][i % 4u];
  y[i] += x[min(i + 1u, p.n - 1u)];
}`);
    const v = f16Variant(k, ['w', 'x', 'y']);
    expect(f16Variant(k, ['w', 'x', 'y'])).toBe(v);
    expect(v.code.startsWith('enable f16;')).toBe(true);
    expect(v.code).toContain('array<vec4<f16>>');
    expect(v.code).toContain('y[i] = f16(f32(y[i]) + (f32(x[min(i + 1u, p.n - 1u)])))');
    expect(v.code).toContain('// x[i] in a comment');
    const n = 9;
    const xs = r16(Array.from({ length: n }, (_, i) => i * 0.75 - 3));
    const ws = r16(Array.from({ length: 12 }, (_, i) => i / 8));
    const want = Array.from({ length: n }, (_, i) => xs[i] * 2 + ws[i] + xs[Math.min(i + 1, n - 1)]);
    for (const dt of ['f32', 'f16'] as Dtype[]) {
      const x = g.upload(xs, [n], 'x', dt);
      const w = g.upload(ws, [3, 4], 'w', dt);
      const y = g.empty([n], 'y', dt);
      g.dispatch(k, { p: { n }, x, w, y }, [1]);
      const got = await g.read(y);
      if (dt === 'f32') expect(Array.from(got)).toEqual(want.map(Math.fround));
      else expectOneRounding(got, Float32Array.from(want), 'derived kernel');
      [x, w, y].forEach((t) => g.release(t));
    }
  });

  it('refuses kernels it cannot derive safely, naming the kernel and the binding', () => {
    const head = `struct P { n: u32 }\n@group(0) @binding(0) var<uniform> p: P;\n@group(0) @binding(1) var<storage, read_write> y: array<f32>;\n`;
    const shadow = kernel('f16test.shadow', `${head}@compute @workgroup_size(1) fn main() { let y = 1.0; }`);
    expect(() => f16Variant(shadow, ['y'])).toThrow(/kernel f16test.shadow: no f16 variant for binding\(s\) y: y is also declared/);
    const whole = kernel('f16test.whole', `${head}@compute @workgroup_size(1) fn main() { let n = arrayLength(&y); }`);
    expect(() => f16Variant(whole, ['y'])).toThrow(/f16test.whole.*y is used other than by index/);
    const u = kernel('f16test.u32', `struct P { n: u32 }\n@group(0) @binding(0) var<uniform> p: P;\n@group(0) @binding(1) var<storage, read_write> y: array<u32>;\n@compute @workgroup_size(1) fn main() { y[0] = 1u; }`);
    expect(() => f16Variant(u, ['y'])).toThrow(/y is not an array of f32/);
  });
});

/** Builds inputs twice, f16-rounded: all in f32, and with the activations (listed in `act`) stored as f16. */
async function bothPaths(
  what: string,
  inputs: { data: ArrayLike<number>; shape: number[]; act: boolean }[],
  op: (xs: Tensor[]) => Tensor,
): Promise<{ full: Float32Array; half: Float32Array }> {
  const g = gpu();
  const run = (dt: Dtype) =>
    noGrad(() =>
      tidy(() => {
        const xs = inputs.map((i) => new Tensor(g, g.upload(r16(i.data), i.shape, what, i.act ? dt : 'f32')));
        return op(xs);
      }),
    );
  const y32 = run('f32');
  const y16 = run('f16');
  expect(y32.raw.dtype ?? 'f32').toBe('f32');
  expect(y16.raw.dtype, `${what} output dtype`).toBe('f16');
  const [full, half] = [await y32.data(), await y16.data()];
  y32.dispose();
  y16.dispose();
  return { full, half };
}

const act = (shape: number[], seed: number, scale = 2, offset = 0) => ({ data: randn(numel(shape), rng(seed), scale).map((v) => v + offset), shape, act: true });
const par = (shape: number[], seed: number, scale = 0.3) => ({ data: randn(numel(shape), rng(seed), scale), shape, act: false });

describe('f16 variants of the inference kernels: the f32 result rounded once', () => {
  const cases: [string, { data: ArrayLike<number>; shape: number[]; act: boolean }[], (xs: Tensor[]) => Tensor, 'bicubic'?][] = [
    ['conv2d 3×3 same, bias', [act([1, 5, 13, 11], 1), par([7, 5, 3, 3], 2), par([7], 3)], ([x, w, b]) => conv2d(x, w, b, { padding: 1 })],
    ['conv2d 9×9 to 3 channels', [act([2, 4, 17, 9], 4), par([3, 4, 9, 9], 5, 0.1), par([3], 6)], ([x, w, b]) => conv2d(x, w, b, { padding: 4 })],
    ['conv2d stride 2, no bias', [act([1, 6, 12, 10], 7), par([9, 6, 3, 3], 8)], ([x, w]) => conv2d(x, w, null, { stride: 2, padding: 1 })],
    ['convTranspose2d stride 2 (the paper\'s)', [act([1, 8, 7, 5], 9), par([8, 6, 3, 3], 10), par([6], 11)], ([x, w, b]) => convTranspose2d(x, w, b, { stride: 2, padding: 1, outputPadding: 1 })],
    ['convTranspose2d stride 1', [act([1, 3, 6, 7], 12), par([3, 5, 3, 3], 13), par([5], 14)], ([x, w, b]) => convTranspose2d(x, w, b, { padding: 1 })],
    ['instanceNorm2d affine, large mean', [act([2, 5, 9, 7], 15, 3, 200), par([5], 16, 1), par([5], 17, 1)], ([x, w, b]) => instanceNorm2d(x, w, b)],
    ['batchNorm2d eval', [act([2, 4, 6, 5], 18), par([4], 19, 1), par([4], 20, 1), par([4], 21, 1), { data: [0.5, 2, 1, 3], shape: [4], act: false }], ([x, w, b, m, v]) => batchNorm2d(x, w, b, m, v, { training: false })],
    ['relu', [act([2, 3, 5, 7], 22)], ([x]) => relu(x)],
    ['scaledTanh', [act([1, 3, 8, 9], 23)], ([x]) => scaledTanh(x, 127.5, 127.5)],
    ['add', [act([1, 4, 5, 6], 24), act([1, 4, 5, 6], 25)], ([u, v]) => add(u, v)],
    ['reflectionPad2d', [act([1, 2, 6, 7], 26)], ([x]) => reflectionPad2d(x, [3, 2, 1, 4])],
    ['centerCrop2d', [act([1, 3, 9, 8], 27)], ([x]) => centerCrop2d(x, [1, 2, 2, 1])],
    ['upsampleNearest2d ×2', [act([2, 3, 4, 5], 28)], ([x]) => upsampleNearest2d(x, 2)],
    ['channelAffine with a channel gather', [act([1, 3, 5, 4], 29)], ([x]) => channelAffine(x, [0.5, -2, 3, 1.25], [10, -1, 0.5, 0], [2, 0, 1, 1])],
    // Two passes (height, then width) with the intermediate stored in f16 too: its rounding (half a spacing at its
    // largest, ≤ 1.3·max|x|) carried through taps whose absolute weights sum to less than 1.3.
    ['bicubicResize2d ×4', [act([1, 3, 5, 6], 30, 60, 128)], ([x]) => bicubicResize2d(x, { scale: 4 }), 'bicubic'],
  ];
  for (const [name, inputs, op, passes] of cases) {
    it(name, async () => {
      const { full, half } = await bothPaths(name, inputs, op);
      const xmax = Math.max(...Array.from(inputs[0].data, Math.abs));
      expectOneRounding(half, full, name, passes ? 1.3 * 0.5 * ulp16(1.3 * xmax) : 0);
    });
  }

  it('conv2d, convTranspose2d and instance norm in f16 against the float64 references (f16 inputs, weights and outputs)', async () => {
    const g = gpu();
    const x = act([1, 6, 11, 9], 31).data;
    const w = par([5, 6, 3, 3], 32).data;
    const b = par([5], 33).data;
    const run = (f: (x: Tensor) => Tensor, data: ArrayLike<number>, shape: number[]) =>
      noGrad(() => tidy(() => f(cast(Tensor.from(g, data, shape), 'f16'))));
    const geom = { N: 1, Cin: 6, Cout: 5, H: 11, W: 9, kH: 3, kW: 3, stride: 2, padding: 1 };
    const [W, B] = [Tensor.from(g, w, [5, 6, 3, 3]), Tensor.from(g, b, [5])];
    const y = run((t) => conv2d(t, W, B, { stride: 2, padding: 1 }), x, [1, 6, 11, 9]);
    // Three roundings of relative 2^-11 (input, weight, output) on sums that partly cancel.
    expectClose(await y.data(), conv2dRef(geom, Float64Array.from(x), Float64Array.from(w), Float64Array.from(b)).y, 3e-3, 'conv2d f16');
    const Wt = Tensor.from(g, w, [6, 5, 3, 3]);
    const yt = run((t) => convTranspose2d(t, Wt, B, { stride: 2, padding: 1, outputPadding: 1 }), x, [1, 6, 11, 9]);
    const tg = { ...geom, Cin: 6, Cout: 5 };
    expectClose(await yt.data(), convTranspose2dRef(tg, 1, Float64Array.from(x), Float64Array.from(w), Float64Array.from(b)).y, 3e-3, 'convTranspose2d f16');
    const xn = act([2, 3, 7, 8], 34, 5, 300).data;
    const yn = run((t) => instanceNorm2d(t, null, null), xn, [2, 3, 7, 8]);
    // Near 300 the f16 spacing is 0.25: rounding the input costs 0.25/√12 ≈ 0.07 RMS, 1.4e-2 of σ = 5 (the output's
    // relative L2 error); the output's own rounding adds little.
    expectClose(await yn.data(), normRef(Float64Array.from(xn), null, null, { shape: [2, 3, 7, 8], perChannel: false, eps: 1e-5 }).y, 2.5e-2, 'instanceNorm2d f16');
    [y, yt, yn, W, B, Wt].forEach((t) => t.dispose());
  });
});

// ---- networks ----------------------------------------------------------------------------------------------

/** A photo-like 0..255 integer image (smooth gradients plus texture). */
function photo(w: number, h: number, seed: number) {
  const r = rng(seed);
  return createImage(w, h, Float32Array.from({ length: 3 * w * h }, (_, i) => {
    const [c, y, x] = [Math.floor(i / (w * h)), Math.floor((i % (w * h)) / w), i % w];
    return Math.round(Math.min(255, Math.max(0, 128 + 80 * Math.sin(x * 0.3 + c) * Math.cos(y * 0.2) + 30 * (r() - 0.5))));
  }));
}

/** max and mean |f16 − f32| of a network's output, in units of its f32 output's range / 255 (0..255 outputs: levels). */
async function netError(forward: (x: Tensor) => Tensor, w: number, h: number): Promise<{ max: number; mean: number; range: number }> {
  const g = gpu();
  const img = photo(w, h, 5);
  const out = async (dt: Dtype) => {
    const y = noGrad(() => tidy(() => forward(cast(imageToTensor(g, img), dt))));
    if (dt === 'f16') expect(y.raw.dtype).toBe('f16');
    const d = await y.data();
    y.dispose();
    return d;
  };
  const [a, b] = [await out('f32'), await out('f16')];
  let [lo, hi, max, sum] = [Infinity, -Infinity, 0, 0];
  for (let i = 0; i < a.length; i++) {
    [lo, hi] = [Math.min(lo, a[i]), Math.max(hi, a[i])];
    const d = Math.abs(a[i] - b[i]);
    max = Math.max(max, d);
    sum += d;
  }
  const range = hi - lo;
  return { max: (max * 255) / range, mean: (sum / a.length) * (255 / range), range };
}

describe('networks in f16 against f32 (random weights, width 4)', () => {
  // Stated tolerance, in levels of the output's range mapped to 0..255: max 2, mean 0.3 (measured here: max 0.18-0.89,
  // mean 0.04-0.15). Random 4-channel networks amplify rounding more than trained ones: the shipped model measures
  // max ≤ 0.6, mean ≤ 0.05 on the content photos at 512 px (bench/precision.ts).
  const tol = { max: 2, mean: 0.3 };
  const nets: [string, () => { forward(x: Tensor): Tensor; dispose(): void }, number, number][] = [
    ['TransformerNet paper (instance norm)', () => new TransformerNet(gpu(), { variant: 'paper', norm: 'instance', width: 4, rand: rng(41) }).eval(), 28, 24],
    ['TransformerNet paper (batch norm, eval)', () => new TransformerNet(gpu(), { variant: 'paper', norm: 'batch', width: 4, rand: rng(42) }).eval(), 20, 24],
    ['TransformerNet pytorch-examples', () => new TransformerNet(gpu(), { variant: 'pytorch-examples', width: 4, rand: rng(43) }).eval(), 32, 28],
    ['SRNet ×4 (batch norm, eval)', () => new SRNet(gpu(), { scale: 4, width: 4, blocks: 2, rand: rng(44) }).eval(), 12, 10],
    ['SRNet ×4 (instance norm, residual)', () => new SRNet(gpu(), { scale: 4, width: 4, blocks: 1, norm: 'instance', residual: true, rand: rng(45) }).eval(), 12, 10],
  ];
  for (const [name, make, w, h] of nets) {
    it(name, async () => {
      const net = make();
      try {
        const e = await netError((x) => net.forward(x), w, h);
        expect(e.range).toBeGreaterThan(0);
        expect(e.max, `${name}: max ${e.max} levels`).toBeLessThanOrEqual(tol.max);
        expect(e.mean, `${name}: mean ${e.mean} levels`).toBeLessThanOrEqual(tol.mean);
      } finally {
        net.dispose();
      }
    });
  }
});

describe('f16 is for inference', () => {
  it('an op that would record a gradient through an f16 tensor throws, naming the op, and leaks nothing', () => {
    const g = gpu();
    const w = Tensor.param(g, randn(4 * 3 * 9, rng(1), 0.2), [4, 3, 3, 3], 'w');
    const x16 = noGrad(() => tidy(() => cast(Tensor.from(g, randn(3 * 25, rng(2)), [1, 3, 5, 5]), 'f16')));
    const xg = Tensor.from(g, randn(8, rng(3)), [8], true);
    const before = g.stats().inUseBytes;
    expect(() => conv2d(x16, w, null)).toThrow(DtypeError);
    expect(() => conv2d(x16, w, null)).toThrow(/^conv2d: f16 tensors are for inference only.*#0 \[1,3,5,5\] f16, #1 \[4,3,3,3\] f32 \(requires grad\)/);
    expect(() => cast(xg, 'f16')).toThrow(/^cast: f16 tensors are for inference only/);
    expect(g.stats().inUseBytes).toBe(before);
    // Under noGrad the same op runs, and its output is f16.
    const y = noGrad(() => conv2d(x16, w, null));
    expect(y.raw.dtype).toBe('f16');
    [y, x16, xg, w].forEach((t) => t.dispose());
  });

  it("'auto' picks f16 only on a GPU with shader-f16; a forced f16 needs the feature", () => {
    const dev = (f16: boolean, software: boolean) => ({ features: new Set(f16 ? ['shader-f16'] : []), software });
    expect(pickPrecision(dev(true, false))).toBe('f16');
    expect(pickPrecision(dev(true, true))).toBe('f32');
    expect(pickPrecision(dev(false, false))).toBe('f32');
    expect(pickPrecision(dev(true, true), 'f16')).toBe('f16');
    expect(pickPrecision(dev(true, false), 'f32')).toBe('f32');
    expect(() => pickPrecision(dev(false, false), 'f16', 'stylize')).toThrow(/stylize: f16 needs the adapter's 'shader-f16'/);
    expect(() => pickPrecision(dev(true, false), 'f8' as never)).toThrow(/unknown precision "f8"/);
  });
});

describe('tiled inference in f16', () => {
  it('tiles (waiting on the GPU or, beyond the budget, in host memory as f16) reproduce the one-piece f16 result', async () => {
    const g = gpu();
    const net = new TransformerNet(g, { variant: 'pytorch-examples', width: 4, rand: rng(51) }).eval();
    try {
      const img = photo(44, 36, 6);
      const whole = await runImageNetwork(g, net, img, { precision: 'f16' });
      const ref = await runImageNetwork(g, net, img, { precision: 'f32' });
      for (const memoryBudget of [undefined, 0]) {
        const tiled = await runImageNetwork(g, net, img, { precision: 'f16', tile: 16, halo: 32, memoryBudget });
        // Whole-image statistics combined in float64 instead of one f32 pass: f16 stores may round the other way.
        expectClose(tiled.data, whole.data, 2e-3, `tiled f16 (budget ${memoryBudget}) vs whole f16`);
      }
      expect(relErr(whole.data, ref.data)).toBeLessThan(1e-2);
    } finally {
      net.dispose();
    }
  });

  it('upscaleImage in f16 tiles equals its one-piece result', async () => {
    const g = gpu();
    const net = new SRNet(g, { scale: 4, width: 4, blocks: 1, rand: rng(52) }).eval();
    try {
      const img = photo(13, 11, 7);
      const whole = await upscaleImage(net, img, { precision: 'f16' });
      const tiled = await upscaleImage(net, img, { precision: 'f16', tile: 5 });
      expectClose(tiled.data, whole.data, 1e-6, 'SR f16 tiles vs whole');
    } finally {
      net.dispose();
    }
  });
});
