// The image transformation network of Johnson et al. 2016 (style transfer), in two variants:
//
// * 'paper' (supplementary material, final version): 40 px reflection pad; 9×9 conv (w), 3×3 stride-2 convs
//   (2w, 4w); five residual blocks of 4w with UNPADDED 3×3 convs (conv-norm-relu-conv-norm plus the identity
//   centre-cropped by 2 px per side, no relu after the add); two 3×3 stride-1/2 (transposed) convs (2w, w);
//   9×9 conv to 3 channels; norm + relu after every conv but the last; output 127.5·tanh + 127.5 ∈ [0, 255].
//   Zero padding as the authors' code: 4 for the 9×9 convs, 1 for the stride-2 convs, transposed convs
//   padding 1 with output padding 1. (The authors' Torch code used 150·tanh on mean-subtracted images; with
//   RGB 0..255 in and out, the paper's "scaled tanh to [0, 255]" is used here.) Width w = 32 is the paper's;
//   w = 16 the half-width instance-norm models of the authors' later release. Norm: batch (paper) or
//   instance (affine). State names: conv1, norm1, conv2, norm2, conv3, norm3, res1..res5.{conv1, norm1,
//   conv2, norm2}, deconv1, norm4, deconv2, norm5, conv4 (each conv .weight/.bias; batch norm adds
//   running_mean, running_var, num_batches_tracked).
//   The 40 px reflection pad is applied in stages when the input is not larger than 40 px (each stage pads
//   at most size − 1), which equals the whole-sample symmetric ("mirror") extension of the image.
//
// * 'pytorch-examples': exactly pytorch/examples fast_neural_style `TransformerNet` (width 32): reflection
//   pad k//2 before every conv, affine instance norm (eps 1e-5), nearest ×2 upsample + 3×3 conv instead of the
//   transposed convs (Odena et al. 2016: no checkerboard), no output activation; its state-dict names
//   (conv1.conv2d.weight, in1.weight, ...). Other widths are allowed (16: a quarter of the compute).
//
// Norm 'conditional-instance' (Dumoulin et al. 2017) makes one network serve `styles` styles: every instance norm
// holds a (γ, β) row per style ([S, C] weight and bias, same names), everything else is shared, and forward takes
// the style, or a blend of styles, as `style`.
//
// Sizes: inputs are RGB 0..255 [N,3,H,W] with H, W ≥ 5. Both variants shrink H by 4× and grow it back, so a
// size that is not a multiple of 4 would come out different (the paper's: 18 → 20; pytorch-examples' as
// well). With `matchInputSize` (default true) forward reflection-pads the input at the right and bottom up to a
// multiple of 4 and crops the output back, so the output always has the input's size; turn it off for
// the exact upstream semantics.
import { Tensor } from '../autograd/tensor.js';
import type { Gpu } from '../gpu/index.js';
import { check, checkRank } from '../layers/check.js';
import { Conv2d, ConvTranspose2d } from '../layers/conv.js';
import { scaledTanh } from '../layers/elementwise.js';
import { Module } from '../layers/module.js';
import { centerCrop2d, reflectionPad2d } from '../layers/spatial.js';
import { ConvLayer, ResidualBlock, isInference, makeNorm, relu, runRows, type NormKind, type Op, type Row, type WalkContext } from './blocks.js';

export type TransformerVariant = 'paper' | 'pytorch-examples';
export type TransformerNorm = NormKind;
export const TRANSFORMER_VARIANTS: readonly TransformerVariant[] = ['paper', 'pytorch-examples'];
export const TRANSFORMER_NORMS: readonly TransformerNorm[] = ['batch', 'instance', 'conditional-instance'];
/** A style of a multi-style network: its index, or weights per style (blended, normalised to sum 1). */
export type StyleBlend = number | readonly number[] | Float32Array;
/** What a model file says of one of its styles: its name, and e.g. title, artist, source, licence. */
export type StyleInfo = { name: string } & Record<string, string>;

