import { describe, expect, it } from 'vitest';
import { Tensor, noGrad, tidy } from '../src/autograd/tensor.js';
import { ShapeError } from '../src/gpu/errors.js';
import { BatchNorm2d, InstanceNorm2d, batchNorm2d, instanceNorm2d } from '../src/layers/norm.js';
import { checkOp, expectClose, input, type OpCase } from './helpers/opcheck.js';
import { numel, randInt, randn, rng, uniform } from './helpers/rand.js';
import { useGpu } from './helpers/gpu.js';
import { normRef, normVjp, runningUpdate, type NormRefOpts } from './reference/norm.js';

const gpu = useGpu();

const CHANNELS = [1, 3, 5, 17];
const PLANES = [
  [1, 7],
  [5, 5],
  [13, 9],
  [33, 17],
];
type Affine = 'both' | 'none' | 'weight';
const AFFINE: Affine[] = ['both', 'none', 'weight'];

function shapesFor(seed: number): number[][] {
  const r = rng(seed);
  return CHANNELS.map((C, k) => [randInt(r, 1, 3), C, ...PLANES[k]]);
}

type In = { data: Float64Array; shape: number[]; grad: boolean };

/** An OpCase over [x, weight?, bias?] for either op. */
function normCase(
  name: string,
  x: In,
  affine: Affine,
  seed: number,
  o: Omit<NormRefOpts, 'shape'>,
  run: (x: Tensor, w: Tensor | null, b: Tensor | null) => Tensor,
): OpCase {
  const C = x.shape[1];
  const w: In | null = affine !== 'none' ? { data: randn(C, rng(seed + 1), 0.7).map((v) => Math.fround(v + 1)), shape: [C], grad: true } : null;
  const b: In | null = affine === 'both' ? input([C], seed + 2) : null;
  const inputs = [x, ...(w ? [w] : []), ...(b ? [b] : [])];
  const opts: NormRefOpts = { ...o, shape: x.shape };
  const split = <T>(xs: T[]): [T, T | null, T | null] => [xs[0], w ? xs[1] : null, b ? xs[w ? 2 : 1] : null];
  return {
    name: `${name} ${x.shape} affine=${affine}`,
    inputs,
    gpu: (ts) => run(...split(ts)),
    ref: (ds) => {
      const [xd, wd, bd] = split(ds);
      return normRef(xd, wd, bd, opts);
    },
    vjp: (ds, dy) => {
      const [xd, wd, bd] = split(ds);
      const g = normVjp(xd, wd, bd, dy, opts);
      return [g.dx, ...(w ? [g.dw] : []), ...(b ? [g.db] : [])];
    },
    tolForward: 1e-5,
    tolGrad: 2e-5,
    fdSamples: 12,
    seed,
  };
}

function bnCase(x: In, affine: Affine, seed: number, training: boolean, fixed?: { mean: Float64Array; var: Float64Array }): OpCase {
  const C = x.shape[1];
  const rm = fixed?.mean ?? new Float64Array(C);
  const rv = fixed?.var ?? new Float64Array(C).fill(1);
  return normCase(`batchNorm2d ${training ? 'train' : 'eval'}`, x, affine, seed, { perChannel: true, eps: 1e-5, fixed: training ? undefined : { mean: rm, var: rv } }, (t, w, b) =>
    batchNorm2d(t, w, b, Tensor.from(t.gpu, Float32Array.from(rm), [C]), Tensor.from(t.gpu, Float32Array.from(rv), [C]), { training }),
  );
}

function runningStats(C: number, seed: number) {
  const r = rng(seed);
  return { mean: randn(C, r, 0.5), var: uniform(C, r, 0.5, 2) };
}

