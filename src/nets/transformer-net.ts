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
//   transposed convs, no output activation; its state-dict names (conv1.conv2d.weight, in1.weight, ...).
//
// Sizes: inputs are RGB 0..255 [N,3,H,W] with H, W ≥ 5. Both variants shrink H by 4× and grow it back, so a
// size that is not a multiple of 4 would come out different (the paper's: 18 → 20; pytorch-examples' as
// well). With `matchInputSize` (default true) forward reflection-pads the input at the right and bottom up to a
// multiple of 4 and crops the output back, so the output always has the input's size; turn it off for
// the exact upstream semantics.
import type { Tensor } from '../autograd/tensor.js';
import type { Gpu } from '../gpu/index.js';
import { check, checkRank } from '../layers/check.js';
import { Conv2d, ConvTranspose2d } from '../layers/conv.js';
import { add, scaledTanh } from '../layers/elementwise.js';
import { Module } from '../layers/module.js';
import { InstanceNorm2d } from '../layers/norm.js';
import { freeIntermediates, makeNorm, normRelu, type Free, type Norm } from './blocks.js';
import { centerCrop2d, reflectionPad2d, upsampleNearest2d } from '../layers/spatial.js';

export type TransformerVariant = 'paper' | 'pytorch-examples';
export type TransformerNorm = 'batch' | 'instance';
export const TRANSFORMER_VARIANTS: readonly TransformerVariant[] = ['paper', 'pytorch-examples'];
export const TRANSFORMER_NORMS: readonly TransformerNorm[] = ['batch', 'instance'];

export interface TransformerNetOptions {
  variant: TransformerVariant;
  /** Default: 'batch' for 'paper' (the paper's), 'instance' for 'pytorch-examples' (its only choice). */
  norm?: TransformerNorm;
  /** Channels of the first conv (the others are 2w and 4w): 32 full (default), 16 half. 'pytorch-examples' is always 32. */
  width?: number;
  /** Uniform [0, 1) source for the initial conv weights (seed it for reproducible runs). */
  rand?: () => number;
}