export interface TransformerNetOptions {
  variant: TransformerVariant;
  /** Default: 'batch' for 'paper' (the paper's), 'instance' for 'pytorch-examples' (its only choice). */
  norm?: TransformerNorm;
  /** Channels of the first conv (the others are 2w and 4w): 32 full (default, and upstream pytorch-examples'), 16 half. */
  width?: number;
  /** Styles of a conditional-instance-norm network (default 1). */
  styles?: number;
  /** pytorch-examples' last conv is linear (upstream); 'tanh' makes it 127.5·tanh + 127.5 as the paper's, so an
   *  untrained network starts at mid-grey rather than black (the paper variant always has it). */
  output?: 'linear' | 'tanh';
  /** Uniform [0, 1) source for the initial conv weights (seed it for reproducible runs). */
  rand?: () => number;
}

export interface TransformerForwardOptions {
  /** Reflection-pad the input up to a multiple of 4 and crop the output back to the input's size (default true). */
  matchInputSize?: boolean;
  /** Called with every stage's output shape: 'input', ['padToMultiple'], the variant's layers, ['crop'], 'output'. */
  trace?: (name: string, shape: readonly number[]) => void;
  /** Multi-style networks: the style index or a blend of the styles (default style 0). */
  style?: StyleBlend;
}

/** The smallest height and width forward accepts (both variants). */
export const TRANSFORMER_MIN_SIZE = 5;

/** Reflection padding of any size: stages of at most size − 1 per side, which for symmetric pads equals the
 *  whole-sample symmetric (mirror) extension of the image. pad = [left, right, top, bottom]. */
export function reflectionPadAny(x: Tensor, pad: readonly [number, number, number, number]): Tensor {
  let [l, r, t, b] = pad;
  let h = x;
  check(x.shape.length === 4 && ((l === 0 && r === 0) || x.shape[3] > 1) && ((t === 0 && b === 0) || x.shape[2] > 1), 'reflectionPad2d', 'reflection needs at least 2 pixels along each padded dimension', { x });
  while (l > 0 || r > 0 || t > 0 || b > 0) {
    const [, , H, W] = h.shape;
    const s: [number, number, number, number] = [Math.min(l, W - 1), Math.min(r, W - 1), Math.min(t, H - 1), Math.min(b, H - 1)];
    const next = reflectionPad2d(h, s);
    if (h !== x && !next.requiresGrad) h.dispose();
    h = next;
    [l, r, t, b] = [l - s[0], r - s[1], t - s[2], b - s[3]];
  }
  return h;
}

/** Pads [N,C,H,W] at the right and bottom by reflection up to multiples of m; returns the amounts added. */
export function padToMultiple(x: Tensor, m: number): { y: Tensor; padH: number; padW: number } {
  const [, , H, W] = x.shape;
  const padH = (m - (H % m)) % m;
  const padW = (m - (W % m)) % m;
  if (!padH && !padW) return { y: x, padH, padW };
  return { y: reflectionPadAny(x, [0, padW, 0, padH]), padH, padW };
}

/** The paper's residual block: unpadded 3×3 convs, identity centre-cropped by 2 px per side. */
const paperResidual = (gpu: Gpu, c: number, norm: NormKind, styles: number, rand: () => number) =>
  new ResidualBlock(gpu, { conv1: 'conv1', norm1: 'norm1', conv2: 'conv2', norm2: 'norm2' }, { conv: () => new Conv2d(gpu, c, c, 3, { rand }), norm: () => makeNorm(gpu, c, norm, styles) }, 2);

/** pytorch/examples ResidualBlock: reflection-padded 3×3 ConvLayers, in1/in2 (size kept). */
const peResidual = (gpu: Gpu, c: number, norm: NormKind, styles: number, rand: () => number) =>
  new ResidualBlock(gpu, { conv1: 'conv1', norm1: 'in1', conv2: 'conv2', norm2: 'in2' }, { conv: () => new ConvLayer(gpu, c, c, 3, 1, rand), norm: () => makeNorm(gpu, c, norm, styles) });

const op = (name: string, apply: (x: Tensor) => Tensor): Op => ({ op: name, apply });

export class TransformerNet extends Module {
  readonly variant: TransformerVariant;
  readonly norm: TransformerNorm;
  readonly width: number;
  /** Number of styles (conditional instance norm: one γ, β row each; 1 otherwise). */
  readonly styles: number;
  /** The output activation (see TransformerNetOptions.output). */
  readonly output: 'linear' | 'tanh';
  /** Names (and what the model file says) of the styles, in order. */
  styleInfo: StyleInfo[];
  /** The network's table: named rows of layers (see blocks.ts). */
  private readonly rows: Row[];

