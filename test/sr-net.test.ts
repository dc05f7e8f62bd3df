// The super-resolution networks (×4, ×8): the supplementary material's activation sizes, the forward pass against
// an independent float64 reference written from the architecture, gradients, tiled inference, model files.
import { describe, expect, it } from 'vitest';
import { Tensor, noGrad, tidy } from '../src/autograd/tensor.js';
import { ShapeError } from '../src/gpu/errors.js';
import { createImage } from '../src/io/image.js';
import { imresize } from '../src/io/bicubic.js';
import { WeightFileError, readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { mseLoss } from '../src/layers/loss.js';
import { SRNet, loadSRNet, saveSRNet, upscaleImage, type SRScale } from '../src/nets/sr-net.js';
import { errorOf } from './helpers/errors.js';
import { useGpu } from './helpers/gpu.js';
import { expectClose } from './helpers/opcheck.js';
import { numel, rng, uniform } from './helpers/rand.js';
import { conv2dRef, convTranspose2dRef } from './reference/conv.js';
import { normRef } from './reference/norm.js';
import { bicubicUpRef } from './reference/resize.js';

const gpu = useGpu();

type State = Map<string, { data: Float32Array; shape: readonly number[] }>;
interface A {
  data: Float64Array;
  shape: number[];
}

// ---- float64 reference, from the architecture (not from src/nets/sr-net.ts) ---------------------------------

const get = (s: State, k: string) => {
  const t = s.get(k);
  if (!t) throw new Error(`reference: no tensor ${k}`);
  return Float64Array.from(t.data);
};

function conv(s: State, x: A, name: string, pad: number): A {
  const [Cout, Cin, k] = s.get(`${name}.weight`)!.shape;
  const [N, , H, W] = x.shape;
  const r = conv2dRef({ N, Cin, Cout, H, W, kH: k, kW: k, stride: 1, padding: pad }, x.data, get(s, `${name}.weight`), get(s, `${name}.bias`));
  return { data: r.y, shape: r.shape };
}

function up(s: State, x: A, name: string): A {
  const [Cin, Cout, k] = s.get(`${name}.weight`)!.shape;
  const [N, , H, W] = x.shape;
  const r = convTranspose2dRef({ N, Cin, Cout, H, W, kH: k, kW: k, stride: 2, padding: 1 }, 1, x.data, get(s, `${name}.weight`), get(s, `${name}.bias`));
  return { data: r.y, shape: r.shape };
}

function bnRelu(s: State, x: A, name: string, training: boolean, relu = true): A {
  const fixed = training ? undefined : { mean: get(s, `${name}.running_mean`), var: get(s, `${name}.running_var`) };
  const { y } = normRef(x.data, get(s, `${name}.weight`), get(s, `${name}.bias`), { shape: x.shape, perChannel: true, eps: 1e-5, fixed });
  return { data: relu ? y.map((v) => Math.max(v, 0)) : y, shape: x.shape };
}

function srRef(s: State, x: A, scale: number, blocks: number, training: boolean, residual = false, shuffle = false): A {
  let h = bnRelu(s, conv(s, x, 'conv_in', 4), 'bn_in', training);
  for (let i = 1; i <= blocks; i++) {
    const a = bnRelu(s, conv(s, h, `res${i}.conv1`, 1), `res${i}.bn1`, training);
    const b = bnRelu(s, conv(s, a, `res${i}.conv2`, 1), `res${i}.bn2`, training, false);
    h = { data: h.data.map((v, j) => v + b.data[j]), shape: h.shape };
  }
  let o: A;
  if (shuffle) {
    // conv_out 3×3 to 3·scale² channels at the LR size; channel c·s² + i·s + j is sub-pixel (i, j) of colour c.
    const c = conv(s, h, 'conv_out', 1);
    const [N, , H, W] = c.shape;
    const data = new Float64Array(N * 3 * H * scale * W * scale);
    for (let n = 0; n < N; n++)
      for (let k = 0; k < 3; k++)
        for (let y = 0; y < H * scale; y++)
          for (let x2 = 0; x2 < W * scale; x2++)
            data[((n * 3 + k) * H * scale + y) * W * scale + x2] = c.data[((n * 3 * scale * scale + k * scale * scale + (y % scale) * scale + (x2 % scale)) * H + Math.floor(y / scale)) * W + Math.floor(x2 / scale)];
    o = { data, shape: [N, 3, H * scale, W * scale] };
  } else {
    for (let i = 1; i <= Math.log2(scale); i++) h = bnRelu(s, up(s, h, `up${i}`), `bn_up${i}`, training);
    o = conv(s, h, 'conv_out', 4);
  }
  // Residual: bicubic ×scale of the input plus the correction, no tanh.
  if (residual) {
    const up = bicubicUpRef(x.data, x.shape, scale);
    return { data: o.data.map((v, j) => v + up[j]), shape: o.shape };
  }
  return { data: o.data.map((v) => 127.5 * Math.tanh(v) + 127.5), shape: o.shape };
}

/** The expected state: names and shapes, written from the documented naming. */
function expectedShapes(scale: number, w: number, blocks: number): Record<string, number[]> {
  const s: Record<string, number[]> = {};
  const conv = (n: string, cin: number, cout: number, k: number, t = false) => {
    s[`${n}.weight`] = t ? [cin, cout, k, k] : [cout, cin, k, k];
    s[`${n}.bias`] = [cout];
  };
  const bn = (n: string, c: number) => {
    for (const k of ['weight', 'bias', 'running_mean', 'running_var']) s[`${n}.${k}`] = [c];
    s[`${n}.num_batches_tracked`] = [1];
  };
  conv('conv_in', 3, w, 9), bn('bn_in', w);
  for (let i = 1; i <= blocks; i++) conv(`res${i}.conv1`, w, w, 3), bn(`res${i}.bn1`, w), conv(`res${i}.conv2`, w, w, 3), bn(`res${i}.bn2`, w);
  for (let i = 1; i <= Math.log2(scale); i++) conv(`up${i}`, w, w, 3, true), bn(`bn_up${i}`, w);
  conv('conv_out', w, 3, 9);
  return s;
}

/** Random conv weights (He-uniform), small biases, BN weights near 1 and running statistics away from the defaults. */
function randomState(net: SRNet, seed: number): State {
  const r = rng(seed);
  const u = (n: number, lo: number, hi: number) => Float32Array.from(uniform(n, r, lo, hi));
  const state: State = new Map();
  for (const [name, shape] of net.stateShapes()) {
    const n = numel(shape);
    let data: Float32Array;
    if (shape.length === 4) {
      const fanIn = /^up\d/.test(name) ? (shape[0] * 9) / 4 : shape[1] * shape[2] * shape[3];
      const b = Math.sqrt(6 / fanIn);
      data = u(n, -b, b);
    } else if (name.endsWith('running_mean')) data = u(n, -5, 5);
    else if (name.endsWith('running_var')) data = u(n, 50, 500);
    else if (name.endsWith('num_batches_tracked')) data = new Float32Array(n).fill(3);
    else if (name.endsWith('.weight')) data = u(n, 0.7, 1.3);
    else data = u(n, -0.3, 0.3);
    state.set(name, { data, shape });
  }
  return state;
}

async function stateOf(net: SRNet): Promise<State> {
  const s: State = new Map();
  for (const [k, t] of net.stateDict()) s.set(k, { data: await t.data(), shape: [...t.shape] });
  return s;
}

async function run(net: SRNet, x: A): Promise<{ y: Float32Array; shape: readonly number[] }> {
  const out = tidy(() => noGrad(() => net.forward(Tensor.from(gpu(), Float32Array.from(x.data), x.shape))));
  try {
    return { y: await out.data(), shape: out.shape };
  } finally {
    out.dispose();
  }
}

const image = (shape: number[], seed: number): A => ({ data: uniform(numel(shape), rng(seed), 0, 255), shape });

describe('SRNet', () => {
  for (const [scale, size, rows] of [
    [4, 72, [['up1', 144], ['up2', 288]]],
    [8, 36, [['up1', 72], ['up2', 144], ['up3', 288]]],
  ] as [SRScale, number, [string, number][]][]) {
    it(`×${scale}: the supplementary table's activation sizes (3×${size}×${size} → 3×288×288), width 64`, () => {
      const table: [string, number[]][] = [
        ['input', [1, 3, size, size]],
        ['conv_in', [1, 64, size, size]],
        ...[1, 2, 3, 4].map((i): [string, number[]] => [`res${i}`, [1, 64, size, size]]),
        ...rows.map(([n, s]): [string, number[]] => [n, [1, 64, s, s]]),
        ['conv_out', [1, 3, 288, 288]],
      ];
      const net = new SRNet(gpu(), { scale, rand: rng(scale) }).eval();
      const seen: [string, number[]][] = [];
      const y = tidy(() => noGrad(() => net.forward(Tensor.zeros(gpu(), [1, 3, size, size]), { trace: (n, s) => seen.push([n, [...s]]) })));
      expect(y.shape).toEqual([1, 3, 288, 288]);
      y.dispose();
      net.dispose();
      expect(seen).toEqual(table);
    });
  }

  it('names and shapes its state as documented (×4 and ×8, paper width and blocks; custom ones)', () => {
    for (const [scale, width, blocks] of [[4, 64, 4], [8, 64, 4], [4, 6, 2]] as [SRScale, number, number][]) {
      const net = new SRNet(gpu(), { scale, width, blocks, rand: rng(2) });
      expect(Object.fromEntries([...net.stateShapes()].map(([k, s]) => [k, [...s]]))).toEqual(expectedShapes(scale, width, blocks));
      net.dispose();
    }
  });

  for (const [scale, training] of [[4, false], [4, true], [8, false]] as [SRScale, boolean][]) {
    it(`forward ×${scale} (${training ? 'train: batch statistics' : 'eval: running statistics'}) matches the float64 reference`, async () => {
      const net = new SRNet(gpu(), { scale, width: 5, blocks: 2, rand: rng(3) });
      const state = randomState(net, 10 + scale);
      net.loadStateDict(state);
      net.train(training);
      const x = image([2, 3, 5, 7], 4);
      const got = await run(net, x);
      const ref = srRef(state, x, scale, 2, training);
      expect([...got.shape]).toEqual(ref.shape);
      expectClose(got.y, ref.data, 1e-4, `srNet ×${scale}`);
      net.dispose();
    });
  }

  it('gradients flow to every parameter (train mode, MSE to a target)', async () => {
    const net = new SRNet(gpu(), { scale: 4, width: 4, blocks: 1, rand: rng(5) });
    tidy(() => {
      const x = Tensor.from(gpu(), Float32Array.from(image([2, 3, 6, 5], 6).data), [2, 3, 6, 5]);
      const t = Tensor.from(gpu(), Float32Array.from(image([2, 3, 24, 20], 7).data), [2, 3, 24, 20]);
      mseLoss(net.forward(x), t).backward();
    });
    for (const [name, p] of net.namedParameters()) {
      expect(p.grad, `no gradient for ${name}`).toBeTruthy();
      const g = await p.grad!.data();
      expect(g.every(Number.isFinite), `${name}: non-finite gradient`).toBe(true);
      expect(g.some((v) => v !== 0), `${name}: zero gradient`).toBe(true);
    }
    net.dispose();
  });

  it('rejects inputs that are not RGB images, naming the op and the shape', () => {
    const net = new SRNet(gpu(), { scale: 4, width: 2, blocks: 0 });
    const e = errorOf(() => tidy(() => void net.forward(Tensor.zeros(gpu(), [1, 4, 6, 6]))));
    expect(e).toBeInstanceOf(ShapeError);
    expect(e.message).toBe('srNet(×4): input must have 3 channels (RGB 0..255); x [1,4,6,6]');
    expect(() => new SRNet(gpu(), { scale: 2 as SRScale })).toThrow(/scale must be 4 or 8/);
    net.dispose();
  });

  it('upscaleImage: tiles with margins give the untiled result (eval mode)', async () => {
    const net = new SRNet(gpu(), { scale: 4, width: 4, blocks: 1, rand: rng(8) });
    net.loadStateDict(randomState(net, 9));
    net.eval();
    const img = createImage(23, 17, Float32Array.from(image([1, 3, 17, 23], 11).data));
    const whole = await upscaleImage(net, img);
    expect([whole.width, whole.height]).toEqual([92, 68]);
    const ref = srRef(await stateOf(net), { data: Float64Array.from(img.data), shape: [1, 3, 17, 23] }, 4, 1, false);
    expectClose(whole.data, ref.data, 1e-4, 'upscaleImage whole');
    const tiled = await upscaleImage(net, img, { tile: 6 });
    let worst = 0;
    for (let i = 0; i < whole.data.length; i++) worst = Math.max(worst, Math.abs(tiled.data[i] - whole.data[i]));
    expect(worst, 'largest difference between tiled and whole').toBeLessThan(1e-3);
    net.dispose();
  });
});

describe('SRNet with the bicubic global skip (residual)', () => {
  it('untrained (conv_out zero) it is bicubic ×4 exactly, and the float64 reference bicubic matches MATLAB on the shared LR', async () => {
    const net = new SRNet(gpu(), { scale: 4, width: 4, blocks: 1, residual: true, rand: rng(30) }).eval();
    const x = image([2, 3, 7, 6], 31);
    const got = await run(net, x);
    expectClose(got.y, bicubicUpRef(x.data, x.shape, 4), 1e-6, 'residual SRNet with zero conv_out vs bicubic');
    // The same within float32 rounding as the product's CPU imresize (uint8 off).
    const img = createImage(6, 7, Float32Array.from(x.data.subarray(0, 3 * 42)));
    expectClose(imresize(img, { scale: 4 }).data, bicubicUpRef(Float64Array.from(img.data), [1, 3, 7, 6], 4), 1e-6, 'CPU imresize vs reference');
    net.dispose();
  });

  for (const training of [false, true]) {
    it(`forward (${training ? 'train' : 'eval'}) against float64; the gradient w.r.t. the input against finite differences of the reference`, async () => {
      const net = new SRNet(gpu(), { scale: 4, width: 3, blocks: 1, residual: true, rand: rng(32) });
      const state = randomState(net, 33);
      net.loadStateDict(state);
      net.train(training);
      const x = image([training ? 2 : 1, 3, 5, 6], 34);
      const ref = srRef(state, x, 4, 1, training, true);
      const got = await run(net, x);
      expectClose(got.y, ref.data, 1e-4, 'residual srNet');
      if (training) return net.dispose();
      const dy = uniform(ref.data.length, rng(35), -1, 1);
      const g = tidy(() => {
        const t = Tensor.from(gpu(), Float32Array.from(x.data), x.shape, true);
        net.forward(t).backward(Tensor.from(gpu(), Float32Array.from(dy), [...ref.shape]));
        const grad = t.grad!;
        t.grad = null;
        return grad;
      });
      const gd = await g.data();
      g.dispose();
      const L = (d: Float64Array) => srRef(state, { data: d, shape: x.shape }, 4, 1, false, true).data.reduce((a, v, j) => a + v * dy[j], 0);
      for (const j of [0, 7, 31, 55, 89]) {
        const [p, m] = [Float64Array.from(x.data), Float64Array.from(x.data)];
        p[j] += 1e-3;
        m[j] -= 1e-3;
        const fd = (L(p) - L(m)) / 2e-3;
        expect(Math.abs(gd[j] - fd), `input gradient at ${j}: ${gd[j]} vs ${fd}`).toBeLessThan(2e-3 * Math.max(1, Math.abs(fd)));
      }
      const file = readSafetensors(await saveSRNet(net));
      expect(file.metadata.residual).toBe('bicubic');
      const back = loadSRNet(gpu(), await saveSRNet(net)).eval();
      expect(back.residual).toBe(true);
      expect((await run(back, x)).y).toEqual(got.y);
      back.dispose();
      net.dispose();
    });
  }
});

describe('SRNet with pixel-shuffle upsampling (beyond the paper)', () => {
  for (const residual of [false, true]) {
    it(`×4${residual ? ', residual' : ''}: forward (train and eval) against float64; files record the choice, or it is read off the tensors`, async () => {
      const net = new SRNet(gpu(), { scale: 4, width: 3, blocks: 1, residual, upsample: 'pixel-shuffle', rand: rng(40) });
      expect(net.stateShapes().get('conv_out.weight')).toEqual([48, 3, 3, 3]);
      expect(net.stateShapes().has('up1.weight')).toBe(false);
      const state = randomState(net, 41);
      net.loadStateDict(state);
      for (const training of [false, true]) {
        net.train(training);
        const x = image([2, 3, 5, 6], 42);
        expectClose((await run(net, x)).y, srRef(state, x, 4, 1, training, residual, true).data, 1e-4, `pixel-shuffle srNet (${training ? 'train' : 'eval'})`);
      }
      const bytes = await saveSRNet(net);
      expect(readSafetensors(bytes).metadata.upsample).toBe('pixel-shuffle');
      const bare = writeSafetensors(new Map([...readSafetensors(bytes).tensors].map(([k, t]) => [k, { data: t.data, shape: t.shape }])));
      const back = loadSRNet(gpu(), bare, { residual });
      expect([back.scale, back.upsample, back.width, back.blocks]).toEqual([4, 'pixel-shuffle', 3, 1]);
      back.eval();
      net.eval();
      const x = image([1, 3, 4, 4], 43);
      expect((await run(back, x)).y).toEqual((await run(net, x)).y);
      back.dispose();
      net.dispose();
    });
  }
});

describe('SR model files', () => {
  it('saveSRNet / loadSRNet round trip: metadata, state and outputs', async () => {
    const net = new SRNet(gpu(), { scale: 8, width: 3, blocks: 1, rand: rng(12) });
    net.loadStateDict(randomState(net, 13));
    const bytes = await saveSRNet(net, { note: 'test' });
    const file = readSafetensors(bytes);
    expect(file.metadata).toEqual({ arch: 'sr-net', scale: '8', width: '3', blocks: '1', norm: 'batch', note: 'test' });
    const back = loadSRNet(gpu(), bytes, { file: 'm.safetensors' });
    expect([back.scale, back.width, back.blocks, back.norm]).toEqual([8, 3, 1, 'batch']);
    expect(await stateOf(back)).toEqual(await stateOf(net));
    net.eval();
    back.eval();
    const x = image([1, 3, 4, 5], 14);
    expect((await run(back, x)).y).toEqual((await run(net, x)).y);
    // Without metadata, the architecture is read off the tensors.
    const bare = writeSafetensors(new Map([...file.tensors].map(([k, t]) => [k, { data: t.data, shape: t.shape }])));
    const inferred = loadSRNet(gpu(), bare);
    expect([inferred.scale, inferred.width, inferred.blocks, inferred.norm]).toEqual([8, 3, 1, 'batch']);
    inferred.dispose();
    back.dispose();
    await expect(saveSRNet(net, { arch: 'x' })).rejects.toThrow(/metadata key "arch"/);
    net.dispose();
  });

  it('errors name the file and what is wrong', async () => {
    const net = new SRNet(gpu(), { scale: 4, width: 2, blocks: 1, rand: rng(15) });
    const bytes = await saveSRNet(net);
    const file = readSafetensors(bytes);
    net.dispose();
    const rewrite = (f: (m: Map<string, { data: Float32Array; shape: readonly number[] }>) => void, meta: Record<string, string>) => {
      const m = new Map([...file.tensors].map(([k, t]) => [k, { data: t.data, shape: t.shape as readonly number[] }]));
      f(m);
      return writeSafetensors(m, meta);
    };
    let e = errorOf(() => loadSRNet(gpu(), rewrite(() => {}, { ...file.metadata, arch: 'transformer-net' }), { file: 'a.safetensors' }));
    expect(e).toBeInstanceOf(WeightFileError);
    expect(e.message).toBe('a.safetensors: this file holds a transformer-net network (__metadata__.arch), not sr-net');
    e = errorOf(() => loadSRNet(gpu(), rewrite((m) => m.delete('res1.conv2.bias'), file.metadata), { file: 'b.safetensors' }));
    expect(e.message).toBe('b.safetensors (SRNet(×4, batch norm, width 2, 1 blocks)): missing tensors: res1.conv2.bias');
    e = errorOf(() => loadSRNet(gpu(), rewrite((m) => m.set('up1.weight', { data: new Float32Array(2 * 2 * 9 * 2), shape: [2, 4, 3, 3] }), file.metadata), { file: 'c' }));
    expect(e.message).toMatch(/^c \(SRNet.*\): tensor up1\.weight: expected shape \[2,2,3,3\], found \[2,4,3,3\]$/);
    e = errorOf(() => loadSRNet(gpu(), rewrite(() => {}, { ...file.metadata, scale: '3' }), { file: 'd' }));
    expect(e.message).toBe('d: scale 3 (__metadata__.scale) is not supported (known: 4, 8)');
    e = errorOf(() => loadSRNet(gpu(), new Uint8Array([1, 2, 3]), { file: 'e' }));
    expect(e).toBeInstanceOf(WeightFileError);
    expect(e.message).toMatch(/^e/);
  });
});
