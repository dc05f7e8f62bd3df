// Each perceptual loss's gradient w.r.t. the input image, against central finite differences of a float64
// reference of the same loss on a small random loss network (conv-relu-conv(stride 2)-relu, taps a and b).
import { describe, expect, it } from 'vitest';
import { Tensor, keep, noGrad, tidy } from '../src/autograd/tensor.js';
import { gram } from '../src/layers/gram.js';
import { mseLoss, totalVariation } from '../src/layers/loss.js';
import type { LossNetwork } from '../src/nets/loss-network.js';
import { StyleTransferLoss, featureLoss, styleLoss, targetFeatures } from '../src/train/perceptual-loss.js';
import type { Gpu } from '../src/gpu/index.js';
import { useGpu } from './helpers/gpu.js';
import { tinyLossNet } from './helpers/tiny-loss-net.js';
import { expectClose } from './helpers/opcheck.js';
import { randn, rng, uniform } from './helpers/rand.js';
import { conv2dRef, type ConvGeom } from './reference/conv.js';
import { gramRef } from './reference/gram.js';
import { mseRef, tvRef } from './reference/loss.js';

const gpu = useGpu();
const [H, W] = [6, 7];
const r = rng(2024);
const w1 = randn(4 * 3 * 9, r, 0.3);
const b1 = randn(4, r, 0.1);
const w2 = randn(5 * 4 * 9, r, 0.3);
const b2 = randn(5, r, 0.1);

function g1(N: number): ConvGeom {
  return { N, Cin: 3, Cout: 4, H, W, kH: 3, kW: 3, stride: 1, padding: 1 };
}
function g2(N: number): ConvGeom {
  return { N, Cin: 4, Cout: 5, H, W, kH: 3, kW: 3, stride: 2, padding: 1 };
}

/** Float64 forward: taps a = relu(conv1 x), b = relu(conv2 a). */
function refFeatures(x: Float64Array, N: number): Map<string, { y: Float64Array; shape: number[] }> {
  const a = conv2dRef(g1(N), x, w1, b1);
  a.y = a.y.map((v) => Math.max(v, 0));
  const b = conv2dRef(g2(N), a.y, w2, b2);
  b.y = b.y.map((v) => Math.max(v, 0));
  return new Map([['a', a], ['b', b]]);
}

const tinyNet = (g: Gpu): LossNetwork => tinyLossNet(g, { w1, b1, w2, b2 });