  constructor(gpu: Gpu, opts: TransformerNetOptions) {
    super(gpu);
    const { variant, rand = Math.random } = opts;
    if (!TRANSFORMER_VARIANTS.includes(variant)) {
      throw new Error(`TransformerNet: unknown variant "${String(variant)}" (known: ${TRANSFORMER_VARIANTS.join(', ')})`);
    }
    this.variant = variant;
    const norm = opts.norm ?? (variant === 'paper' ? 'batch' : 'instance');
    if (!TRANSFORMER_NORMS.includes(norm)) throw new Error(`TransformerNet: unknown norm "${String(norm)}" (known: ${TRANSFORMER_NORMS.join(', ')})`);
    const width = opts.width ?? 32;
    if (!(Number.isInteger(width) && width >= 1)) throw new Error(`TransformerNet: width must be a positive integer, got ${width}`);
    if (variant === 'pytorch-examples' && norm === 'batch') throw new Error(`TransformerNet: the pytorch-examples variant uses instance norm (got norm "${norm}")`);
    const styles = opts.styles ?? 1;
    if (!(Number.isInteger(styles) && styles >= 1)) throw new Error(`TransformerNet: styles must be a positive integer, got ${styles}`);
    if (styles > 1 && norm !== 'conditional-instance') throw new Error(`TransformerNet: ${styles} styles need norm "conditional-instance" (got "${norm}")`);
    this.norm = norm;
    this.width = width;
    this.styles = styles;
    const output = opts.output ?? (variant === 'paper' ? 'tanh' : 'linear');
    if (output !== 'linear' && output !== 'tanh') throw new Error(`TransformerNet: unknown output "${String(output)}" (linear, tanh)`);
    if (variant === 'paper' && output !== 'tanh') throw new Error('TransformerNet: the paper variant ends in its scaled tanh (output "tanh")');
    this.output = output;
    const tanh = op('scaledTanh', (t) => scaledTanh(t, 127.5, 127.5));
    this.styleInfo = Array.from({ length: styles }, (_, i) => ({ name: `style${i + 1}` }));
    const w = width;
    const n = (name: string, c: number) => this.child(name, makeNorm(gpu, c, norm, styles));
    const res = (make: typeof paperResidual) => [1, 2, 3, 4, 5].map((i): Row => [`res${i}`, [this.child(`res${i}`, make(gpu, 4 * w, norm, styles, rand))]]);
    if (variant === 'pytorch-examples') {
      const conv = (name: string, cin: number, cout: number, k: number, stride: number, up = 1) => this.child(name, new ConvLayer(gpu, cin, cout, k, stride, rand, up));
      this.rows = [
        ['conv1', [conv('conv1', 3, w, 9, 1), n('in1', w), relu]],
        ['conv2', [conv('conv2', w, 2 * w, 3, 2), n('in2', 2 * w), relu]],
        ['conv3', [conv('conv3', 2 * w, 4 * w, 3, 2), n('in3', 4 * w), relu]],
        ...res(peResidual),
        ['deconv1', [conv('deconv1', 4 * w, 2 * w, 3, 1, 2), n('in4', 2 * w), relu]],
        ['deconv2', [conv('deconv2', 2 * w, w, 3, 1, 2), n('in5', w), relu]],
        ['deconv3', output === 'tanh' ? [conv('deconv3', w, 3, 9, 1), tanh] : [conv('deconv3', w, 3, 9, 1)]],
      ];
    } else {
      const conv = (name: string, cin: number, cout: number, k: number, o: { stride?: number; padding?: number }) => this.child(name, new Conv2d(gpu, cin, cout, k, { ...o, rand }));
      const up = (name: string, cin: number, cout: number) => this.child(name, new ConvTranspose2d(gpu, cin, cout, 3, { stride: 2, padding: 1, outputPadding: 1, rand }));
      this.rows = [
        ['pad', [op('reflectionPad40', (t) => reflectionPadAny(t, [40, 40, 40, 40]))]],
        ['conv1', [conv('conv1', 3, w, 9, { padding: 4 }), n('norm1', w), relu]],
        ['conv2', [conv('conv2', w, 2 * w, 3, { stride: 2, padding: 1 }), n('norm2', 2 * w), relu]],
        ['conv3', [conv('conv3', 2 * w, 4 * w, 3, { stride: 2, padding: 1 }), n('norm3', 4 * w), relu]],
        ...res(paperResidual),
        ['deconv1', [up('deconv1', 4 * w, 2 * w), n('norm4', 2 * w), relu]],
        ['deconv2', [up('deconv2', 2 * w, w), n('norm5', w), relu]],
        ['conv4', [conv('conv4', w, 3, 9, { padding: 4 }), tanh]],
      ];
    }
  }

