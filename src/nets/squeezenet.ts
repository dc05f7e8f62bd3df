// SqueezeNet 1.1 (Iandola et al. 2016; torchvision `squeezenet1_1`), the fallback perceptual network. Tensor
// names are torchvision's. features: 0 conv 3→64 k3 s2 (no padding), 1 ReLU, 2 max-pool k3 s2 ceil_mode,
// Fire 3, 4, pool 5, Fire 6, 7, pool 8, Fire 9, 10, 11, 12. Fire = squeeze 1×1 + ReLU, then expand1x1 (1×1) and
// expand3x3 (3×3, padding 1), each + ReLU, concatenated as [expand1x1, expand3x3]. classifier: dropout
// (identity in eval), conv 512→1000 1×1, ReLU, global average pool → logits [N,1000] (no softmax).
import { noGrad, tidy, type Tensor } from '../autograd/tensor.js';
import type { Gpu } from '../gpu/index.js';
import { WeightFileError, checkTensors, type LoadedTensor } from '../io/safetensors.js';
import { preprocessImage, type Preprocess } from '../layers/channel-affine.js';
import { check } from '../layers/check.js';
import { conv2d } from '../layers/conv.js';
import { relu } from '../layers/elementwise.js';
import { Module } from '../layers/module.js';
import { flatten } from '../layers/reshape.js';
import { avgPool2dGlobal, concat, maxPool2d } from '../layers/spatial.js';
import type { FeatureOptions, LossNetwork } from './loss-network-types.js';

/** [features index, in channels, squeeze channels, expand channels (each of 1×1 and 3×3)] of each Fire module. */
const FIRES: readonly [number, number, number, number][] = [
  [3, 64, 16, 64], [4, 128, 16, 64], [6, 128, 32, 128], [7, 256, 32, 128],
  [9, 256, 48, 192], [10, 384, 48, 192], [11, 384, 64, 256], [12, 512, 64, 256],
];
const POOLS = [2, 5, 8];
const LAST = 12;

/** Friendly names after the SqueezeNet paper (conv1, fire2..fire9); relu1 is the ReLU after conv1. */
const ALIASES: Record<string, number> = { conv1: 0, relu1: 1, pool1: 2, fire2: 3, fire3: 4, pool3: 5, fire4: 6, fire5: 7, pool5: 8, fire6: 9, fire7: 10, fire8: 11, fire9: 12 };

/** The perceptual taps (LPIPS "squeeze" slice ends): outputs of features[1, 4, 7, 9, 10, 11, 12]. */
export const SQUEEZENET_TAPS: readonly string[] = ['features.1', 'features.4', 'features.7', 'features.9', 'features.10', 'features.11', 'features.12'];

/** The features index whose output a tap is: "features.N" (0..12) or an alias (relu1, fire3, ...). */
export function squeezenetTapIndex(tap: string): number {
  const m = /^features\.(\d+)$/.exec(tap);
  const i = m ? Number(m[1]) : Object.prototype.hasOwnProperty.call(ALIASES, tap) ? ALIASES[tap] : -1;
  if (!(i >= 0 && i <= LAST)) {
    throw new Error(
      `squeezenet1_1: unknown tap "${tap}"; taps are ${SQUEEZENET_TAPS.join(', ')} (features.N for N in 0..${LAST}, ` +
        `or ${Object.keys(ALIASES).join(', ')})`,
    );
  }
  return i;
}

/** Softmax (in float64) of one row of logits, and its k most probable classes, most probable first. */
export function softmaxTopK(logits: ArrayLike<number>, k = 5): { index: number; probability: number }[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const e = Array.from(logits, (v) => Math.exp(v - max));
  const z = e.reduce((a, b) => a + b, 0);
  return e
    .map((v, index) => ({ index, probability: v / z }))
    .sort((a, b) => b.probability - a.probability || a.index - b.index)
    .slice(0, k);
}

export interface SqueezeNetOptions {
  preprocess: Preprocess;
  file?: string;
}

type Conv = { w: Tensor; b: Tensor };

export class SqueezeNet11 extends Module implements LossNetwork {
  readonly name = 'squeezenet1_1' as const;
  readonly preprocess: Preprocess;
  readonly taps = SQUEEZENET_TAPS;
  // Content at features.4 (fire3, 128 channels at 1/4 resolution): its depth (five convs on the longest path)
  // is the closest match to VGG-16's relu2_2 (four convs), the paper's feature-reconstruction layer; features.1
  // is a single conv, too close to pixels to be perceptual. Style on the shallow-to-mid taps features.1, .4, .7,
  // .9 (1/2 to 1/16 resolution), the SqueezeNet counterparts of VGG's relu1_2, relu2_2, relu3_3, relu4_3 and the
  // first four slices of LPIPS's "squeeze" network; the 13×13 taps beyond add little texture information.
  readonly defaultContentLayers: readonly string[] = ['features.4'];
  readonly defaultStyleLayers: readonly string[] = ['features.1', 'features.4', 'features.7', 'features.9'];
  /** Classes of the classifier, or 0 when the file has none (logits() then throws). */
  readonly numClasses: number;
  private readonly file: string;
  private readonly conv0: Conv;
  private readonly fires = new Map<number, { squeeze: Conv; e1: Conv; e3: Conv }>();
  private readonly classifier: Conv | null;