describe('batchNorm2d', () => {
  for (const training of [true, false]) {
    it(`${training ? 'training' : 'eval'}: forward and gradients (x, weight, bias) on random shapes`, async () => {
      for (const [k, shape] of shapesFor(training ? 1 : 2).entries()) {
        const seed = 10 * k + (training ? 0 : 5);
        const x = input(shape, seed, 1.5);
        const fixed = training ? undefined : runningStats(shape[1], seed + 3);
        for (const affine of [AFFINE[k % 3], AFFINE[(k + 1) % 3]]) await checkOp(gpu(), bnCase(x, affine, seed, training, fixed));
      }
    });
  }

  it('running statistics after one and two training forwards (in place, unbiased variance)', async () => {
    const g = gpu();
    for (const [k, shape] of shapesFor(3).entries()) {
      const C = shape[1];
      const init = runningStats(C, 40 + k);
      const momentum = k === 0 ? 0.1 : 0.3;
      const rm = Tensor.from(g, Float32Array.from(init.mean), [C]);
      const rv = Tensor.from(g, Float32Array.from(init.var), [C]);
      let exp = { mean: init.mean, var: init.var };
      for (let step = 0; step < 2; step++) {
        const x = randn(numel(shape), rng(50 + 10 * k + step), 2).map((v) => Math.fround(v + step - 0.5));
        // Under noGrad too: PyTorch updates running statistics whenever the module is training.
        noGrad(() => tidy(() => void batchNorm2d(Tensor.from(g, Float32Array.from(x), shape), null, null, rm, rv, { training: true, momentum })));
        exp = runningUpdate(x, shape, exp.mean, exp.var, momentum);
        expectClose(await rm.data(), exp.mean, 1e-5, `running_mean ${shape} step ${step + 1}`);
        expectClose(await rv.data(), exp.var, 1e-5, `running_var ${shape} step ${step + 1}`);
      }
      rm.dispose();
      rv.dispose();
    }
  });

  it('large mean (values 200 ± 1): statistics stay accurate, forward and gradients', async () => {
    const shape = [2, 3, 64, 64];
    const x = { ...input(shape, 61), data: randn(numel(shape), rng(61)).map((v) => Math.fround(200 + v)) };
    await checkOp(gpu(), bnCase(x, 'both', 61, true));
    const g = gpu();
    const rm = Tensor.zeros(g, [3]);
    const rv = Tensor.from(g, [1, 1, 1], [3]);
    tidy(() => void batchNorm2d(Tensor.from(g, Float32Array.from(x.data), shape), null, null, rm, rv, { training: true, momentum: 1 }));
    const exp = runningUpdate(x.data, shape, new Float64Array(3), new Float64Array(3).fill(1), 1);
    expectClose(await rm.data(), exp.mean, 1e-6, 'running_mean at mean 200');
    expectClose(await rv.data(), exp.var, 1e-4, 'running_var at mean 200');
    rm.dispose();
    rv.dispose();
  });

  it('big planes (many chunks per channel: 1×2×300×301, 2×1×256×520), training and eval', async () => {
    const x = input([1, 2, 300, 301], 71, 3);
    await checkOp(gpu(), { ...bnCase(x, 'both', 71, true), fdSamples: 4 });
    await checkOp(gpu(), { ...bnCase(x, 'weight', 72, false, runningStats(2, 73)), fdSamples: 4 });
    // N·H·W = 266240 per channel: more chunks (of 1024) than the finalize workgroup has invocations.
    await checkOp(gpu(), { ...bnCase(input([2, 1, 256, 520], 74, 2), 'both', 74, true), fdSamples: 2 });
  });

  it('shape errors name the op and every shape', () => {
    const g = gpu();
    tidy(() => {
      const x = Tensor.zeros(g, [2, 3, 5, 5]);
      const c3 = Tensor.zeros(g, [3]);
      const w4 = Tensor.zeros(g, [4]);
      const run = () => batchNorm2d(x, w4, c3, c3, c3, { training: true });
      expect(run).toThrow(ShapeError);
      expect(run).toThrow('batchNorm2d: weight must have shape [C] with C = 3 channels of x; x [2,3,5,5], weight [4], bias [3], running_mean [3], running_var [3]');
      expect(() => batchNorm2d(x, null, null, c3, w4, { training: false })).toThrow('batchNorm2d: running_var must have shape [C]');
      expect(() => batchNorm2d(Tensor.zeros(g, [3, 5, 5]), null, null, c3, c3, { training: true })).toThrow('batchNorm2d: x must have 4 dimensions (N,C,H,W); x [3,5,5]');
      expect(() => batchNorm2d(Tensor.zeros(g, [1, 3, 1, 1]), null, null, c3, c3, { training: true })).toThrow(
        'batchNorm2d: expected more than 1 value per channel when training; x [1,3,1,1], running_mean [3], running_var [3]',
      );
    });
  });
});

