import { describe, expect, it } from 'vitest';
import { afterAll, beforeAll } from 'vitest';
import { Tensor, tidy } from '../src/autograd/tensor.js';
import { Gpu } from '../src/gpu/index.js';
import { ShapeError } from '../src/gpu/errors.js';
import { Conv2d, ConvTranspose2d, conv2d, convTranspose2d } from '../src/layers/conv.js';
import { useGpu } from './helpers/gpu.js';
import { checkOp, expectClose, input } from './helpers/opcheck.js';
import { randInt, rng } from './helpers/rand.js';
import { conv2dRef, conv2dVjp, convTranspose2dRef, convTranspose2dVjp, type ConvGeom } from './reference/conv.js';

const gpu = useGpu();

// [N, Cin, Cout, H, W, k (or [kH, kW]), stride, padding, bias]
type K = number | [number, number];
type ConvCase = [number, number, number, number, number, K, number, number, boolean];
const CONV_CASES: ConvCase[] = [
  [1, 1, 1, 5, 5, 1, 1, 0, true], // 1×1, single channel
  [2, 3, 5, 7, 13, 3, 1, 1, true], // 3×3 same, H ≠ W
  [3, 7, 16, 17, 9, 3, 2, 1, false], // stride 2, odd sizes, batch 3
  [1, 3, 7, 16, 14, 9, 1, 4, true], // 9×9 padding 4 (the paper's first and last layers)
  [2, 33, 3, 6, 5, 1, 2, 0, true], // 1×1 stride 2: the last row and column of x are never read
  [1, 5, 33, 8, 10, 3, 2, 0, true], // stride 2 padding 0 on even sizes: unused row and column
  [2, 16, 7, 9, 11, 9, 2, 4, false], // 9×9 stride 2
  [1, 4, 6, 3, 4, 5, 1, 1, true], // kernel as large as the padded input
  [1, 2, 3, 12, 7, 4, 3, 1, true], // even kernel, stride 3
  [1, 3, 4, 5, 6, 1, 1, 1, true], // padding ≥ kernel: the input gradient takes the phase-gather kernel at stride 1
  [2, 5, 9, 20, 6, 3, 1, 0, false], // padding 0, 9 output channels (two channel tiles, one partial)
  [1, 2, 3, 3, 60, [2, 50], 1, 1, true], // non-square kernel wider than one input window (column chunks)
  [1, 2, 5, 9, 40, [3, 5], 7, 2, true], // large stride: fewer pixels per invocation
];

// [N, Cin, Cout, H, W, k (or [kH, kW]), stride, padding, outputPadding, bias]
type ConvTCase = [number, number, number, number, number, K, number, number, number, boolean];
const CONVT_CASES: ConvTCase[] = [
  [1, 3, 5, 7, 13, 3, 2, 1, 1, true], // the paper's "stride 1/2" conv: doubles the size
  [2, 16, 7, 5, 9, 3, 2, 1, 0, false], // outputPadding 0
  [1, 7, 3, 9, 6, 3, 1, 1, 0, true], // stride 1
  [3, 5, 33, 4, 3, 3, 2, 1, 1, true],
  [1, 4, 2, 5, 6, 9, 1, 4, 0, true], // 9×9
  [2, 3, 4, 4, 5, 1, 2, 0, 1, false], // 1×1 stride 2: most outputs get no input at all
  [1, 2, 3, 5, 4, 4, 3, 0, 2, true], // even kernel, stride 3, outputPadding 2
  [1, 6, 5, 6, 7, 3, 2, 0, 0, true], // padding 0
  [1, 3, 5, 6, 7, 3, 1, 3, 0, true], // stride 1, padding ≥ kernel (no flipped-conv2d shortcut)
  [2, 9, 6, 8, 5, 5, 1, 1, 0, false], // stride 1, 5×5
  [1, 3, 4, 5, 4, [2, 3], 1, 1, 0, true], // stride 1, non-square kernel
  [1, 3, 4, 5, 4, [3, 2], 2, 1, 1, true], // stride 2, non-square kernel
];

