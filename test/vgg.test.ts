import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tensor, noGrad, tidy } from '../src/autograd/tensor.js';
import { WeightFileError, readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { sum } from '../src/layers/reduce.js';
import { loadLossNetwork } from '../src/nets/loss-network-node.js';
import type { Vgg } from '../src/nets/vgg.js';
import { errorOf } from './helpers/errors.js';
import { useGpu } from './helpers/gpu.js';
import { checkOp, relErr } from './helpers/opcheck.js';
import { randomVgg } from './helpers/random-vgg.js';
import { rng, uniform } from './helpers/rand.js';
import { OrderedDict, f32, torchSave } from './helpers/torch-save.js';
import { Tape, preprocessRef, vggRef, type State, type V } from './reference/cnn.js';
import { SHARED_TAG } from './helpers/shared.js';

const gpu = useGpu();

const TAP_INDEX: Record<string, number> = { relu1_2: 3, relu2_2: 8, relu3_3: 15, relu4_3: 22, relu5_3: 29 };

const image = (shape: number[], seed: number) => uniform(shape.reduce((a, b) => a * b, 1), rng(seed), 0, 255);

/** Float64 taps of torchvision's vgg16().features on RGB 0..255 input (preprocessing included unless null). */
function refTaps(state: State, x: Float64Array, shape: number[], taps: string[], pre: 'rgb01_imagenet_norm' | 'bgr255_mean_sub' | null) {
  const tape = new Tape();
  const v = { data: x, shape };
  const outs = vggRef(tape, state, pre ? tape.preprocess(v, pre) : v, Math.max(...taps.map((t) => TAP_INDEX[t])));
  return new Map(taps.map((t) => [t, outs[TAP_INDEX[t]]]));
}

async function tapData(net: Vgg, x: Float64Array, shape: number[], taps: string[], preprocessed = false): Promise<Map<string, Float32Array>> {
  const f = tidy(() => net.features(Tensor.from(gpu(), Float32Array.from(x), shape), taps, { preprocessed }));
  const out = new Map<string, Float32Array>();
  for (const t of taps) out.set(t, await f.get(t)!.data());
  f.forEach((v) => v.dispose());
  return out;
}

const SHARED_WEIGHTS = fileURLToPath(new URL('../../shared/weights/vgg16_partial_relu2_2.safetensors', import.meta.url));
const SHARED_REF = fileURLToPath(new URL('../../shared/reference/vgg16_partial_golden_gate.safetensors', import.meta.url));
const HAVE_SHARED = existsSync(SHARED_WEIGHTS) && existsSync(SHARED_REF);

describe.skipIf(!HAVE_SHARED)(`real partial VGG-16 (shared/weights) against torchvision ${SHARED_TAG}`, () => {
  it('reproduces relu1_2 and relu2_2 on golden_gate, preprocessed and from RGB 0..255', async () => {
    const net = await loadLossNetwork(gpu(), 'vgg16', SHARED_WEIGHTS);
    try {
      expect(net.preprocess).toBe('bgr255_mean_sub');
      expect(net.taps).toEqual(['relu1_1', 'relu1_2', 'relu2_1', 'relu2_2']);
      expect(net.defaultContentLayers).toEqual(['relu2_2']);
      expect(net.defaultStyleLayers).toEqual(['relu1_2', 'relu2_2']);
      const ref = readSafetensors(new Uint8Array(await import('node:fs').then((fs) => fs.readFileSync(SHARED_REF))), SHARED_REF).tensors;
      const input = ref.get('input')!;
      const got = await tapData(net, Float64Array.from(input.data), input.shape, ['relu1_2', 'relu2_2'], true);
      // The same image as RGB 0..255 (undoing bgr255_mean_sub) through the built-in preprocessing.
      const [, , H, W] = input.shape;
      const S = H * W;
      const rgb = new Float64Array(3 * S);
      const mean = [103.939, 116.779, 123.68];
      for (let c = 0; c < 3; c++) for (let s = 0; s < S; s++) rgb[c * S + s] = input.data[(2 - c) * S + s] + mean[2 - c];
      const fromRgb = await tapData(net, rgb, input.shape, ['relu1_2', 'relu2_2']);
      for (const t of ['relu1_2', 'relu2_2']) {
        const want = ref.get(t)!;
        const e = relErr(got.get(t)!, want.data);
        const e2 = relErr(fromRgb.get(t)!, want.data);
        console.log(`vgg16 partial golden_gate ${t}: relative L2 error ${e.toExponential(3)} (preprocessed), ${e2.toExponential(3)} (RGB 0..255)`);
        expect(e).toBeLessThanOrEqual(1e-4);
        expect(e2).toBeLessThanOrEqual(1e-4);
      }
      const err = errorOf(() => net.features(Tensor.zeros(gpu(), [1, 3, 8, 8]), ['relu3_3']));
      expect(err).toBeInstanceOf(WeightFileError);
      expect(err.message).toBe(
        `vgg16: tap relu3_3 needs features.10, features.12, features.14 (conv3_1..conv3_3), which this weight file (${SHARED_WEIGHTS}) lacks; ` +
          'it has conv1_1..conv2_2 (up to relu2_2)',
      );
    } finally {
      net.dispose();
    }
  });
});

const VGG19_WEIGHTS = fileURLToPath(new URL('../../shared/weights/vgg19_partial_relu3_4.safetensors', import.meta.url));
const VGG19_REF = fileURLToPath(new URL('../../shared/reference/vgg19_partial_tubingen.safetensors', import.meta.url));
const HAVE_VGG19 = existsSync(VGG19_WEIGHTS) && existsSync(VGG19_REF);

describe.skipIf(!HAVE_VGG19)(`real partial VGG-19 (shared/weights) against torchvision ${SHARED_TAG}`, () => {
  it('reproduces all eight taps relu1_1..relu3_4 on tubingen within 1e-4', async () => {
    const net = await loadLossNetwork(gpu(), 'vgg19', VGG19_WEIGHTS);
    try {
      const taps = ['relu1_1', 'relu1_2', 'relu2_1', 'relu2_2', 'relu3_1', 'relu3_2', 'relu3_3', 'relu3_4'];
      expect(net.preprocess).toBe('bgr255_mean_sub');
      expect(net.taps).toEqual(taps);
      // Gatys' layers, limited to the file: style relu1_1..relu3_1; content relu4_2 is missing, so relu2_2.
      expect(net.defaultStyleLayers).toEqual(['relu1_1', 'relu2_1', 'relu3_1']);
      expect(net.defaultContentLayers).toEqual(['relu2_2']);
      expect(net.missingDefaults).toEqual(['relu4_1', 'relu5_1', 'relu4_2']);
      const ref = readSafetensors(new Uint8Array(await import('node:fs').then((fs) => fs.readFileSync(VGG19_REF))), VGG19_REF).tensors;
      const input = ref.get('input')!;
      const got = await tapData(net, Float64Array.from(input.data), input.shape, taps, true);
      for (const t of taps) {
        const e = relErr(got.get(t)!, ref.get(t)!.data);
        console.log(`vgg19 partial tubingen ${t}: relative L2 error ${e.toExponential(3)}`);
        expect(e).toBeLessThanOrEqual(1e-4);
      }
      expect(errorOf(() => net.features(Tensor.zeros(gpu(), [1, 3, 8, 8]), ['relu4_1'])).message).toBe(
        `vgg19: tap relu4_1 needs features.19 (conv4_1), which this weight file (${VGG19_WEIGHTS}) lacks; it has conv1_1..conv3_4 (up to relu3_4)`,
      );
    } finally {
      net.dispose();
    }
  });
});

describe('full-size VGG-19 with random weights', () => {
  it('relu1_1, relu3_4, relu4_2 and relu5_4 match the float64 reference; Gatys defaults', async () => {
    const state = randomVgg(16, 21, 'vgg19');
    const net = await loadLossNetwork(gpu(), 'vgg19', writeSafetensors(state));
    const shape = [1, 3, 32, 32];
    const x = image(shape, 22);
    const index: Record<string, number> = { relu1_1: 1, relu3_4: 17, relu4_2: 22, relu5_4: 35 };
    const taps = Object.keys(index);
    try {
      expect(net.taps).toHaveLength(16);
      expect(net.defaultContentLayers).toEqual(['relu4_2']);
      expect(net.defaultStyleLayers).toEqual(['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1']);
      expect(net.missingDefaults).toEqual([]);
      const got = await tapData(net, x, shape, taps);
      const tape = new Tape();
      const v = { data: x, shape };
      const outs = vggRef(tape, state, tape.preprocess(v, 'rgb01_imagenet_norm'), 35, 'vgg19');
      for (const t of taps) {
        const e = relErr(got.get(t)!, outs[index[t]].data);
        console.log(`vgg19 random full ${t}: relative L2 error ${e.toExponential(3)}`);
        expect(e).toBeLessThanOrEqual(1e-4);
      }
      expect(outs[35].shape).toEqual([1, 512, 2, 2]);
      expect(await tapData(net, x, shape, ['features.35']).then((m) => m.get('features.35'))).toEqual(got.get('relu5_4'));
    } finally {
      net.dispose();
    }
    // A VGG-16 file is not a VGG-19 one: its conv4_1 sits at features.17, a ReLU in VGG-19.
    await expect(loadLossNetwork(gpu(), 'vgg19', writeSafetensors(randomVgg(8, 23)), { file: 'v16.safetensors' })).rejects.toThrow(
      /^vgg19: v16.safetensors: tensors features.17.bias, features.17.weight are not part of VGG-19's features .*a VGG-16 or batch-norm VGG file\?$/,
    );
  });
});

describe('full-size VGG-16 with random weights', () => {
  let state: State;
  let bytes: Uint8Array;
  beforeAll(() => {
    state = randomVgg(13, 1);
    bytes = writeSafetensors(state);
  });

  it('relu1_2, relu3_3 and relu5_3 match the float64 reference (default preprocessing); .pth gives the same', async () => {
    const net = await loadLossNetwork(gpu(), 'vgg16', bytes);
    const shape = [1, 3, 32, 32];
    const x = image(shape, 2);
    const taps = ['relu1_2', 'relu3_3', 'relu5_3'];
    try {
      expect(net.preprocess).toBe('rgb01_imagenet_norm');
      expect(net.taps).toHaveLength(13);
      expect(net.defaultContentLayers).toEqual(['relu2_2']);
      expect(net.defaultStyleLayers).toEqual(['relu1_2', 'relu2_2', 'relu3_3', 'relu4_3']);
      const got = await tapData(net, x, shape, taps);
      const ref = refTaps(state, x, shape, taps, 'rgb01_imagenet_norm');
      for (const t of taps) {
        expect(ref.get(t)!.shape).toEqual([1, { relu1_2: 64, relu3_3: 256, relu5_3: 512 }[t], ...{ relu1_2: [32, 32], relu3_3: [8, 8], relu5_3: [2, 2] }[t]!]);
        const e = relErr(got.get(t)!, ref.get(t)!.data);
        console.log(`vgg16 random full ${t}: relative L2 error ${e.toExponential(3)}`);
        expect(e).toBeLessThanOrEqual(1e-4);
      }
      // Aliases: torchvision indices and names address the same outputs.
      const alias = await tapData(net, x, shape, ['features.15', 'relu3_3']);
      expect(alias.get('features.15')).toEqual(alias.get('relu3_3'));

      const pth = torchSave(new OrderedDict([...state].map(([k, t]) => [k, f32(t.data, t.shape)])));
      const net2 = await loadLossNetwork(gpu(), 'vgg16', pth, { file: 'random.pth' });
      try {
        expect(net2.preprocess).toBe('rgb01_imagenet_norm');
        const got2 = await tapData(net2, x, shape, taps);
        for (const t of taps) expect(got2.get(t)).toEqual(got.get(t));
      } finally {
        net2.dispose();
      }
    } finally {
      net.dispose();
    }
  });
});

describe('partial and malformed weight files', () => {
  const partial = () => randomVgg(4, 3);

  it('a file up to conv2_2 serves relu1_1..relu2_2 and names what relu3_3 lacks', async () => {
    const net = await loadLossNetwork(gpu(), 'vgg16', writeSafetensors(partial()), { file: 'partial.safetensors' });
    try {
      expect(net.taps).toEqual(['relu1_1', 'relu1_2', 'relu2_1', 'relu2_2']);
      expect(net.defaultStyleLayers).toEqual(['relu1_2', 'relu2_2']);
      const x = Tensor.zeros(gpu(), [1, 3, 8, 8]);
      const e = errorOf(() => net.features(x, ['relu1_2', 'relu3_3']));
      expect(e).toBeInstanceOf(WeightFileError);
      expect(e.message).toBe(
        'vgg16: tap relu3_3 needs features.10, features.12, features.14 (conv3_1..conv3_3), which this weight file (partial.safetensors) lacks; ' +
          'it has conv1_1..conv2_2 (up to relu2_2)',
      );
      expect(errorOf(() => net.features(x, ['features.10'])).message).toMatch(/^vgg16: tap features.10 needs features.10 \(conv3_1\), which/);
      expect(errorOf(() => net.features(x, ['relu6_1'])).message).toMatch(/^vgg16: unknown tap "relu6_1"; taps are relu1_1, relu1_2, .*relu5_3/);
      expect(errorOf(() => net.features(Tensor.zeros(gpu(), [1, 1, 8, 8]), ['relu1_2'])).message).toBe(
        'vgg16: input must be images [N,3,H,W] (RGB, 0..255); x [1,1,8,8]',
      );
      x.dispose();
    } finally {
      net.dispose();
    }
    // A gap: conv2_2 missing, conv3_1 present; the prefix stops at conv2_1.
    const gap = partial();
    gap.delete('features.7.weight');
    gap.delete('features.7.bias');
    const w = randomVgg(5, 4).get('features.10.weight')!;
    gap.set('features.10.weight', w).set('features.10.bias', { data: new Float32Array(256), shape: [256] });
    const net2 = await loadLossNetwork(gpu(), 'vgg16', writeSafetensors(gap), { file: 'gap.safetensors' });
    try {
      expect(net2.taps).toEqual(['relu1_1', 'relu1_2', 'relu2_1']);
      expect(net2.defaultContentLayers).toEqual(['relu2_1']);
      expect(errorOf(() => net2.features(Tensor.zeros(gpu(), [1, 3, 8, 8]), ['relu3_1'])).message).toBe(
        'vgg16: tap relu3_1 needs features.7, features.10 (conv2_2..conv3_1), which this weight file (gap.safetensors) lacks or cannot use ' +
          '(a layer before them is missing); it has conv1_1..conv2_1 (up to relu2_1)',
      );
    } finally {
      net2.dispose();
    }
  });

  it('mis-shaped, missing and foreign tensors are errors naming them', async () => {
    const bad = partial();
    bad.set('features.2.weight', { data: new Float32Array(64 * 3 * 9), shape: [64, 3, 3, 3] });
    await expect(loadLossNetwork(gpu(), 'vgg16', writeSafetensors(bad), { file: 'bad.safetensors' })).rejects.toThrow(
      'vgg16: bad.safetensors: tensor features.2.weight: expected shape [64,64,3,3], found [64,3,3,3]',
    );
    const noBias = partial();
    noBias.delete('features.5.bias');
    await expect(loadLossNetwork(gpu(), 'vgg16', writeSafetensors(noBias), { file: 'nb.safetensors' })).rejects.toThrow(
      'vgg16: nb.safetensors: missing tensors: features.5.bias',
    );
    const bn = partial();
    bn.set('features.1.running_mean', { data: new Float32Array(64), shape: [64] });
    await expect(loadLossNetwork(gpu(), 'vgg16', writeSafetensors(bn), { file: 'bn.safetensors' })).rejects.toThrow(
      /^vgg16: bn.safetensors: tensors features.1.running_mean are not part of VGG-16's features/,
    );
    await expect(loadLossNetwork(gpu(), 'vgg16', writeSafetensors({ 'x.weight': { data: new Float32Array(1), shape: [1] } }))).rejects.toThrow(
      'vgg16: weight file: no features.0.weight (conv1_1), so no VGG-16 layer can be computed; the file holds 1 tensors: x.weight',
    );
    await expect(loadLossNetwork(gpu(), 'vgg16', writeSafetensors(partial(), { arch: 'squeezenet1_1' }))).rejects.toThrow(
      'weight file: this file holds a squeezenet1_1 network (__metadata__.arch), not vgg16',
    );
    await expect(loadLossNetwork(gpu(), 'vgg16', writeSafetensors(partial(), { input: 'yuv' }))).rejects.toThrow(
      'weight file: unknown input preprocessing "yuv" (known: rgb01_imagenet_norm, bgr255_mean_sub) in __metadata__.input; pass the preprocess option',
    );
  });
});

describe('preprocessing and gradients', () => {
  it('RGB 0..255 through features() equals the preprocessed input with {preprocessed: true}', async () => {
    const state = randomVgg(4, 5);
    const shape = [2, 3, 11, 13];
    const x = image(shape, 6);
    // From metadata (with extra words after the name), and as an override of a file without metadata.
    const fromMeta = await loadLossNetwork(gpu(), 'vgg16', writeSafetensors(state, { input: 'bgr255_mean_sub, 0..255 BGR' }));
    const overridden = await loadLossNetwork(gpu(), 'vgg16', writeSafetensors(state), { preprocess: 'bgr255_mean_sub' });
    const torchvision = await loadLossNetwork(gpu(), 'vgg16', writeSafetensors(state, { input: 'bgr255_mean_sub' }), { preprocess: 'rgb01_imagenet_norm' });
    try {
      expect([fromMeta.preprocess, overridden.preprocess, torchvision.preprocess]).toEqual(['bgr255_mean_sub', 'bgr255_mean_sub', 'rgb01_imagenet_norm']);
      for (const net of [fromMeta, overridden, torchvision]) {
        const pre = preprocessRef(net.preprocess, x, shape).map(Math.fround);
        const a = await tapData(net, x, shape, ['relu1_2', 'relu2_2']);
        const b = await tapData(net, pre, shape, ['relu1_2', 'relu2_2'], true);
        for (const t of ['relu1_2', 'relu2_2']) expect(relErr(a.get(t)!, b.get(t)!)).toBeLessThanOrEqual(1e-5);
      }
    } finally {
      [fromMeta, overridden, torchvision].forEach((n) => n.dispose());
    }
  });

  it('the gradient of relu2_2 w.r.t. the RGB input equals the float64 VJP; weights stay frozen', async () => {
    const state = randomVgg(4, 7);
    const net = await loadLossNetwork(gpu(), 'vgg16', writeSafetensors(state));
    const shape = [1, 3, 10, 12];
    try {
      const run = (d: Float64Array) => {
        const tape = new Tape();
        const v: V = { data: d, shape };
        const out = vggRef(tape, state, tape.preprocess(v, 'rgb01_imagenet_norm'), 8)[8];
        return { tape, v, out };
      };
      await checkOp(gpu(), {
        name: 'vgg16 relu2_2',
        inputs: [{ data: image(shape, 8), shape, grad: true }],
        gpu: ([x]) => net.features(x, ['relu2_2']).get('relu2_2')!,
        ref: ([d]) => {
          const { out } = run(d);
          return { y: out.data, shape: out.shape };
        },
        vjp: ([d], dy) => {
          const { tape, v, out } = run(d);
          tape.backward(out, dy);
          return [v.grad!];
        },
        tolForward: 1e-4,
        tolGrad: 1e-4,
        fdSamples: 6,
      });
      // Gradients flow to the input only, and are not zero.
      const g = tidy(() => {
        const x = Tensor.from(gpu(), Float32Array.from(image(shape, 9)), shape, true);
        const f = net.features(x, ['relu1_2', 'relu2_2']);
        sum(f.get('relu2_2')!).backward();
        const grad = x.grad!;
        x.grad = null;
        return grad;
      });
      const gd = await g.data();
      g.dispose();
      expect(Math.hypot(...gd)).toBeGreaterThan(0);
      expect(net.parameters().every((p) => p.grad === null && !p.requiresGrad)).toBe(true);
    } finally {
      net.dispose();
    }
  });

  it('without a graph to keep, intermediate activations are freed as features() goes', async () => {
    const net = await loadLossNetwork(gpu(), 'vgg16', writeSafetensors(randomVgg(4, 10)));
    const g = gpu();
    const x = Tensor.from(g, Float32Array.from(image([1, 3, 16, 16], 11)), [1, 3, 16, 16]);
    try {
      await g.sync();
      const before = g.stats().inUseBytes;
      const f = net.features(x, ['relu2_2']);
      g.flush(); // returns the uniform buffers of the recorded dispatches
      expect(g.stats().inUseBytes - before).toBe(f.get('relu2_2')!.raw.buffer.size);
      f.get('relu2_2')!.dispose();
      const f2 = noGrad(() => net.features(x, ['relu1_2']));
      g.flush();
      expect(g.stats().inUseBytes - before).toBe(f2.get('relu1_2')!.raw.buffer.size);
      f2.get('relu1_2')!.dispose();
      await g.sync();
    } finally {
      x.dispose();
      net.dispose();
    }
  });
});
