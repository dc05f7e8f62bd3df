// VGG-16 (Simonyan & Zisserman 2014) `features`, the loss network of Johnson et al., with torchvision's
// tensor names: features.N.weight [out,in,3,3] / features.N.bias [out] for the 13 convs (all 3×3, padding 1),
// ReLU after each, 2×2 stride-2 max-pools at 4, 9, 16, 23, 30. Partial weight files are fine: the file's
// convs, taken in order until the first missing one, decide which taps it serves.
import type { Tensor } from '../autograd/tensor.js';
import type { Gpu } from '../gpu/index.js';
import { WeightFileError, checkTensors, type LoadedTensor } from '../io/safetensors.js';
import { preprocessImage, type Preprocess } from '../layers/channel-affine.js';
import { check } from '../layers/check.js';
import { conv2d } from '../layers/conv.js';
import { relu } from '../layers/elementwise.js';
import { Module } from '../layers/module.js';
import { maxPool2d } from '../layers/spatial.js';
import type { FeatureOptions, LossNetwork } from './loss-network-types.js';

/** [features index, name, in channels, out channels] of each conv. */
const CONVS: readonly [number, string, number, number][] = [
  [0, 'conv1_1', 3, 64], [2, 'conv1_2', 64, 64],
  [5, 'conv2_1', 64, 128], [7, 'conv2_2', 128, 128],
  [10, 'conv3_1', 128, 256], [12, 'conv3_2', 256, 256], [14, 'conv3_3', 256, 256],
  [17, 'conv4_1', 256, 512], [19, 'conv4_2', 512, 512], [21, 'conv4_3', 512, 512],
  [24, 'conv5_1', 512, 512], [26, 'conv5_2', 512, 512], [28, 'conv5_3', 512, 512],
];
const POOLS = [4, 9, 16, 23, 30];

type Layer = { kind: 'conv' | 'relu' | 'pool'; name: string };
/** features[0..30] with friendly names: convB_I, reluB_I, poolB. */
const LAYERS: Layer[] = [];
for (const [i, name] of CONVS) {
  LAYERS[i] = { kind: 'conv', name };
  LAYERS[i + 1] = { kind: 'relu', name: name.replace('conv', 'relu') };
}
POOLS.forEach((i, b) => (LAYERS[i] = { kind: 'pool', name: `pool${b + 1}` }));

/** The perceptual taps, in depth order. */
export const VGG16_TAPS: readonly string[] = LAYERS.filter((l) => l.kind === 'relu').map((l) => l.name);

/** The features index whose output a tap is: a friendly name (relu3_3, conv1_2, pool2) or "features.N". */
export function vgg16TapIndex(tap: string): number {
  const m = /^features\.(\d+)$/.exec(tap);
  const i = m ? Number(m[1]) : LAYERS.findIndex((l) => l.name === tap);
  if (!(i >= 0 && i < LAYERS.length)) {
    throw new Error(`vgg16: unknown tap "${tap}"; taps are ${VGG16_TAPS.join(', ')} (also convB_I, poolB, or features.N for N in 0..30)`);
  }
  return i;
}

/** "conv3_1..conv3_3", or a list when the convs are not consecutive. */
function convRange(convs: (typeof CONVS)[number][]): string {
  const k = convs.map((c) => CONVS.indexOf(c));
  const consecutive = k.every((v, j) => j === 0 || v === k[j - 1] + 1);
  if (convs.length === 1) return convs[0][1];
  return consecutive ? `${convs[0][1]}..${convs.at(-1)![1]}` : convs.map((c) => c[1]).join(', ');
}

export interface Vgg16Options {
  preprocess: Preprocess;
  /** Names the weight file in error messages. */
  file?: string;
}

export class Vgg16 extends Module implements LossNetwork {
  readonly name = 'vgg16' as const;
  readonly preprocess: Preprocess;
  readonly taps: readonly string[];
  // The paper's layers: content (feature reconstruction) at relu2_2, which it uses for both style transfer and
  // super-resolution (many reimplementations use relu3_3 for style-transfer content; relu2_2 is also the deepest
  // layer of the partial VGG-16 file we ship, so it works everywhere). Style at relu1_2, relu2_2, relu3_3,
  // relu4_3, restricted to the layers the file has. Files too short for relu2_2 fall back to their deepest tap.
  readonly defaultContentLayers: readonly string[];
  readonly defaultStyleLayers: readonly string[];
  /** Number of convs usable (the file's convs in order, up to the first missing one). */
  readonly depth: number;
  private readonly file: string;
  private readonly convs = new Map<number, { w: Tensor; b: Tensor }>();
  private readonly fileConvs: Set<number>;