function convCase([N, Cin, Cout, H, W, k, stride, padding, bias]: ConvCase, seed: number) {
  const [kH, kW] = typeof k === 'number' ? [k, k] : k;
  const g: ConvGeom = { N, Cin, Cout, H, W, kH, kW, stride, padding };
  const inputs = [input([N, Cin, H, W], seed), input([Cout, Cin, kH, kW], seed + 1, 0.5)];
  if (bias) inputs.push(input([Cout], seed + 2));
  return {
    name: `conv2d x [${N},${Cin},${H},${W}] k${kH}×${kW} s${stride} p${padding}${bias ? '' : ' no bias'}`,
    inputs,
    gpu: (xs: Tensor[]) => conv2d(xs[0], xs[1], xs[2] ?? null, { stride, padding }),
    ref: (xs: Float64Array[]) => conv2dRef(g, xs[0], xs[1], xs[2] ?? null),
    vjp: (xs: Float64Array[], dy: Float64Array) => conv2dVjp(g, xs[0], xs[1], xs[2] ?? null, dy),
    tolForward: 2e-5,
    tolGrad: 2e-5,
    fdSamples: 8,
    seed,
  };
}

function convTCase([N, Cin, Cout, H, W, k, stride, padding, op, bias]: ConvTCase, seed: number) {
  const [kH, kW] = typeof k === 'number' ? [k, k] : k;
  const g: ConvGeom = { N, Cin, Cout, H, W, kH, kW, stride, padding };
  const inputs = [input([N, Cin, H, W], seed), input([Cin, Cout, kH, kW], seed + 1, 0.5)];
  if (bias) inputs.push(input([Cout], seed + 2));
  return {
    name: `convTranspose2d x [${N},${Cin},${H},${W}] k${kH}×${kW} s${stride} p${padding} op${op}${bias ? '' : ' no bias'}`,
    inputs,
    gpu: (xs: Tensor[]) => convTranspose2d(xs[0], xs[1], xs[2] ?? null, { stride, padding, outputPadding: op }),
    ref: (xs: Float64Array[]) => convTranspose2dRef(g, op, xs[0], xs[1], xs[2] ?? null),
    vjp: (xs: Float64Array[], dy: Float64Array) => convTranspose2dVjp(g, op, xs[0], xs[1], xs[2] ?? null, dy),
    tolForward: 2e-5,
    tolGrad: 2e-5,
    fdSamples: 8,
    seed,
  };
}

describe('conv2d', () => {
  for (const [i, c] of CONV_CASES.entries()) {
    it(`forward and gradients: ${c.join(',')}`, async () => {
      await checkOp(gpu(), convCase(c, 100 + 10 * i));
    });
  }

  it('random shapes', async () => {
    const r = rng(7);
    for (let t = 0; t < 4; t++) {
      const k = [1, 3, 5][randInt(r, 0, 2)];
      const padding = randInt(r, 0, Math.floor(k / 2) + 1);
      const c: ConvCase = [randInt(r, 1, 3), randInt(r, 1, 9), randInt(r, 1, 9), randInt(r, k, 15), randInt(r, k, 15), k, randInt(r, 1, 2), padding, r() < 0.5];
      await checkOp(gpu(), convCase(c, 300 + t));
    }
  });

  it('the input gradient of a large reduction (128 input channels × 3×3) and dW over many pixels', async () => {
    // dW sums over N·OH·OW = 2·40·36 terms, enough to split the reduction across workgroups.
    await checkOp(gpu(), { ...convCase([2, 5, 6, 40, 36, 3, 1, 1, true], 400), fdSamples: 2 });
    await checkOp(gpu(), { ...convCase([1, 128, 4, 6, 5, 3, 1, 1, true], 410), fdSamples: 2 });
  });

  it('matches a hand-computed example', async () => {
    const g = gpu();
    const { y, dx, dw, db } = tidy(() => {
      const x = Tensor.from(g, [1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3], true);
      const w = Tensor.from(g, [1, 2, 3, 4], [1, 1, 2, 2], true);
      const b = Tensor.from(g, [0.5], [1], true);
      const y = conv2d(x, w, b);
      y.backward(Tensor.from(g, [1, 1, 1, 1], [1, 1, 2, 2]));
      const out = { y, dx: x.grad!, dw: w.grad!, db: b.grad! };
      [x, w, b].forEach((t) => (t.grad = null));
      return out;
    });
    expect(y.shape).toEqual([1, 1, 2, 2]);
    expect([...(await y.data())]).toEqual([37.5, 47.5, 67.5, 77.5]);
    expect([...(await dx.data())]).toEqual([1, 3, 2, 4, 10, 6, 3, 7, 4]);
    expect([...(await dw.data())]).toEqual([12, 16, 24, 28]);
    expect([...(await db.data())]).toEqual([4]);
    [y, dx, dw, db].forEach((t) => t.dispose());
  });

  it('rejects bad shapes, naming the op and every shape', () => {
    const g = gpu();
    tidy(() => {
      const x = Tensor.zeros(g, [1, 4, 16, 16]);
      const w = Tensor.zeros(g, [32, 3, 9, 9]);
      expect(() => conv2d(x, w, null)).toThrow(ShapeError);
      expect(() => conv2d(x, w, null)).toThrow('conv2d: input channels (4) must equal weight in-channels (3); x [1,4,16,16], w [32,3,9,9]');
      const w4 = Tensor.zeros(g, [32, 4, 9, 9]);
      expect(() => conv2d(x, w4, Tensor.zeros(g, [31]))).toThrow('conv2d: bias must have shape [32] (weight out-channels); x [1,4,16,16], w [32,4,9,9], b [31]');
      expect(() => conv2d(Tensor.zeros(g, [1, 4, 3, 30]), w4, null, { padding: 2 })).toThrow(
        'conv2d: kernel (9×9) larger than padded input (7×34, padding 2); x [1,4,3,30], w [32,4,9,9]',
      );
      expect(() => conv2d(Tensor.zeros(g, [4, 16, 16]), w4, null)).toThrow('conv2d: input must have 4 dimensions (N,C,H,W); x [4,16,16], w [32,4,9,9]');
      expect(() => conv2d(x, Tensor.zeros(g, [32, 4, 9]), null)).toThrow('conv2d: weight must have 4 dimensions');
      expect(() => conv2d(x, w4, null, { stride: 0 })).toThrow('conv2d: stride must be a positive integer');
    });
  });
});