  private constructor(gpu: Gpu, tensors: ReadonlyMap<string, LoadedTensor>, opts: SqueezeNetOptions) {
    super(gpu);
    this.preprocess = opts.preprocess;
    this.file = opts.file ?? 'weight file';
    const expected = new Map<string, number[]>([['features.0.weight', [64, 3, 3, 3]], ['features.0.bias', [64]]]);
    for (const [i, cin, s, e] of FIRES) {
      expected.set(`features.${i}.squeeze.weight`, [s, cin, 1, 1]).set(`features.${i}.squeeze.bias`, [s]);
      expected.set(`features.${i}.expand1x1.weight`, [e, s, 1, 1]).set(`features.${i}.expand1x1.bias`, [e]);
      expected.set(`features.${i}.expand3x3.weight`, [e, s, 3, 3]).set(`features.${i}.expand3x3.bias`, [e]);
    }
    const cw = tensors.get('classifier.1.weight');
    const classes = cw || tensors.has('classifier.1.bias') ? (cw?.shape[0] ?? 1000) : 0;
    if (classes) expected.set('classifier.1.weight', [classes, 512, 1, 1]).set('classifier.1.bias', [classes]);
    checkTensors(`squeezenet1_1: ${this.file}`, tensors, expected);
    this.numClasses = classes;
    const conv = (name: string): Conv => {
      const w = tensors.get(`${name}.weight`)!;
      const b = tensors.get(`${name}.bias`)!;
      return { w: this.param(`${name}.weight`, w.data, w.shape), b: this.param(`${name}.bias`, b.data, b.shape) };
    };
    this.conv0 = conv('features.0');
    for (const [i] of FIRES) {
      this.fires.set(i, { squeeze: conv(`features.${i}.squeeze`), e1: conv(`features.${i}.expand1x1`), e3: conv(`features.${i}.expand3x3`) });
    }
    this.classifier = classes ? conv('classifier.1') : null;
    this.freeze();
    this.eval();
  }

  /** Validates every tensor (all of features; the classifier is optional) and uploads them. */
  static fromTensors(gpu: Gpu, tensors: ReadonlyMap<string, LoadedTensor>, opts: SqueezeNetOptions): SqueezeNet11 {
    return new SqueezeNet11(gpu, tensors, opts);
  }

  preprocessInput(x: Tensor): Tensor {
    return preprocessImage(x, this.preprocess);
  }

  /** Runs features[0..last] and calls onOutput(i, h) after each; frees what no graph or caller needs. */
  private run(x: Tensor, last: number, opts: FeatureOptions, onOutput: (i: number, h: Tensor) => boolean): Tensor {
    check(x.shape.length === 4 && x.shape[1] === 3, 'squeezenet1_1', `input must be images [N,3,H,W]${opts.preprocessed ? '' : ' (RGB, 0..255)'}`, { x });
    const kept = new Set<Tensor>([x]);
    // Frees t once its consumer `by` exists, unless a graph (by.requiresGrad) or the caller still needs it.
    const done = (t: Tensor, by: Tensor) => {
      if (!by.requiresGrad && !kept.has(t)) t.dispose();
    };
    const c = (h: Tensor, k: Conv, padding = 0, stride = 1) => {
      const y = conv2d(h, k.w, k.b, { padding, stride });
      const r = relu(y);
      done(y, r);
      return r;
    };
    let h = opts.preprocessed ? x : this.preprocessInput(x);
    for (let i = 0; i <= last; i++) {
      let next: Tensor;
      if (i === 0) next = conv2d(h, this.conv0.w, this.conv0.b, { stride: 2 });
      else if (i === 1) next = relu(h);
      else if (POOLS.includes(i)) next = maxPool2d(h, { kernelSize: 3, stride: 2, ceilMode: true });
      else {
        const f = this.fires.get(i)!;
        const s = c(h, f.squeeze);
        const e1 = c(s, f.e1);
        const e3 = c(s, f.e3, 1);
        done(s, e3);
        next = concat([e1, e3], 1);
        done(e1, next);
        done(e3, next);
      }
      done(h, next);
      h = next;
      if (onOutput(i, h)) kept.add(h);
    }
    return h;
  }

  features(x: Tensor, taps: readonly string[], opts: FeatureOptions = {}): Map<string, Tensor> {
    const want = taps.map(squeezenetTapIndex);
    const out = new Map<string, Tensor>();
    if (want.length === 0) return out;
    this.run(x, Math.max(...want), opts, (i, h) => {
      want.forEach((j, k) => j === i && out.set(taps[k], h));
      return want.includes(i);
    });
    return out;
  }

  /** Class scores [N, numClasses] (before softmax), differentiable w.r.t. x. */
  logits(x: Tensor, opts: FeatureOptions = {}): Tensor {
    const cl = this.classifier;
    if (!cl) throw new WeightFileError(`squeezenet1_1: ${this.file} has no classifier.1.weight/bias, so it cannot classify (features() still works)`);
    const f = this.run(x, LAST, opts, () => false);
    const y = conv2d(f, cl.w, cl.b);
    if (!y.requiresGrad && f !== x) f.dispose();
    const r = relu(y);
    if (!r.requiresGrad) y.dispose();
    const p = avgPool2dGlobal(r);
    if (!p.requiresGrad) r.dispose();
    const out = flatten(p);
    if (!out.requiresGrad) p.dispose();
    return out;
  }

  /** The k most probable classes of each image (softmax on the CPU), most probable first. */
  async classify(x: Tensor, opts: FeatureOptions & { k?: number } = {}): Promise<{ index: number; probability: number }[][]> {
    const logits = noGrad(() => tidy(() => this.logits(x, opts)));
    try {
      const data = await logits.data();
      const [N, K] = logits.shape;
      return Array.from({ length: N }, (_, n) => softmaxTopK(data.subarray(n * K, (n + 1) * K), opts.k ?? 5));
    } finally {
      logits.dispose();
    }
  }
}