/** Gradient of a float64 scalar function by central differences, every coordinate. */
function fdGrad(f: (x: Float64Array) => number, x0: Float64Array, h = 1e-5): Float64Array {
  const x = Float64Array.from(x0);
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    x[i] = v + h;
    const fp = f(x);
    x[i] = v - h;
    const fm = f(x);
    x[i] = v;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

const mse = (a: Float64Array, b: Float64Array) => mseRef(a, b).y[0];

async function gpuGrad(g: Gpu, x: Float64Array, shape: number[], loss: (xt: Tensor) => Tensor): Promise<{ value: number; grad: Float32Array }> {
  const xt = Tensor.param(g, Float32Array.from(x), shape);
  const value = await tidy(() => {
    const l = loss(xt);
    l.backward();
    return l;
  }).data();
  const grad = await xt.grad!.data();
  xt.dispose();
  return { value: value[0], grad };
}

describe('perceptual losses: gradient w.r.t. the image = finite differences of the float64 reference', () => {
  const N = 2;
  const shape = [N, 3, H, W];
  const x = uniform(N * 3 * H * W, rng(7), 0, 1);
  const y = uniform(N * 3 * H * W, rng(8), 0, 1);
  const style = uniform(3 * H * W, rng(9), 0, 1);
  const weights = { a: 0.7, b: 1.3 };

  it('feature reconstruction loss (two layers, weighted)', async () => {
    const g = gpu();
    const net = tinyNet(g);
    const fy = refFeatures(y, N);
    const ref = (xx: Float64Array) => {
      const f = refFeatures(xx, N);
      return 0.7 * mse(f.get('a')!.y, fy.get('a')!.y) + 1.3 * mse(f.get('b')!.y, fy.get('b')!.y);
    };
    const yt = Tensor.from(g, Float32Array.from(y), shape);
    const { value, grad } = await gpuGrad(g, x, shape, (xt) => featureLoss(net, xt, targetFeatures(net, yt, weights), weights));
    expect(value).toBeCloseTo(ref(x), 4);
    expectClose(grad, fdGrad(ref, x), 1e-4, 'feature loss gradient');
    yt.dispose();
    net.dispose();
  });

  it('style reconstruction loss, style Grams of one image broadcast over the batch', async () => {
    const g = gpu();
    const net = tinyNet(g);
    const fs = refFeatures(style, 1);
    const gs = new Map([...fs].map(([k, f]) => [k, gramRef(f.y, f.shape).y]));
    const ref = (xx: Float64Array) => {
      let total = 0;
      for (const [k, wk] of Object.entries(weights)) {
        const f = refFeatures(xx, N).get(k)!;
        const gx = gramRef(f.y, f.shape).y;
        const target = new Float64Array(gx.length);
        for (let n = 0; n < N; n++) target.set(gs.get(k)!, n * gs.get(k)!.length);
        total += wk * mse(gx, target);
      }
      return total;
    };
    const st = Tensor.from(g, Float32Array.from(style), [1, 3, H, W]);
    const grams = new Map<string, Tensor>();
    tidy(() => {
      for (const [k, f] of targetFeatures(net, st, weights)) grams.set(k, keep(noGrad(() => gram(f))));
    });
    const { value, grad } = await gpuGrad(g, x, shape, (xt) => styleLoss(net, xt, grams, weights));
    expect(value / ref(x)).toBeCloseTo(1, 4);
    expectClose(grad, fdGrad(ref, x), 1e-4, 'style loss gradient');
    for (const t of [...grams.values(), st]) t.dispose();
    net.dispose();
  });

  it('pixel loss and total variation', async () => {
    const g = gpu();
    const yt = Tensor.from(g, Float32Array.from(y), shape);
    const refPix = (xx: Float64Array) => mse(xx, y);
    const pix = await gpuGrad(g, x, shape, (xt) => mseLoss(xt, yt));
    expectClose(pix.grad, fdGrad(refPix, x), 1e-5, 'pixel loss gradient');
    const refTv = (xx: Float64Array) => tvRef(xx, shape).y[0];
    const tv = await gpuGrad(g, x, shape, (xt) => totalVariation(xt));
    expectClose(tv.grad, fdGrad(refTv, x), 1e-5, 'TV gradient');
    yt.dispose();
  });

  it('the style-transfer objective λc·l_feat + λs·Σ l_style + λTV·l_TV', async () => {
    const g = gpu();
    const net = tinyNet(g);
    const st = Tensor.from(g, Float32Array.from(style), [1, 3, H, W]);
    const loss = new StyleTransferLoss(net, st, { contentLayers: ['b'], styleLayers: weights, contentWeight: 2, styleWeight: 3, tvWeight: 0.01 });
    const fs = refFeatures(style, 1);
    const ref = (xx: Float64Array) => {
      const f = refFeatures(xx, N);
      const fy = refFeatures(y, N);
      let s = 0;
      for (const [k, wk] of Object.entries(weights)) {
        const gx = gramRef(f.get(k)!.y, f.get(k)!.shape).y;
        const one = gramRef(fs.get(k)!.y, fs.get(k)!.shape).y;
        const target = new Float64Array(gx.length);
        for (let n = 0; n < N; n++) target.set(one, n * one.length);
        s += wk * mse(gx, target);
      }
      return 2 * mse(f.get('b')!.y, fy.get('b')!.y) + 3 * s + 0.01 * tvRef(xx, shape).y[0];
    };
    const yt = Tensor.from(g, Float32Array.from(y), shape);
    const { value, grad } = await gpuGrad(g, x, shape, (xt) => loss.compute(xt, yt).total);
    expect(value / ref(x)).toBeCloseTo(1, 4);
    expectClose(grad, fdGrad(ref, x), 1e-4, 'style-transfer objective gradient');
    expect(() => new StyleTransferLoss(net, st, { contentLayers: ['relu3_3'] })).toThrow(/vgg16 has no layer relu3_3; it offers a, b/);
    loss.dispose();
    for (const t of [st, yt]) t.dispose();
    net.dispose();
  });
});