export interface TransformerForwardOptions {
  /** Reflection-pad the input up to a multiple of 4 and crop the output back to the input's size (default true). */
  matchInputSize?: boolean;
  /** Called with every stage's output shape: 'input', ['padToMultiple'], the variant's layers, ['crop'], 'output'. */
  trace?: (name: string, shape: readonly number[]) => void;
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

/** A layer's forward; composite layers free what they consume through `free` (inference only). */
type Layer = { forward(x: Tensor, free: Free): Tensor };

/** pytorch/examples ConvLayer: ReflectionPad2d(k // 2) then Conv2d (state: conv2d.weight, conv2d.bias). */
class ConvLayer extends Module {
  readonly conv2d: Conv2d;
  constructor(gpu: Gpu, cin: number, cout: number, readonly k: number, stride: number, rand: () => number, readonly upsample = 1) {
    super(gpu);
    this.conv2d = this.child('conv2d', new Conv2d(gpu, cin, cout, k, { stride, rand }));
  }
  forward(x: Tensor, free: Free): Tensor {
    let h = x;
    if (this.upsample > 1) h = upsampleNearest2d(h, this.upsample);
    const p = reflectionPad2d(h, Math.floor(this.k / 2));
    if (h !== x) free(h);
    const y = this.conv2d.forward(p);
    free(p);
    return y;
  }
}

/** pytorch/examples ResidualBlock: in2(conv2(relu(in1(conv1(x))))) + x. */
class PeResidualBlock extends Module {
  readonly conv1: ConvLayer;
  readonly in1: InstanceNorm2d;
  readonly conv2: ConvLayer;
  readonly in2: InstanceNorm2d;
  constructor(gpu: Gpu, c: number, rand: () => number) {
    super(gpu);
    this.conv1 = this.child('conv1', new ConvLayer(gpu, c, c, 3, 1, rand));
    this.in1 = this.child('in1', new InstanceNorm2d(gpu, c, { affine: true }));
    this.conv2 = this.child('conv2', new ConvLayer(gpu, c, c, 3, 1, rand));
    this.in2 = this.child('in2', new InstanceNorm2d(gpu, c, { affine: true }));
  }
  forward(x: Tensor, free: Free): Tensor {
    const h = normRelu(this.in1, this.conv1.forward(x, free), free);
    const c2 = this.conv2.forward(h, free);
    free(h);
    const n2 = this.in2.forward(c2);
    free(c2);
    const y = add(n2, x);
    free(n2);
    return y;
  }
}

/** The paper's residual block: unpadded convs, identity centre-cropped by 2 px per side, no relu after the add. */
class PaperResidualBlock extends Module {
  readonly conv1: Conv2d;
  readonly norm1: Norm;
  readonly conv2: Conv2d;
  readonly norm2: Norm;
  constructor(gpu: Gpu, c: number, norm: TransformerNorm, rand: () => number) {
    super(gpu);
    this.conv1 = this.child('conv1', new Conv2d(gpu, c, c, 3, { rand }));
    this.norm1 = this.child('norm1', makeNorm(gpu, c, norm));
    this.conv2 = this.child('conv2', new Conv2d(gpu, c, c, 3, { rand }));
    this.norm2 = this.child('norm2', makeNorm(gpu, c, norm));
  }
  forward(x: Tensor, free: Free): Tensor {
    const h = normRelu(this.norm1, this.conv1.forward(x), free);
    const c2 = this.conv2.forward(h);
    free(h);
    const n2 = this.norm2.forward(c2);
    free(c2);
    const id = centerCrop2d(x, 2);
    const y = add(id, n2);
    free(id);
    free(n2);
    return y;
  }
}


export class TransformerNet extends Module {
  readonly variant: TransformerVariant;
  readonly norm: TransformerNorm;
  readonly width: number;
  private readonly layers: Record<string, Layer> = {};
  private readonly res: (PeResidualBlock | PaperResidualBlock)[] = [];

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
    if (variant === 'pytorch-examples') {
      if (norm !== 'instance') throw new Error(`TransformerNet: the pytorch-examples variant uses instance norm only (got norm "${norm}")`);
      if (width !== 32) throw new Error(`TransformerNet: the pytorch-examples variant has width 32 only (got ${width})`);
    }
    this.norm = norm;
    this.width = width;
    const w = width;
    const L = this.layers;
    if (variant === 'pytorch-examples') {
      L.conv1 = this.child('conv1', new ConvLayer(gpu, 3, 32, 9, 1, rand));
      L.in1 = this.child('in1', new InstanceNorm2d(gpu, 32, { affine: true }));
      L.conv2 = this.child('conv2', new ConvLayer(gpu, 32, 64, 3, 2, rand));
      L.in2 = this.child('in2', new InstanceNorm2d(gpu, 64, { affine: true }));
      L.conv3 = this.child('conv3', new ConvLayer(gpu, 64, 128, 3, 2, rand));
      L.in3 = this.child('in3', new InstanceNorm2d(gpu, 128, { affine: true }));
      for (let i = 1; i <= 5; i++) this.res.push(this.child(`res${i}`, new PeResidualBlock(gpu, 128, rand)));
      L.deconv1 = this.child('deconv1', new ConvLayer(gpu, 128, 64, 3, 1, rand, 2));
      L.in4 = this.child('in4', new InstanceNorm2d(gpu, 64, { affine: true }));
      L.deconv2 = this.child('deconv2', new ConvLayer(gpu, 64, 32, 3, 1, rand, 2));
      L.in5 = this.child('in5', new InstanceNorm2d(gpu, 32, { affine: true }));
      L.deconv3 = this.child('deconv3', new ConvLayer(gpu, 32, 3, 9, 1, rand));
    } else {
      L.conv1 = this.child('conv1', new Conv2d(gpu, 3, w, 9, { padding: 4, rand }));
      L.norm1 = this.child('norm1', makeNorm(gpu, w, norm));
      L.conv2 = this.child('conv2', new Conv2d(gpu, w, 2 * w, 3, { stride: 2, padding: 1, rand }));
      L.norm2 = this.child('norm2', makeNorm(gpu, 2 * w, norm));
      L.conv3 = this.child('conv3', new Conv2d(gpu, 2 * w, 4 * w, 3, { stride: 2, padding: 1, rand }));
      L.norm3 = this.child('norm3', makeNorm(gpu, 4 * w, norm));
      for (let i = 1; i <= 5; i++) this.res.push(this.child(`res${i}`, new PaperResidualBlock(gpu, 4 * w, norm, rand)));
      const up = { stride: 2, padding: 1, outputPadding: 1, rand };
      L.deconv1 = this.child('deconv1', new ConvTranspose2d(gpu, 4 * w, 2 * w, 3, up));
      L.norm4 = this.child('norm4', makeNorm(gpu, 2 * w, norm));
      L.deconv2 = this.child('deconv2', new ConvTranspose2d(gpu, 2 * w, w, 3, up));
      L.norm5 = this.child('norm5', makeNorm(gpu, w, norm));
      L.conv4 = this.child('conv4', new Conv2d(gpu, w, 3, 9, { padding: 4, rand }));
    }
  }

