// VGG-16 and VGG-19 (Simonyan & Zisserman 2014) `features`, the loss networks of Johnson et al. (VGG-16) and
// Gatys et al. (VGG-19), with torchvision's tensor names: features.N.weight [out,in,3,3] / features.N.bias [out]
// for every conv (all 3×3, padding 1), a ReLU after each, a 2×2 stride-2 max-pool closing each of the five
// blocks. VGG-16 has 2, 2, 3, 3, 3 convs per block, VGG-19 2, 2, 4, 4, 4. Partial weight files are fine: the
// file's convs, taken in order until the first missing one, decide which taps it serves.
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

export type VggName = 'vgg16' | 'vgg19';

type Conv = { index: number; name: string; cin: number; cout: number };
type Layer = { kind: 'conv' | 'relu' | 'pool'; name: string };

interface VggConfig {
  convs: Conv[];
  /** features[0..] with friendly names: convB_I, reluB_I, poolB. */
  layers: Layer[];
  taps: string[];
  /** Defaults, most wanted first; each network keeps those its file can serve. */
  content: string[];
  style: string[];
}

function config(perBlock: number[], content: string[], style: string[]): VggConfig {
  const convs: Conv[] = [];
  const layers: Layer[] = [];
  let cin = 3;
  perBlock.forEach((n, b) => {
    const cout = [64, 128, 256, 512, 512][b];
    for (let i = 1; i <= n; i++) {
      const name = `conv${b + 1}_${i}`;
      convs.push({ index: layers.length, name, cin, cout });
      layers.push({ kind: 'conv', name }, { kind: 'relu', name: name.replace('conv', 'relu') });
      cin = cout;
    }
    layers.push({ kind: 'pool', name: `pool${b + 1}` });
  });
  return { convs, layers, taps: layers.filter((l) => l.kind === 'relu').map((l) => l.name), content, style };
}

