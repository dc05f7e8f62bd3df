// A two-layer LossNetwork for tests: a = relu(conv3×3(x; 3→4, pad 1)), b = relu(conv3×3(a; 4→5, stride 2, pad 1)).
import { Tensor } from '../../src/autograd/tensor.js';
import type { Gpu } from '../../src/gpu/index.js';
import { conv2d } from '../../src/layers/conv.js';
import { relu } from '../../src/layers/elementwise.js';
import type { LossNetwork } from '../../src/nets/loss-network.js';

export interface TinyWeights {
  w1: Float64Array; // [4,3,3,3]
  b1: Float64Array; // [4]
  w2: Float64Array; // [5,4,3,3]
  b2: Float64Array; // [5]
}

export function tinyLossNet(g: Gpu, w: TinyWeights): LossNetwork {
  const p = (d: Float64Array, s: number[]) => {
    const t = Tensor.param(g, Float32Array.from(d), s);
    t.requiresGrad = false;
    return t;
  };
  const [W1, B1, W2, B2] = [p(w.w1, [4, 3, 3, 3]), p(w.b1, [4]), p(w.w2, [5, 4, 3, 3]), p(w.b2, [5])];
  return {
    name: 'vgg16',
    preprocess: 'rgb01_imagenet_norm',
    taps: ['a', 'b'],
    defaultContentLayers: ['b'],
    defaultStyleLayers: ['a', 'b'],
    features(x: Tensor, taps: readonly string[]) {
      const a = relu(conv2d(x, W1, B1, { padding: 1 }));
      const out = new Map<string, Tensor>();
      if (taps.includes('a')) out.set('a', a);
      if (taps.includes('b')) out.set('b', relu(conv2d(a, W2, B2, { stride: 2, padding: 1 })));
      return out;
    },
    dispose() {
      for (const t of [W1, B1, W2, B2]) t.dispose();
    },
  } as LossNetwork;
}