describe('instanceNorm2d', () => {
  it('forward and gradients (x, weight, bias) on random shapes', async () => {
    for (const [k, shape] of shapesFor(4).entries()) {
      const x = input(shape, 80 + k, 2);
      for (const affine of [AFFINE[k % 3], AFFINE[(k + 2) % 3]]) {
        await checkOp(gpu(), normCase('instanceNorm2d', x, affine, 80 + k, { perChannel: false, eps: 1e-5 }, (t, w, b) => instanceNorm2d(t, w, b)));
      }
    }
  });

  it('large mean (values 200 ± 1) and a big plane 1×2×300×301', async () => {
    const shape = [2, 3, 40, 33];
    const x = { ...input(shape, 91), data: randn(numel(shape), rng(91)).map((v) => Math.fround(200 + v)) };
    await checkOp(gpu(), normCase('instanceNorm2d mean 200', x, 'both', 91, { perChannel: false, eps: 1e-5 }, (t, w, b) => instanceNorm2d(t, w, b)));
    const big = input([1, 2, 300, 301], 92, 3);
    big.data = big.data.map((v) => Math.fround(v + 100));
    await checkOp(gpu(), {
      ...normCase('instanceNorm2d big', big, 'both', 92, { perChannel: false, eps: 1e-3 }, (t, w, b) => instanceNorm2d(t, w, b, { eps: 1e-3 })),
      fdSamples: 4,
    });
  });

  it('shape errors name the op and every shape', () => {
    const g = gpu();
    tidy(() => {
      const x = Tensor.zeros(g, [2, 3, 5, 5]);
      expect(() => instanceNorm2d(x, Tensor.zeros(g, [3]), Tensor.zeros(g, [2]))).toThrow(
        new ShapeError('instanceNorm2d: bias must have shape [C] with C = 3 channels of x; x [2,3,5,5], weight [3], bias [2]'),
      );
      expect(() => instanceNorm2d(Tensor.zeros(g, [2, 3, 1, 1]), null, null)).toThrow('instanceNorm2d: expected more than 1 spatial element per plane; x [2,3,1,1]');
    });
  });
});

describe('modules', () => {
  it('BatchNorm2d: state names, train/eval modes, num_batches_tracked', async () => {
    const g = gpu();
    const bn = new BatchNorm2d(g, 3, { momentum: 0.2 });
    expect([...bn.stateDict().keys()]).toEqual(['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
    expect(bn.parameters().length).toBe(2);
    const shape = [2, 3, 4, 5];
    const x = randn(numel(shape), rng(7), 2).map((v) => Math.fround(v + 1));
    const y1 = await tidy(() => bn.forward(Tensor.from(g, Float32Array.from(x), shape))).data();
    expectClose(y1, normRef(x, null, null, { shape, perChannel: true, eps: 1e-5 }).y, 2e-5, 'BatchNorm2d training forward');
    const run = runningUpdate(x, shape, new Float64Array(3), new Float64Array(3).fill(1), 0.2);
    expectClose(await bn.running_var.data(), run.var, 1e-5, 'BatchNorm2d running_var');
    tidy(() => void bn.forward(Tensor.from(g, Float32Array.from(x), shape)));
    expect([...(await bn.num_batches_tracked.data())]).toEqual([2]);
    bn.eval();
    const rm = Float64Array.from(await bn.running_mean.data());
    const rv = Float64Array.from(await bn.running_var.data());
    const y2 = await tidy(() => bn.forward(Tensor.from(g, Float32Array.from(x), shape))).data();
    expectClose(y2, normRef(x, null, null, { shape, perChannel: true, eps: 1e-5, fixed: { mean: rm, var: rv } }).y, 2e-5, 'BatchNorm2d eval forward');
    expect([...(await bn.num_batches_tracked.data())]).toEqual([2]);
    expect([...(await bn.running_mean.data())]).toEqual([...rm].map(Math.fround));
    bn.dispose();
    const plain = new BatchNorm2d(g, 4, { affine: false });
    expect([...plain.stateDict().keys()]).toEqual(['running_mean', 'running_var', 'num_batches_tracked']);
    plain.dispose();
  });

  it('InstanceNorm2d: affine parameters, gradients reach them', async () => {
    const g = gpu();
    const inorm = new InstanceNorm2d(g, 3);
    expect([...inorm.stateDict().keys()]).toEqual(['weight', 'bias']);
    const shape = [2, 3, 6, 7];
    const x = randn(numel(shape), rng(8));
    const y = tidy(() => {
      const out = inorm.forward(Tensor.from(g, Float32Array.from(x), shape));
      out.backward();
      return out;
    });
    expectClose(await y.data(), normRef(x, null, null, { shape, perChannel: false, eps: 1e-5 }).y, 2e-5, 'InstanceNorm2d forward');
    // d/dbias of sum(y) = N·H·W per channel; d/dweight = Σ x̂ = 0.
    expectClose(await inorm.bias!.grad!.data(), [84, 84, 84], 1e-6, 'InstanceNorm2d bias grad');
    const dw = await inorm.weight!.grad!.data();
    for (const v of dw) expect(Math.abs(v)).toBeLessThan(1e-4);
    y.dispose();
    inorm.dispose();
    expect([...new InstanceNorm2d(g, 2, { affine: false }).stateDict().keys()]).toEqual([]);
  });
});