  /** RGB 0..255 [N,3,H,W] (H, W ≥ 5) → RGB ≈0..255 [N,3,H,W] (with matchInputSize, the default). */
  forward(x: Tensor, opts: TransformerForwardOptions = {}): Tensor {
    const op = `transformerNet(${this.variant})`;
    checkRank(op, 'x', x, 4);
    check(x.shape[1] === 3, op, 'input must have 3 channels (RGB 0..255)', { x });
    const [, , H, W] = x.shape;
    check(
      H >= TRANSFORMER_MIN_SIZE && W >= TRANSFORMER_MIN_SIZE,
      op,
      `input must be at least ${TRANSFORMER_MIN_SIZE}×${TRANSFORMER_MIN_SIZE} pixels (height × width), got ${H}×${W}`,
      { x },
    );
    const trace = opts.trace ?? (() => {});
    trace('input', x.shape);
    const free = freeIntermediates(this, x);
    const match = opts.matchInputSize ?? true;
    let h = x;
    let padH = 0;
    let padW = 0;
    if (match) {
      ({ y: h, padH, padW } = padToMultiple(x, 4));
      if (h !== x) trace('padToMultiple', h.shape);
    }
    const step = (name: string, f: (t: Tensor) => Tensor) => {
      const y = f(h);
      free(h);
      h = y;
      trace(name, h.shape);
    };
    const L = this.layers;
    const nr = (conv: string, norm: string) => (t: Tensor) => normRelu(L[norm] as Norm, L[conv].forward(t, free), free);
    if (this.variant === 'pytorch-examples') {
      step('conv1', nr('conv1', 'in1'));
      step('conv2', nr('conv2', 'in2'));
      step('conv3', nr('conv3', 'in3'));
      this.res.forEach((r, i) => step(`res${i + 1}`, (t) => r.forward(t, free)));
      step('deconv1', nr('deconv1', 'in4'));
      step('deconv2', nr('deconv2', 'in5'));
      step('deconv3', (t) => L.deconv3.forward(t, free));
    } else {
      step('pad', (t) => reflectionPadAny(t, [40, 40, 40, 40]));
      step('conv1', nr('conv1', 'norm1'));
      step('conv2', nr('conv2', 'norm2'));
      step('conv3', nr('conv3', 'norm3'));
      this.res.forEach((r, i) => step(`res${i + 1}`, (t) => r.forward(t, free)));
      step('deconv1', nr('deconv1', 'norm4'));
      step('deconv2', nr('deconv2', 'norm5'));
      step('conv4', (t) => {
        const c = L.conv4.forward(t, free);
        const y = scaledTanh(c, 127.5, 127.5);
        free(c);
        return y;
      });
    }
    if (padH || padW) step('crop', (t) => centerCrop2d(t, [0, padW, 0, padH]));
    trace('output', h.shape);
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
    return `TransformerNet(${this.variant}, ${this.norm} norm, width ${this.width})`;
  }
}
