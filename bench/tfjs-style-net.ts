// The style-transfer workloads of bench/compare.ts written in TF.js (NHWC), traced from our code so that both
// engines compute the same function:
// * the 'paper' TransformerNet with instance norm (src/nets/transformer-net.ts): 40 px reflection pad, 9×9 conv,
//   two stride-2 3×3 convs (zero padding 1), five residual blocks of unpadded 3×3 convs with the identity
//   centre-cropped by 2 px, two stride-½ transposed convs (padding 1, output padding 1), 9×9 conv, 127.5·tanh + 127.5;
//   affine instance norm (eps 1e-5, biased variance) + relu after every conv but the last and the second of a block;
// * VGG-16 `features` up to relu4_3 (src/nets/vgg16.ts) with torchvision's input preprocessing;
// * the style-transfer loss (src/train/perceptual-loss.ts): λc·mean((φ_j(ŷ) − φ_j(y))²) + λs·Σ_j w_j·mean((G_j(ŷ) −
//   G_j(y_s))²) + λtv·TV(ŷ), Gram G = FᵀF/(C·H·W), TV the squared anisotropic variation summed.
// Parameters come from our modules' state dicts (read back from our GPU), converted to TF.js's layouts.
import { convFilter, convTransposeFilter, tf } from './tfjs-peer.js';

/** One conv of the paper network: what it computes and its input size (drives the TF.js model and per-layer timing). */
export interface ConvSpec {
  name: string;
  transpose: boolean;
  cin: number;
  cout: number;
  k: number;
  stride: number;
  pad: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
}

/** A conv's spec from its input size; transposed convs here have 2·pad = k − 1 and output padding stride − 1,
 *  so they scale the size by the stride exactly (the style net's stride-½ convs). */
export function convSpec(name: string, cin: number, cout: number, k: number, stride: number, pad: number, inH: number, inW: number, transpose = false): ConvSpec {
  const out = (n: number) => (transpose ? n * stride : Math.floor((n + 2 * pad - k) / stride) + 1);
  return { name, transpose, cin, cout, k, stride, pad, inH, inW, outH: out(inH), outW: out(inW) };
}

/** The convs of TransformerNet({variant: 'paper', width}) for an H×W input (multiples of 4), in order. */
export function paperConvs(H: number, W: number, width: number): ConvSpec[] {
  if (H % 4 || W % 4) throw new Error(`paperConvs: ${H}×${W} is not a multiple of 4`);
  const out: ConvSpec[] = [];
  const add = (name: string, cin: number, cout: number, k: number, stride: number, pad: number, transpose = false) => {
    const prev = out.at(-1);
    out.push(convSpec(name, cin, cout, k, stride, pad, prev?.outH ?? H + 80, prev?.outW ?? W + 80, transpose));
  };
  const c = width;
  add('conv1', 3, c, 9, 1, 4);
  add('conv2', c, 2 * c, 3, 2, 1);
  add('conv3', 2 * c, 4 * c, 3, 2, 1);
  for (let i = 1; i <= 5; i++) {
    add(`res${i}.conv1`, 4 * c, 4 * c, 3, 1, 0);
    add(`res${i}.conv2`, 4 * c, 4 * c, 3, 1, 0);
  }
  add('deconv1', 4 * c, 2 * c, 3, 2, 1, true);
  add('deconv2', 2 * c, c, 3, 2, 1, true);
  add('conv4', c, 3, 9, 1, 4);
  return out;
}

/** Multiply-adds ×2 of a conv (transposed: every input pixel meets k²·cout weights). */
export const convFlops = (s: ConvSpec, batch = 1): number =>
  2 * batch * s.cin * s.cout * s.k * s.k * (s.transpose ? s.inH * s.inW : s.outH * s.outW);

type State = Map<string, { data: Float32Array; shape: readonly number[] }>;
type Params = Map<string, tf.Tensor>;

/** Our state dict in TF.js layouts (4-D weights of names starting with 'deconv' are transposed-conv filters). */
export function tfParams(state: State, variables: boolean): Params {
  const out: Params = new Map();
  for (const [k, { data, shape }] of state) {
    const t = shape.length === 4 ? (/(^|\.)deconv\d/.test(k) ? convTransposeFilter(data, shape) : convFilter(data, shape)) : tf.tensor(data, [...shape]);
    out.set(k, variables ? tf.variable(t, true, `peer.${k}`) : t);
    if (variables) t.dispose();
  }
  return out;
}