  private constructor(gpu: Gpu, tensors: ReadonlyMap<string, LoadedTensor>, opts: Vgg16Options) {
    super(gpu);
    this.preprocess = opts.preprocess;
    this.file = opts.file ?? 'weight file';
    const has = (i: number) => tensors.has(`features.${i}.weight`);
    this.fileConvs = new Set(CONVS.filter(([i]) => has(i)).map(([i]) => i));
    let depth = 0;
    while (depth < CONVS.length && has(CONVS[depth][0])) depth++;
    this.depth = depth;
    if (depth === 0) {
      const names = [...tensors.keys()];
      throw new WeightFileError(
        `vgg16: ${this.file}: no features.0.weight (conv1_1), so no VGG-16 layer can be computed; ` +
          `the file holds ${names.length} tensors${names.length ? `: ${names.slice(0, 8).join(', ')}${names.length > 8 ? ', ...' : ''}` : ''}`,
      );
    }
    const convIdx = new Set(CONVS.map(([i]) => i));
    const foreign = [...tensors.keys()].filter((k) => {
      const m = /^features\.(\d+)\.(weight|bias)$/.exec(k);
      return k.startsWith('features.') && !(m && convIdx.has(Number(m[1])));
    });
    if (foreign.length) {
      throw new WeightFileError(
        `vgg16: ${this.file}: tensors ${foreign.join(', ')} are not part of VGG-16's features ` +
          '(convs at features.0,2,5,7,10,12,14,17,19,21,24,26,28): a VGG-19 or batch-norm VGG file?',
      );
    }
    const expected = new Map<string, number[]>();
    for (const [i, , cin, cout] of CONVS.slice(0, depth)) {
      expected.set(`features.${i}.weight`, [cout, cin, 3, 3]);
      expected.set(`features.${i}.bias`, [cout]);
    }
    checkTensors(`vgg16: ${this.file}`, tensors, expected, { allowExtra: true });
    for (const [i] of CONVS.slice(0, depth)) {
      const w = tensors.get(`features.${i}.weight`)!;
      const b = tensors.get(`features.${i}.bias`)!;
      this.convs.set(i, { w: this.param(`features.${i}.weight`, w.data, w.shape), b: this.param(`features.${i}.bias`, b.data, b.shape) });
    }
    this.freeze();
    this.eval();
    const last = this.lastIndex;
    this.taps = VGG16_TAPS.filter((t) => vgg16TapIndex(t) <= last);
    this.defaultContentLayers = this.taps.includes('relu2_2') ? ['relu2_2'] : [this.taps.at(-1)!];
    this.defaultStyleLayers = ['relu1_2', 'relu2_2', 'relu3_3', 'relu4_3'].filter((t) => this.taps.includes(t));
  }

  /** Validates the tensors (shapes, names) and uploads them; extra tensors such as classifier.* are ignored. */
  static fromTensors(gpu: Gpu, tensors: ReadonlyMap<string, LoadedTensor>, opts: Vgg16Options): Vgg16 {
    return new Vgg16(gpu, tensors, opts);
  }

  /** The deepest features index this file can compute. */
  get lastIndex(): number {
    return this.depth === CONVS.length ? LAYERS.length - 1 : CONVS[this.depth][0] - 1;
  }

  private tapIndex(tap: string): number {
    const i = vgg16TapIndex(tap);
    if (i <= this.lastIndex) return i;
    const lacking = CONVS.filter(([j]) => j <= i && !this.convs.has(j));
    const has = CONVS.slice(0, this.depth);
    const top = LAYERS[this.lastIndex].kind === 'pool' ? this.lastIndex - 1 : this.lastIndex;
    throw new WeightFileError(
      `vgg16: tap ${tap} needs ${lacking.map(([j]) => `features.${j}`).join(', ')} (${convRange(lacking)}), ` +
        `which this weight file (${this.file}) lacks` +
        `${lacking.some(([j]) => this.fileConvs.has(j)) ? ' or cannot use (a layer before them is missing)' : ''}; ` +
        `it has ${convRange(has)} (up to ${LAYERS[top].name})`,
    );
  }

  /** RGB 0..255 → this file's input space. */
  preprocessInput(x: Tensor): Tensor {
    return preprocessImage(x, this.preprocess);
  }

  features(x: Tensor, taps: readonly string[], opts: FeatureOptions = {}): Map<string, Tensor> {
    const want = taps.map((t) => this.tapIndex(t));
    check(x.shape.length === 4 && x.shape[1] === 3, 'vgg16', `input must be images [N,3,H,W]${opts.preprocessed ? '' : ' (RGB, 0..255)'}`, { x });
    const deepest = Math.max(-1, ...want);
    const out = new Map<string, Tensor>();
    if (deepest < 0) return out;
    const kept = new Set<Tensor>([x]);
    let h = opts.preprocessed ? x : this.preprocessInput(x);
    for (let i = 0; i <= deepest; i++) {
      const l = LAYERS[i];
      const c = this.convs.get(i);
      const next = l.kind === 'conv' ? conv2d(h, c!.w, c!.b, { padding: 1 }) : l.kind === 'relu' ? relu(h) : maxPool2d(h, { kernelSize: 2, stride: 2 });
      // Without a graph to keep alive, the previous activation is no longer needed.
      if (!next.requiresGrad && !kept.has(h)) h.dispose();
      h = next;
      want.forEach((j, k) => {
        if (j === i) {
          out.set(taps[k], h);
          kept.add(h);
        }
      });
    }
    return out;
  }
}