  /** The style blend as weights per style: a style index, or weights (normalised to sum 1). */
  styleWeights(style: StyleBlend = 0): Float32Array {
    const S = this.styles;
    const w = new Float32Array(S);
    if (typeof style === 'number') {
      if (!(Number.isInteger(style) && style >= 0 && style < S)) throw new Error(`TransformerNet: style index ${style} out of range (the model has ${S} style${S > 1 ? 's' : ''}: 0..${S - 1})`);
      w[style] = 1;
      return w;
    }
    if (style.length !== S) throw new Error(`TransformerNet: a style blend needs ${S} weights (one per style), got ${style.length}`);
    const sum = Array.from(style).reduce((a, b) => a + b, 0);
    if (!(Array.from(style).every((v) => Number.isFinite(v) && v >= 0) && sum > 0)) throw new Error(`TransformerNet: style blend weights must be non-negative with a positive sum, got [${Array.from(style).join(', ')}]`);
    style.forEach((v, i) => (w[i] = v / sum));
    return w;
  }

  /** The rows and the context forward would run them with (tiled inference drives them itself). */
  plan(opts: TransformerForwardOptions = {}): { rows: readonly Row[]; ctx: WalkContext } {
    return { rows: this.rows, ctx: this.norm === 'conditional-instance' ? { style: Tensor.from(this.gpu, this.styleWeights(opts.style), [this.styles]) } : {} };
  }

  /** RGB 0..255 [N,3,H,W] (H, W ≥ 5) → RGB ≈0..255 [N,3,H,W] (with matchInputSize, the default). */
  forward(x: Tensor, opts: TransformerForwardOptions = {}): Tensor {
    const name = `transformerNet(${this.variant})`;
    checkRank(name, 'x', x, 4);
    check(x.shape[1] === 3, name, 'input must have 3 channels (RGB 0..255)', { x });
    const [, , H, W] = x.shape;
    check(
      H >= TRANSFORMER_MIN_SIZE && W >= TRANSFORMER_MIN_SIZE,
      name,
      `input must be at least ${TRANSFORMER_MIN_SIZE}×${TRANSFORMER_MIN_SIZE} pixels (height × width), got ${H}×${W}`,
      { x },
    );
    const trace = opts.trace;
    trace?.('input', x.shape);
    const inference = isInference(this, x);
    const match = opts.matchInputSize ?? true;
    const { y: padded, padH, padW } = match ? padToMultiple(x, 4) : { y: x, padH: 0, padW: 0 };
    if (padded !== x) trace?.('padToMultiple', padded.shape);
    const { rows, ctx } = this.plan(opts);
    let h: Tensor;
    try {
      h = runRows(rows, padded, ctx, inference, trace);
    } finally {
      if (inference) ctx.style?.dispose();
      if (inference && padded !== x) padded.dispose();
    }
    if (padH || padW) {
      const y = centerCrop2d(h, [0, padW, 0, padH]);
      if (inference) h.dispose();
      h = y;
      trace?.('crop', h.shape);
    }
    trace?.('output', h.shape);
    return h;
  }

/** Output size of forward for an input of H×W (without matchInputSize; with it, the output is H×W). */
  static outputSize(variant: TransformerVariant, H: number, W: number): [number, number] {
    const f = (n: number) => {
      const q = Math.ceil(Math.ceil((variant === 'paper' ? n + 80 : n) / 2) / 2);
      return variant === 'paper' ? 4 * (q - 20) : 4 * q;
    };
    return [f(H), f(W)];
  }

  /** Parameter and buffer shapes by state-dict name (what a model file must hold). */
  stateShapes(): Map<string, readonly number[]> {
    return new Map([...this.stateDict()].map(([k, t]) => [k, t.shape]));
  }

  override toString(): string {
    return `TransformerNet(${this.variant}, ${this.norm} norm, width ${this.width}${this.styles > 1 ? `, ${this.styles} styles` : ''}${this.variant !== 'paper' && this.output === 'tanh' ? ', tanh output' : ''})`;
  }
}