/** A parameter's gradient in our layout: TF.js filters [kH, kW, a, b] back to [b, a, kH, kW] (both conv kinds). */
export const ourLayout = (g: tf.Tensor): tf.Tensor => (g.rank === 4 ? tf.transpose(g, [3, 2, 0, 1]) : g);

/** Affine instance norm. Inference uses TF.js's fused batchNorm kernel (its fastest path); its gradient only
 *  handles per-channel (rank-1) statistics, so a differentiable graph spells the normalisation out. */
export function instanceNorm(x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, differentiable = false): tf.Tensor4D {
  const { mean, variance } = tf.moments(x, [1, 2], true);
  if (differentiable) return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), gamma), beta);
  // batchNorm wants scale and offset of the statistics' rank; reshapes are free (metadata only).
  const c = (t: tf.Tensor) => tf.reshape(t, [1, 1, 1, -1]) as tf.Tensor4D;
  return tf.batchNorm(x, mean as tf.Tensor4D, variance as tf.Tensor4D, c(beta), c(gamma), 1e-5);
}

/** The paper network's forward in TF.js: RGB 0..255 NHWC → RGB ≈0..255 NHWC (differentiable: for training). */
export function tfStyleNet(p: Params, x: tf.Tensor4D, differentiable = false): tf.Tensor4D {
  const P = (k: string) => {
    const t = p.get(k);
    if (!t) throw new Error(`tfStyleNet: no parameter ${k}`);
    return t;
  };
  const conv = (h: tf.Tensor4D, name: string, stride: number, pad: number) =>
    tf.fused.conv2d({ x: h, filter: P(`${name}.weight`) as tf.Tensor4D, bias: P(`${name}.bias`), strides: stride, pad });
  const deconv = (h: tf.Tensor4D, name: string) => {
    const f = P(`${name}.weight`) as tf.Tensor4D;
    const [N, H, W] = h.shape;
    // pad 1 with output [2H, 2W] is PyTorch's padding 1 + output padding 1 ('same' would shift by a pixel).
    return tf.add(tf.conv2dTranspose(h, f, [N, 2 * H, 2 * W, f.shape[2]], 2, 1), P(`${name}.bias`)) as tf.Tensor4D;
  };
  const norm = (h: tf.Tensor4D, name: string) => instanceNorm(h, P(`${name}.weight`), P(`${name}.bias`), differentiable);
  const normRelu = (h: tf.Tensor4D, name: string) => tf.relu(norm(h, name));
  let h = tf.mirrorPad(x, [[0, 0], [40, 40], [40, 40], [0, 0]], 'reflect');
  h = normRelu(conv(h, 'conv1', 1, 4), 'norm1');
  h = normRelu(conv(h, 'conv2', 2, 1), 'norm2');
  h = normRelu(conv(h, 'conv3', 2, 1), 'norm3');
  for (let i = 1; i <= 5; i++) {
    const r = `res${i}`;
    const a = normRelu(conv(h, `${r}.conv1`, 1, 0), `${r}.norm1`);
    const b = norm(conv(a, `${r}.conv2`, 1, 0), `${r}.norm2`);
    const [N, H, W, C] = h.shape;
    h = tf.add(tf.slice(h, [0, 2, 2, 0], [N, H - 4, W - 4, C]), b);
  }
  h = normRelu(deconv(h, 'deconv1'), 'norm4');
  h = normRelu(deconv(h, 'deconv2'), 'norm5');
  return tf.add(tf.mul(tf.tanh(conv(h, 'conv4', 1, 4)), 127.5), 127.5);
}

/** VGG-16 `features` to relu4_3: blocks of 3×3 convs (padding 1) + relu, 2×2 max-pools between blocks. */
export class TfVgg16 {
  /** Tap name → index in the layer list (relu names as in src/nets/vgg16.ts). */
  private readonly layers: { kind: 'conv' | 'relu' | 'pool'; name: string; w?: tf.Tensor4D; b?: tf.Tensor }[] = [];
  private readonly scale: tf.Tensor1D;
  private readonly shift: tf.Tensor1D;

