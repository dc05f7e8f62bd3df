import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Tensor, tidy } from '../src/autograd/tensor.js';
import { WeightFileError, readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { loadLossNetwork } from '../src/nets/loss-network-node.js';
import { SQUEEZENET_TAPS, softmaxTopK, type SqueezeNet11 } from '../src/nets/squeezenet.js';
import { errorOf } from './helpers/errors.js';
import { useGpu } from './helpers/gpu.js';
import { checkOp, relErr } from './helpers/opcheck.js';
import { rng, uniform } from './helpers/rand.js';
import { Tape, squeezenetRef, type State, type V } from './reference/cnn.js';
import { SHARED_TAG } from './helpers/shared.js';

const gpu = useGpu();

const FIRES: [number, number, number, number][] = [
  [3, 64, 16, 64], [4, 128, 16, 64], [6, 128, 32, 128], [7, 256, 32, 128],
  [9, 256, 48, 192], [10, 384, 48, 192], [11, 384, 64, 256], [12, 512, 64, 256],
];

/** torchvision squeezenet1_1 shapes, He-uniform weights, small biases. */
function randomSqueezeNet(seed: number, classifier = true): State {
  const r = rng(seed);
  const state: State = new Map();
  const conv = (name: string, cout: number, cin: number, k: number) => {
    const bound = Math.sqrt(6 / (cin * k * k));
    const w = new Float32Array(cout * cin * k * k);
    for (let i = 0; i < w.length; i++) w[i] = (2 * r() - 1) * bound;
    const b = new Float32Array(cout);
    for (let i = 0; i < cout; i++) b[i] = 0.1 * (2 * r() - 1);
    state.set(`${name}.weight`, { data: w, shape: [cout, cin, k, k] });
    state.set(`${name}.bias`, { data: b, shape: [cout] });
  };
  conv('features.0', 64, 3, 3);
  for (const [i, cin, s, e] of FIRES) {
    conv(`features.${i}.squeeze`, s, cin, 1);
    conv(`features.${i}.expand1x1`, e, s, 1);
    conv(`features.${i}.expand3x3`, e, s, 3);
  }
  if (classifier) conv('classifier.1', 1000, 512, 1);
  return state;
}

const image = (shape: number[], seed: number) => uniform(shape.reduce((a, b) => a * b, 1), rng(seed), 0, 255);

/** GPU taps (and logits under the key "logits") read back. */
async function run(net: SqueezeNet11, x: Float64Array, shape: number[], taps: string[], preprocessed = false): Promise<Map<string, Float32Array>> {
  const f = tidy(() => {
    const t = Tensor.from(gpu(), Float32Array.from(x), shape);
    return { ...Object.fromEntries(net.features(t, taps, { preprocessed })), logits: net.logits(t, { preprocessed }) };
  });
  const out = new Map<string, Float32Array>();
  for (const [k, v] of Object.entries(f)) out.set(k, await v.data());
  Object.values(f).forEach((v) => v.dispose()); // aliases share a tensor: read everything first

  return out;
}

const SHARED_WEIGHTS = fileURLToPath(new URL('../../shared/weights/squeezenet1_1.safetensors', import.meta.url));
const SHARED_REF = fileURLToPath(new URL('../../shared/reference/squeezenet1_1_chicago.safetensors', import.meta.url));
const HAVE_SHARED = existsSync(SHARED_WEIGHTS) && existsSync(SHARED_REF);

describe.skipIf(!HAVE_SHARED)(`real SqueezeNet 1.1 (shared/weights) against torchvision ${SHARED_TAG}`, () => {
  it('reproduces every tap, the logits and the top-5 on chicago', async () => {
    const net = await loadLossNetwork(gpu(), 'squeezenet1_1', SHARED_WEIGHTS);
    try {
      expect(net.preprocess).toBe('rgb01_imagenet_norm');
      expect(net.numClasses).toBe(1000);
      const ref = readSafetensors(new Uint8Array(readFileSync(SHARED_REF)), SHARED_REF);
      const input = ref.tensors.get('input')!;
      const got = await run(net, Float64Array.from(input.data), input.shape, [...SQUEEZENET_TAPS], true);
      for (const k of [...SQUEEZENET_TAPS, 'logits']) {
        const e = relErr(got.get(k)!, ref.tensors.get(k)!.data);
        console.log(`squeezenet1_1 chicago ${k}: relative L2 error ${e.toExponential(3)}`);
        expect(e).toBeLessThanOrEqual(1e-4);
      }
      const top5 = tidy(() => Tensor.from(gpu(), input.data, input.shape));
      const cls = await net.classify(top5, { preprocessed: true });
      top5.dispose();
      expect(cls).toHaveLength(1);
      expect(cls[0].map((c) => c.index)).toEqual(JSON.parse(ref.metadata.top5));
      console.log(`squeezenet1_1 chicago top-5: ${cls[0].map((c) => `${c.index} ${c.probability.toFixed(4)}`).join(', ')}`);
    } finally {
      net.dispose();
    }
  });
});

describe('SqueezeNet 1.1 with random weights', () => {
  it('every tap and the logits match the float64 reference (batch 2, odd sizes, ceil-mode pools)', async () => {
    const state = randomSqueezeNet(1);
    const net = await loadLossNetwork(gpu(), 'squeezenet1_1', writeSafetensors(state));
    const shape = [2, 3, 35, 37];
    const x = image(shape, 2);
    try {
      expect(net.preprocess).toBe('rgb01_imagenet_norm');
      expect(net.taps).toEqual(SQUEEZENET_TAPS);
      expect(net.defaultContentLayers).toEqual(['features.4']);
      expect(net.defaultStyleLayers).toEqual(['features.1', 'features.4', 'features.7', 'features.9']);
      const got = await run(net, x, shape, [...SQUEEZENET_TAPS, 'fire3', 'relu1']);
      const tape = new Tape();
      const ref = squeezenetRef(tape, state, tape.preprocess({ data: x, shape }, 'rgb01_imagenet_norm'));
      expect(ref.features[2].shape).toEqual([2, 64, 8, 9]); // ceil mode: 17×18 → 8×9
      for (const k of [...SQUEEZENET_TAPS, 'logits']) {
        const want = k === 'logits' ? ref.logits! : ref.features[Number(k.split('.')[1])];
        const e = relErr(got.get(k)!, want.data);
        console.log(`squeezenet1_1 random ${k}: relative L2 error ${e.toExponential(3)}`);
        expect(e).toBeLessThanOrEqual(1e-4);
      }
      expect(got.get('fire3')).toEqual(got.get('features.4'));
      expect(got.get('relu1')).toEqual(got.get('features.1'));
      // classify: softmax top-k of each image's logits.
      const t = tidy(() => Tensor.from(gpu(), Float32Array.from(x), shape));
      const cls = await net.classify(t, { k: 3 });
      t.dispose();
      const logits = got.get('logits')!;
      expect(cls).toEqual([softmaxTopK(logits.subarray(0, 1000), 3), softmaxTopK(logits.subarray(1000), 3)]);
    } finally {
      net.dispose();
    }
  });

  it('gradients of a tap and of the logits w.r.t. the RGB input equal the float64 VJP', async () => {
    const state = randomSqueezeNet(3);
    const net = await loadLossNetwork(gpu(), 'squeezenet1_1', writeSafetensors(state));
    const shape = [1, 3, 19, 21];
    const refRun = (d: Float64Array, tap: number | 'logits') => {
      const tape = new Tape();
      const v: V = { data: d, shape };
      const r = squeezenetRef(tape, state, tape.preprocess(v, 'rgb01_imagenet_norm'), tap === 'logits' ? 12 : tap, tap === 'logits');
      return { tape, v, out: tap === 'logits' ? r.logits! : r.features[tap] };
    };
    try {
      for (const tap of [7, 'logits'] as const) {
        await checkOp(gpu(), {
          name: `squeezenet1_1 ${tap}`,
          inputs: [{ data: image(shape, 4), shape, grad: true }],
          gpu: ([x]) => (tap === 'logits' ? net.logits(x) : net.features(x, [`features.${tap}`]).get(`features.${tap}`)!),
          ref: ([d]) => {
            const { out } = refRun(d, tap);
            return { y: out.data, shape: out.shape };
          },
          vjp: ([d], dy) => {
            const { tape, v, out } = refRun(d, tap);
            tape.backward(out, dy);
            return [v.grad!];
          },
          tolForward: 1e-4,
          tolGrad: 1e-4,
          fdSamples: 6,
        });
      }
      expect(net.parameters().every((p) => p.grad === null && !p.requiresGrad)).toBe(true);
    } finally {
      net.dispose();
    }
  });

  it('weight file errors: missing, mis-shaped, no classifier; unknown taps', async () => {
    const missing = randomSqueezeNet(5);
    missing.delete('features.7.expand3x3.bias');
    await expect(loadLossNetwork(gpu(), 'squeezenet1_1', writeSafetensors(missing), { file: 'm.safetensors' })).rejects.toThrow(
      'squeezenet1_1: m.safetensors: missing tensors: features.7.expand3x3.bias',
    );
    const bad = randomSqueezeNet(5);
    bad.set('features.9.squeeze.weight', { data: new Float32Array(48 * 128), shape: [48, 128, 1, 1] });
    await expect(loadLossNetwork(gpu(), 'squeezenet1_1', writeSafetensors(bad), { file: 'b.safetensors' })).rejects.toThrow(
      'squeezenet1_1: b.safetensors: tensor features.9.squeeze.weight: expected shape [48,256,1,1], found [48,128,1,1]',
    );
    const net = await loadLossNetwork(gpu(), 'squeezenet1_1', writeSafetensors(randomSqueezeNet(6, false), { input: 'bgr255_mean_sub' }), {
      file: 'headless.safetensors',
    });
    try {
      expect(net.numClasses).toBe(0);
      expect(net.preprocess).toBe('bgr255_mean_sub');
      const x = Tensor.zeros(gpu(), [1, 3, 32, 32]);
      expect(errorOf(() => net.logits(x))).toBeInstanceOf(WeightFileError);
      expect(errorOf(() => net.logits(x)).message).toBe(
        'squeezenet1_1: headless.safetensors has no classifier.1.weight/bias, so it cannot classify (features() still works)',
      );
      const f = net.features(x, ['features.12']);
      expect(f.get('features.12')!.shape).toEqual([1, 512, 1, 1]);
      f.get('features.12')!.dispose();
      expect(errorOf(() => net.features(x, ['features.13'])).message).toMatch(/^squeezenet1_1: unknown tap "features.13"; taps are features.1, features.4/);
      expect(errorOf(() => net.features(Tensor.zeros(gpu(), [1, 3, 16]), ['features.1'])).message).toBe(
        'squeezenet1_1: input must be images [N,3,H,W] (RGB, 0..255); x [1,3,16]',
      );
      x.dispose();
    } finally {
      net.dispose();
    }
  });

  it('softmaxTopK', () => {
    const top = softmaxTopK([1, 3, 2, 3, -1000], 3);
    const z = 2 * Math.exp(3) + Math.exp(2) + Math.exp(1) + Math.exp(-1000);
    expect(top.map((t) => t.index)).toEqual([1, 3, 2]);
    expect(top[0].probability).toBeCloseTo(Math.exp(3) / z, 12);
    expect(top[2].probability).toBeCloseTo(Math.exp(2) / z, 12);
  });
});