const CONFIGS: Record<VggName, VggConfig> = {
  // Johnson et al.: content (feature reconstruction) at relu2_2 for both tasks (many reimplementations use relu3_3
  // for style-transfer content); style at relu1_2, relu2_2, relu3_3, relu4_3.
  vgg16: config([2, 2, 3, 3, 3], ['relu2_2'], ['relu1_2', 'relu2_2', 'relu3_3', 'relu4_3']),
  // Gatys et al.: content at relu4_2, style at relu1_1 … relu5_1. A file without conv4_2 (the partial VGG-19 up to
  // relu3_4) uses Johnson's content layer, relu2_2, instead.
  vgg19: config([2, 2, 4, 4, 4], ['relu4_2', 'relu2_2'], ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1']),
};

/** The perceptual taps of each network, in depth order. */
export const VGG16_TAPS: readonly string[] = CONFIGS.vgg16.taps;
export const VGG19_TAPS: readonly string[] = CONFIGS.vgg19.taps;

/** The features index whose output a tap is: a friendly name (relu3_3, conv1_2, pool2) or "features.N". */
export function vggTapIndex(arch: VggName, tap: string): number {
  const { layers, taps } = CONFIGS[arch];
  const m = /^features\.(\d+)$/.exec(tap);
  const i = m ? Number(m[1]) : layers.findIndex((l) => l.name === tap);
  if (!(i >= 0 && i < layers.length)) {
    throw new Error(`${arch}: unknown tap "${tap}"; taps are ${taps.join(', ')} (also convB_I, poolB, or features.N for N in 0..${layers.length - 1})`);
  }
  return i;
}

/** "conv3_1..conv3_3", or a list when the convs are not consecutive. */
function convRange(all: Conv[], convs: Conv[]): string {
  const k = convs.map((c) => all.indexOf(c));
  const consecutive = k.every((v, j) => j === 0 || v === k[j - 1] + 1);
  if (convs.length === 1) return convs[0].name;
  return consecutive ? `${convs[0].name}..${convs.at(-1)!.name}` : convs.map((c) => c.name).join(', ');
}

export interface VggOptions {
  preprocess: Preprocess;
  /** Names the weight file in error messages. */
  file?: string;
}

export class Vgg extends Module implements LossNetwork {
  readonly preprocess: Preprocess;
  readonly taps: readonly string[];
  readonly defaultContentLayers: readonly string[];
  readonly defaultStyleLayers: readonly string[];
  /** Number of convs usable (the file's convs in order, up to the first missing one). */
  readonly depth: number;
  private readonly cfg: VggConfig;
  private readonly file: string;
  private readonly convs = new Map<number, { w: Tensor; b: Tensor }>();
  private readonly fileConvs: Set<number>;

  private constructor(
    gpu: Gpu,
    readonly name: VggName,
    tensors: ReadonlyMap<string, LoadedTensor>,
    opts: VggOptions,
  ) {
    super(gpu);
    const cfg = (this.cfg = CONFIGS[name]);
    const label = name === 'vgg16' ? 'VGG-16' : 'VGG-19';
    this.preprocess = opts.preprocess;
    this.file = opts.file ?? 'weight file';
    const has = (i: number) => tensors.has(`features.${i}.weight`);
    this.fileConvs = new Set(cfg.convs.filter((c) => has(c.index)).map((c) => c.index));
    let depth = 0;
    while (depth < cfg.convs.length && has(cfg.convs[depth].index)) depth++;
    this.depth = depth;
    if (depth === 0) {
      const names = [...tensors.keys()];
      throw new WeightFileError(
        `${name}: ${this.file}: no features.0.weight (conv1_1), so no ${label} layer can be computed; ` +
          `the file holds ${names.length} tensors${names.length ? `: ${names.slice(0, 8).join(', ')}${names.length > 8 ? ', ...' : ''}` : ''}`,
      );
    }
    const convIdx = new Set(cfg.convs.map((c) => c.index));
    const foreign = [...tensors.keys()].filter((k) => {
      const m = /^features\.(\d+)\.(weight|bias)$/.exec(k);
      return k.startsWith('features.') && !(m && convIdx.has(Number(m[1])));
    });
    if (foreign.length) {
      const other = name === 'vgg16' ? 'a VGG-19' : 'a VGG-16';
      throw new WeightFileError(
        `${name}: ${this.file}: tensors ${foreign.join(', ')} are not part of ${label}'s features ` +
          `(convs at features.${[...convIdx].join(',')}): ${other} or batch-norm VGG file?`,
      );
    }
    const expected = new Map<string, number[]>();
    for (const c of cfg.convs.slice(0, depth)) {
      expected.set(`features.${c.index}.weight`, [c.cout, c.cin, 3, 3]);
      expected.set(`features.${c.index}.bias`, [c.cout]);
    }
    checkTensors(`${name}: ${this.file}`, tensors, expected, { allowExtra: true });
    for (const { index: i } of cfg.convs.slice(0, depth)) {
      const w = tensors.get(`features.${i}.weight`)!;
      const b = tensors.get(`features.${i}.bias`)!;
      this.convs.set(i, { w: this.param(`features.${i}.weight`, w.data, w.shape), b: this.param(`features.${i}.bias`, b.data, b.shape) });
    }
    this.freeze();
    this.eval();
    const last = this.lastIndex;
    this.taps = cfg.taps.filter((t) => vggTapIndex(name, t) <= last);
    this.defaultContentLayers = [cfg.content.find((t) => this.taps.includes(t)) ?? this.taps.at(-1)!];
    this.defaultStyleLayers = cfg.style.filter((t) => this.taps.includes(t));
  }

  /** Validates the tensors (shapes, names) and uploads them; extra tensors such as classifier.* are ignored. */
  static fromTensors(gpu: Gpu, name: VggName, tensors: ReadonlyMap<string, LoadedTensor>, opts: VggOptions): Vgg {
    return new Vgg(gpu, name, tensors, opts);
  }

  /** The deepest features index this file can compute. */
  get lastIndex(): number {
    const { convs, layers } = this.cfg;
    return this.depth === convs.length ? layers.length - 1 : convs[this.depth].index - 1;
  }

  /** The default layers that this file could not serve (e.g. Gatys' relu4_1, relu5_1 in a partial file). */
  get missingDefaults(): string[] {
    return [...this.cfg.style, this.cfg.content[0]].filter((t) => !this.taps.includes(t));
  }

  private tapIndex(tap: string): number {
    const i = vggTapIndex(this.name, tap);
    if (i <= this.lastIndex) return i;
    const { convs, layers } = this.cfg;
    const lacking = convs.filter((c) => c.index <= i && !this.convs.has(c.index));
    const has = convs.slice(0, this.depth);
    const top = layers[this.lastIndex].kind === 'pool' ? this.lastIndex - 1 : this.lastIndex;
    throw new WeightFileError(
      `${this.name}: tap ${tap} needs ${lacking.map((c) => `features.${c.index}`).join(', ')} (${convRange(convs, lacking)}), ` +
        `which this weight file (${this.file}) lacks` +
        `${lacking.some((c) => this.fileConvs.has(c.index)) ? ' or cannot use (a layer before them is missing)' : ''}; ` +
        `it has ${convRange(convs, has)} (up to ${layers[top].name})`,
    );
  }

  /** RGB 0..255 → this file's input space. */
  preprocessInput(x: Tensor): Tensor {
    return preprocessImage(x, this.preprocess);
  }

  features(x: Tensor, taps: readonly string[], opts: FeatureOptions = {}): Map<string, Tensor> {
    const want = taps.map((t) => this.tapIndex(t));
    check(x.shape.length === 4 && x.shape[1] === 3, this.name, `input must be images [N,3,H,W]${opts.preprocessed ? '' : ' (RGB, 0..255)'}`, { x });
    const deepest = Math.max(-1, ...want);
    const out = new Map<string, Tensor>();
    if (deepest < 0) return out;
    const kept = new Set<Tensor>([x]);
    let h = opts.preprocessed ? x : this.preprocessInput(x);
    for (let i = 0; i <= deepest; i++) {
      const l = this.cfg.layers[i];
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