describe('convTranspose2d', () => {
  for (const [i, c] of CONVT_CASES.entries()) {
    it(`forward and gradients: ${c.join(',')}`, async () => {
      await checkOp(gpu(), convTCase(c, 500 + 10 * i));
    });
  }

  it('random shapes', async () => {
    const r = rng(8);
    for (let t = 0; t < 4; t++) {
      const k = [1, 2, 3, 4][randInt(r, 0, 3)];
      const stride = randInt(r, 1, 3);
      const padding = randInt(r, 0, Math.floor((k - 1) / 2)); // keeps the output non-empty for H = 1
      const c: ConvTCase = [randInt(r, 1, 3), randInt(r, 1, 9), randInt(r, 1, 9), randInt(r, 1, 9), randInt(r, 1, 9), k, stride, padding, randInt(r, 0, stride - 1), r() < 0.5];
      await checkOp(gpu(), convTCase(c, 700 + t));
    }
  });

  it('matches hand-computed examples (stride 2 and stride 1)', async () => {
    const g = gpu();
    const { y2, y1 } = tidy(() => {
      const x = Tensor.from(g, [1, 2, 3, 4], [1, 1, 2, 2]);
      const w = Tensor.from(g, [1, 2, 3, 4], [1, 1, 2, 2]);
      return { y2: convTranspose2d(x, w, null, { stride: 2 }), y1: convTranspose2d(x, w, null) };
    });
    expect(y2.shape).toEqual([1, 1, 4, 4]);
    expect([...(await y2.data())]).toEqual([1, 2, 2, 4, 3, 4, 6, 8, 3, 6, 4, 8, 9, 12, 12, 16]);
    expect(y1.shape).toEqual([1, 1, 3, 3]);
    expect([...(await y1.data())]).toEqual([1, 4, 4, 6, 20, 16, 9, 24, 16]);
    y2.dispose();
    y1.dispose();
  });

  it('rejects bad shapes, naming the op and every shape', () => {
    const g = gpu();
    tidy(() => {
      const x = Tensor.zeros(g, [1, 4, 8, 8]);
      const w = Tensor.zeros(g, [3, 32, 3, 3]);
      expect(() => convTranspose2d(x, w, null)).toThrow(ShapeError);
      expect(() => convTranspose2d(x, w, null)).toThrow('convTranspose2d: input channels (4) must equal weight in-channels (3, the weight\'s first dimension); x [1,4,8,8], w [3,32,3,3]');
      const w4 = Tensor.zeros(g, [4, 32, 3, 3]);
      expect(() => convTranspose2d(x, w4, Tensor.zeros(g, [4]))).toThrow('convTranspose2d: bias must have shape [32] (weight out-channels); x [1,4,8,8], w [4,32,3,3], b [4]');
      expect(() => convTranspose2d(x, w4, null, { stride: 2, outputPadding: 2 })).toThrow(
        'convTranspose2d: outputPadding (2) must be a non-negative integer smaller than stride (2); x [1,4,8,8], w [4,32,3,3]',
      );
      expect(() => convTranspose2d(Tensor.zeros(g, [1, 4, 1, 1]), w4, null, { padding: 2 })).toThrow('convTranspose2d: output size');
    });
  });
});