  /** convs: OIHW weights and biases of conv1_1 .. conv4_3 in order; scale/shift: the input preprocessing per RGB channel. */
  constructor(
    convs: { w: Float32Array; wShape: readonly number[]; b: Float32Array }[],
    scale: readonly number[],
    shift: readonly number[],
  ) {
    this.scale = tf.tensor1d([...scale]);
    this.shift = tf.tensor1d([...shift]);
    const blocks = [2, 2, 3, 3];
    let k = 0;
    blocks.forEach((n, bi) => {
      if (bi > 0) this.layers.push({ kind: 'pool', name: `pool${bi}` });
      for (let j = 1; j <= n; j++, k++) {
        const c = convs[k];
        this.layers.push({ kind: 'conv', name: `conv${bi + 1}_${j}`, w: convFilter(c.w, c.wShape), b: tf.tensor1d(c.b) });
        this.layers.push({ kind: 'relu', name: `relu${bi + 1}_${j}` });
      }
    });
  }

  features(x: tf.Tensor4D, taps: readonly string[]): Map<string, tf.Tensor4D> {
    const idx = taps.map((t) => {
      const i = this.layers.findIndex((l) => l.name === t);
      if (i < 0) throw new Error(`TfVgg16: no tap ${t}`);
      return i;
    });
    const out = new Map<string, tf.Tensor4D>();
    let h = tf.add(tf.mul(x, this.scale), this.shift) as tf.Tensor4D;
    for (let i = 0; i <= Math.max(...idx); i++) {
      const l = this.layers[i];
      h = l.kind === 'conv' ? tf.fused.conv2d({ x: h, filter: l.w!, bias: l.b, strides: 1, pad: 'same' }) : l.kind === 'relu' ? tf.relu(h) : tf.maxPool(h, 2, 2, 'valid');
      idx.forEach((j, k) => j === i && out.set(taps[k], h));
    }
    return out;
  }

  dispose(): void {
    for (const l of this.layers) if (l.w) tf.dispose([l.w, l.b!]);
    tf.dispose([this.scale, this.shift]);
  }
}

/** Batched Gram matrices [N, C, C] of NHWC features, ÷ C·H·W. */
export function tfGram(f: tf.Tensor4D): tf.Tensor3D {
  const [N, H, W, C] = f.shape;
  const m = tf.reshape(f, [N, H * W, C]) as tf.Tensor3D;
  return tf.div(tf.matMul(m, m, true, false), C * H * W) as tf.Tensor3D;
}

export interface TfStyleLossSpec {
  contentLayers: Record<string, number>;
  styleLayers: Record<string, number>;
  contentWeight: number;
  styleWeight: number;
  tvWeight: number;
  /** The style image's Grams [1, C, C] per style layer. */
  grams: Record<string, tf.Tensor>;
}

/** The total style-transfer loss of outputs ŷ for content images y (both NHWC, RGB 0..255). */
export function tfStyleLoss(vgg: TfVgg16, yhat: tf.Tensor4D, content: tf.Tensor4D, s: TfStyleLossSpec): tf.Scalar {
  const cl = Object.entries(s.contentLayers);
  const sl = Object.entries(s.styleLayers);
  const target = vgg.features(content, cl.map(([k]) => k));
  const f = vgg.features(yhat, [...new Set([...cl, ...sl].map(([k]) => k))]);
  const mse = (a: tf.Tensor, b: tf.Tensor) => tf.mean(tf.squaredDifference(a, b));
  const sum = (terms: tf.Tensor[]) => terms.reduce((a, b) => tf.add(a, b), tf.scalar(0));
  const c = sum(cl.map(([k, w]) => tf.mul(mse(f.get(k)!, target.get(k)!), w)));
  const st = sum(sl.map(([k, w]) => tf.mul(mse(tfGram(f.get(k)!), s.grams[k]), w)));
  const [N, H, W, C] = yhat.shape;
  const dh = tf.sub(tf.slice(yhat, [0, 1, 0, 0], [N, H - 1, W, C]), tf.slice(yhat, [0, 0, 0, 0], [N, H - 1, W, C]));
  const dw = tf.sub(tf.slice(yhat, [0, 0, 1, 0], [N, H, W - 1, C]), tf.slice(yhat, [0, 0, 0, 0], [N, H, W - 1, C]));
  const tv = tf.add(tf.sum(tf.square(dh)), tf.sum(tf.square(dw)));
  return tf.addN([tf.mul(c, s.contentWeight), tf.mul(st, s.styleWeight), tf.mul(tv, s.tvWeight)]) as tf.Scalar;
}