describe('conv2d and convTranspose2d with the other workgroup size of the tiled kernels', () => {
  // The adapter's default is its SIMD width on a CPU adapter (8 on lavapipe) and 64 on a GPU; the same kernels
  // at the other size (a different lane-to-tile mapping and grid) must give the same results.
  let alt: Gpu | null = null;
  beforeAll(async () => {
    alt = await Gpu.create({ tileWorkgroup: gpu().tileWorkgroup === 64 ? 8 : 64 });
  }, 60_000);
  afterAll(() => alt?.destroy());
  it('every conv2d and convTranspose2d case, forward and gradients', async () => {
    expect(alt!.tileWorkgroup).not.toBe(gpu().tileWorkgroup);
    for (const [i, c] of CONV_CASES.entries()) await checkOp(alt!, convCase(c, 100 + 10 * i));
    for (const [i, c] of CONVT_CASES.entries()) await checkOp(alt!, convTCase(c, 500 + 10 * i));
  });
});

describe('Conv2d and ConvTranspose2d modules', () => {
  it('have PyTorch parameter names, shapes and init bounds, and forward through the functional ops', async () => {
    const g = gpu();
    const conv = new Conv2d(g, 3, 8, 3, { stride: 2, padding: 1, rand: rng(1) });
    expect(conv.namedParameters().map(([n, t]) => [n, t.shape])).toEqual([
      ['weight', [8, 3, 3, 3]],
      ['bias', [8]],
    ]);
    const bound = 1 / Math.sqrt(3 * 3 * 3);
    for (const t of conv.parameters()) {
      const d = await t.data();
      expect(Math.max(...d.map(Math.abs))).toBeLessThanOrEqual(bound);
      expect(Math.max(...d.map(Math.abs))).toBeGreaterThan(bound / 2);
    }
    const convT = new ConvTranspose2d(g, 8, 4, 3, { stride: 2, padding: 1, outputPadding: 1, bias: false, rand: rng(2) });
    expect(convT.namedParameters().map(([n, t]) => [n, t.shape])).toEqual([['weight', [8, 4, 3, 3]]]);
    const boundT = 1 / Math.sqrt(4 * 3 * 3);
    const wd = await convT.weight.data();
    expect(Math.max(...wd.map(Math.abs))).toBeLessThanOrEqual(boundT);
    expect(Math.max(...wd.map(Math.abs))).toBeGreaterThan(1 / Math.sqrt(8 * 3 * 3)); // fan-in is out·k·k, not in·k·k

    const xs = input([2, 3, 9, 7], 9);
    const wdata = Float64Array.from(await conv.weight.data());
    const bdata = Float64Array.from(await conv.bias!.data());
    const geom: ConvGeom = { N: 2, Cin: 3, Cout: 8, H: 9, W: 7, kH: 3, kW: 3, stride: 2, padding: 1 };
    const mid = conv2dRef(geom, xs.data, wdata, bdata);
    const want = convTranspose2dRef({ N: 2, Cin: 8, Cout: 4, H: 5, W: 4, kH: 3, kW: 3, stride: 2, padding: 1 }, 1, mid.y, Float64Array.from(wd), null);
    const y = tidy(() => convT.forward(conv.forward(Tensor.from(g, Float32Array.from(xs.data), xs.shape))));
    expect(y.shape).toEqual([2, 4, 10, 8]);
    expectClose(await y.data(), want.y, 2e-5, 'Conv2d → ConvTranspose2d');
    y.dispose();
    conv.dispose();
    convT.dispose();
  });
});
