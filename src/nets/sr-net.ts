// The super-resolution networks of Johnson et al. 2016 (supplementary material), ×4 and ×8:
//   9×9 conv (width, zero padding 4) → norm → ReLU;
//   `blocks` (4) residual blocks of `width` (64) channels with PADDED 3×3 convs (size kept):
//     conv-norm-ReLU-conv-norm, plus the identity, no ReLU after the add;
//   log2(scale) stride-1/2 convs: 3×3 transposed convs, stride 2, padding 1, output padding 1 (doubling the size),
//     each followed by norm and ReLU;
//   9×9 conv to 3 channels (padding 4), output 127.5·tanh + 127.5 ∈ [0, 255].
// Input RGB 0..255 [N, 3, h, w] → RGB [N, 3, h·scale, w·scale]. Norm: batch (the paper's) or affine instance norm.
// State names (PyTorch style): conv_in, bn_in, res1..resB.{conv1, bn1, conv2, bn2}, up1..upK (ConvTranspose2d),
// bn_up1..bn_upK, conv_out; each conv has .weight/.bias; batch norms have weight, bias, running_mean,
// running_var, num_batches_tracked (instance norms weight and bias).
// Model files: safetensors with __metadata__ arch "sr-net", scale, width, blocks, norm, [residual] (saveSRNet / loadSRNet).
// residual (beyond the paper): output = bicubic ×scale of the input + the network's correction (no tanh).
import { noGrad, tidy, type Tensor } from '../autograd/tensor.js';
import { bytesPerElement, pickPrecision, type Gpu, type Precision } from '../gpu/index.js';
import { createImage, crop, imageToTensor, type Image } from '../io/image.js';
import { assertFinite } from '../io/finite.js';
import { WeightFileError, checkTensors, writeSafetensors, type LoadedTensor } from '../io/safetensors.js';
import { check, checkRank } from '../layers/check.js';
import { Conv2d, ConvTranspose2d } from '../layers/conv.js';
import { add, cast, scaledTanh } from '../layers/elementwise.js';
import { bicubicResize2d } from '../layers/resize.js';
import { Module } from '../layers/module.js';
import { ResidualBlock, isInference, makeNorm, relu, runRows, type Row, type Stage } from './blocks.js';
import { pixelShuffle } from '../layers/pixel-shuffle.js';
import { readWeightBytes } from '../io/weight-file.js';

export type SRScale = 4 | 8;
export type SRNorm = 'batch' | 'instance';
export const SR_SCALES: readonly SRScale[] = [4, 8];
export const SR_NORMS: readonly SRNorm[] = ['batch', 'instance'];
export const SR_ARCH = 'sr-net';
/** How the network upsamples: the paper's stride-½ transposed convs (with norm and ReLU) at growing resolutions, or
 *  one 3×3 conv to 3·scale² channels at the input's resolution and a pixel shuffle (ESPCN, Shi et al. 2016): beyond
 *  the paper, most of the work then stays at the low resolution. */
export type SRUpsample = 'transposed' | 'pixel-shuffle';
export const SR_UPSAMPLES: readonly SRUpsample[] = ['transposed', 'pixel-shuffle'];

export interface SRNetOptions {
  scale: SRScale;
  /** Channels of every hidden layer (64, the paper's). */
  width?: number;
  /** Residual blocks (4, the paper's). */
  blocks?: number;
  norm?: SRNorm;
  /** Uniform [0, 1) source for the initial conv weights (seed it for reproducible runs). */
  rand?: () => number;
  /** Beyond the paper (VDSR's global skip, Kim et al. 2016): the network predicts a correction added to the bicubic
   *  upscaling of its input (conv_out starts at zero, so an untrained network IS bicubic); no output tanh. */
  residual?: boolean;
  /** Default 'transposed' (the paper's). */
  upsample?: SRUpsample;
}

export interface SRForwardOptions {
  /** Called with every stage's output shape: 'input', 'conv_in', 'res1'.., 'up1'.., 'conv_out'. */
  trace?: (name: string, shape: readonly number[]) => void;
}



export class SRNet extends Module {
  readonly scale: SRScale;
  readonly width: number;
  readonly blocks: number;
  readonly norm: SRNorm;
  readonly residual: boolean;
  readonly upsample: SRUpsample;
  /** The network's table: named rows of layers (see blocks.ts). */
  private readonly rows: Row[];

  constructor(gpu: Gpu, opts: SRNetOptions) {
    super(gpu);
    const { scale, width = 64, blocks = 4, norm = 'batch', rand = Math.random, residual = false, upsample = 'transposed' } = opts;
    if (!SR_UPSAMPLES.includes(upsample)) throw new Error(`SRNet: unknown upsample "${String(upsample)}" (known: ${SR_UPSAMPLES.join(', ')})`);
    if (!SR_SCALES.includes(scale)) throw new Error(`SRNet: scale must be ${SR_SCALES.join(' or ')}, got ${String(scale)}`);
    if (!(Number.isInteger(width) && width >= 1)) throw new Error(`SRNet: width must be a positive integer, got ${width}`);
    if (!(Number.isInteger(blocks) && blocks >= 0)) throw new Error(`SRNet: blocks must be a non-negative integer, got ${blocks}`);
    if (!SR_NORMS.includes(norm)) throw new Error(`SRNet: unknown norm "${String(norm)}" (known: ${SR_NORMS.join(', ')})`);
    this.scale = scale;
    this.width = width;
    this.blocks = blocks;
    this.norm = norm;
    this.residual = residual;
    this.upsample = upsample;
    const w = width;
    const n = (name: string) => this.child(name, makeNorm(gpu, w, norm));
    const conv = (name: string, cin: number, cout: number, k: number) => this.child(name, new Conv2d(gpu, cin, cout, k, { padding: (k - 1) / 2, rand }));
    this.rows = [['conv_in', [conv('conv_in', 3, w, 9), n('bn_in'), relu]]];
    for (let i = 1; i <= blocks; i++) {
      const block = new ResidualBlock(gpu, { conv1: 'conv1', norm1: 'bn1', conv2: 'conv2', norm2: 'bn2' }, { conv: () => new Conv2d(gpu, w, w, 3, { padding: 1, rand }), norm: () => makeNorm(gpu, w, norm) });
      this.rows.push([`res${i}`, [this.child(`res${i}`, block)]]);
    }
    let out: Conv2d;
    const last: Stage[] = [];
    if (upsample === 'transposed') {
      for (let i = 1; i <= Math.log2(scale); i++) {
        const up = this.child(`up${i}`, new ConvTranspose2d(gpu, w, w, 3, { stride: 2, padding: 1, outputPadding: 1, rand }));
        this.rows.push([`up${i}`, [up, n(`bn_up${i}`), relu]]);
      }
      out = conv('conv_out', w, 3, 9);
    } else {
      out = conv('conv_out', w, 3 * scale * scale, 3);
      last.push({ op: 'pixelShuffle', apply: (t) => pixelShuffle(t, scale) });
    }
    if (residual) for (const p of out.parameters()) p.assign(gpu.zeros(p.shape, p.name));
    if (!residual) last.push({ op: 'scaledTanh', apply: (t) => scaledTanh(t, 127.5, 127.5) });
    this.rows.push(['conv_out', [out, ...last]]);
  }

  /** RGB 0..255 [N, 3, h, w] → RGB in [0, 255], [N, 3, h·scale, w·scale]. */
  forward(x: Tensor, opts: SRForwardOptions = {}): Tensor {
    const op = `srNet(×${this.scale})`;
    checkRank(op, 'x', x, 4);
    check(x.shape[1] === 3, op, 'input must have 3 channels (RGB 0..255)', { x });
    opts.trace?.('input', x.shape);
    const inference = isInference(this, x);
    const y = runRows(this.rows, x, {}, inference, opts.trace);
    if (!this.residual) return y;
    const up = bicubicResize2d(x, { scale: this.scale });
    const out = add(up, y);
    if (inference) [up, y].forEach((t) => t.dispose());
    opts.trace?.('residual', out.shape);
    return out;
  }

  /** LR pixels around a tile that influence its outputs (the receptive radius, rounded up), for tiled inference. */
  get margin(): number {
    // conv_in 4, two 3×3 convs per block, ≤ 1 LR pixel per transposed conv, conv_out 4/scale ≤ 1; + 1 to spare.
    return 4 + 2 * this.blocks + Math.log2(this.scale) + 2;
  }

  /** Parameter and buffer shapes by state-dict name (what a model file must hold). */
  stateShapes(): Map<string, readonly number[]> {
    return new Map([...this.stateDict()].map(([k, t]) => [k, t.shape]));
  }

  override toString(): string {
    const extra = [this.upsample !== 'transposed' ? this.upsample : '', this.residual ? 'bicubic residual' : ''].filter(Boolean);
    return `SRNet(×${this.scale}, ${this.norm} norm, width ${this.width}, ${this.blocks} blocks${extra.map((e) => `, ${e}`).join('')})`;
  }
}

export interface UpscaleOptions {
  /** LR tile size (pixels per side, before the margins); default: the whole image if its largest activation
   *  fits the device's storage-buffer limit, else the largest tile that does. */
  tile?: number;
  /** Storage of activations and weights: 'f16' halves their bytes (needs 'shader-f16'; computed in f32);
   *  'auto' (default): f16 on a GPU that has 'shader-f16', f32 on a CPU adapter (pickPrecision, src/gpu/f16.ts). */
  precision?: Precision;
  /** Called after each tile: `done` of `total` tiles (an image in one piece is one tile). */
  onProgress?: (p: { done: number; total: number }) => void;
}

/**
 * Super-resolves one image (RGB 0..255) without gradients. Large images are processed in overlapping tiles
 * (a margin of `net.margin` LR pixels on every inner side, cut off again), which gives the same result as one
 * pass when the network is in eval mode (batch norm then is a fixed per-channel affine map). Call net.eval() first.
 */
export async function upscaleImage(net: SRNet, img: Image, opts: UpscaleOptions = {}): Promise<Image> {
  const s = net.scale;
  const { width: W, height: H } = img;
  if (W < 1 || H < 1) throw new Error(`upscaleImage: empty image ${W}x${H}`);
  const dtype = pickPrecision(net.gpu, opts.precision, 'upscaleImage');
  const limit = net.gpu.limits.maxStorageBufferBindingSize;
  const bpe = bytesPerElement(dtype);
  const fits = (h: number, w: number) => h * s * w * s * net.width * bpe <= limit;
  const M = net.margin;
  let T = opts.tile;
  if (T === undefined) {
    if (fits(H, W)) T = Math.max(H, W);
    else {
      T = Math.floor(Math.sqrt(limit / (bpe * net.width)) / s) - 2 * M;
      if (T < 1) throw new Error(`upscaleImage: the device's storage buffers (${limit} bytes) are too small for even one tile of ${net}`);
    }
  }
  if (!(Number.isInteger(T) && T >= 1)) throw new Error(`upscaleImage: tile must be a positive integer, got ${T}`);
  const out = createImage(W * s, H * s);
  const tiles = Math.ceil(H / T) * Math.ceil(W / T);
  let done = 0;
  for (let ty = 0; ty < H; ty += T) {
    for (let tx = 0; tx < W; tx += T) {
      const y0 = Math.max(0, ty - M);
      const x0 = Math.max(0, tx - M);
      const y1 = Math.min(H, ty + T + M);
      const x1 = Math.min(W, tx + T + M);
      const part = crop(img, x0, y0, x1 - x0, y1 - y0);
      const y = noGrad(() => tidy(() => net.forward(cast(imageToTensor(net.gpu, part), dtype))));
      let data: Float32Array;
      try {
        data = await y.data();
      } finally {
        y.dispose();
      }
      // Copy the tile's own region [ty, ty+T) × [tx, tx+T) (in HR pixels) out of the padded result.
      const ph = (y1 - y0) * s;
      const pw = (x1 - x0) * s;
      const rows = (Math.min(H, ty + T) - ty) * s;
      const cols = (Math.min(W, tx + T) - tx) * s;
      const oy = (ty - y0) * s;
      const ox = (tx - x0) * s;
      for (let c = 0; c < 3; c++) {
        for (let r = 0; r < rows; r++) {
          const src = c * ph * pw + (oy + r) * pw + ox;
          out.data.set(data.subarray(src, src + cols), c * H * s * W * s + (ty * s + r) * W * s + tx * s);
        }
      }
      opts.onProgress?.({ done: ++done, total: tiles });
    }
  }
  return out;
}

// ---- model files --------------------------------------------------------------------------------------------

/** The metadata keys saveSRNet owns; extra metadata cannot override them. */
const RESERVED = ['arch', 'scale', 'width', 'blocks', 'norm', 'residual', 'upsample'];

/** The network's parameters and buffers as safetensors; metadata arch "sr-net", scale, width, blocks, norm, + extra. */
export async function saveSRNet(net: SRNet, extra: Record<string, string> = {}): Promise<Uint8Array> {
  for (const k of RESERVED) {
    if (k in extra) throw new Error(`saveSRNet: metadata key "${k}" is set from the network and cannot be given`);
  }
  const tensors = new Map<string, { data: Float32Array; shape: readonly number[] }>();
  for (const [name, t] of net.stateDict()) tensors.set(name, { data: await t.data(), shape: t.shape });
  assertFinite(tensors, 'saveSRNet: refusing to save non-finite weights');
  return writeSafetensors(tensors, { ...extra, arch: SR_ARCH, scale: String(net.scale), width: String(net.width), blocks: String(net.blocks), norm: net.norm, ...(net.residual ? { residual: 'bicubic' } : {}), ...(net.upsample !== 'transposed' ? { upsample: net.upsample } : {}) });
}

export interface LoadSRNetOptions {
  /** Override (or supply, for files without metadata) the architecture. */
  scale?: SRScale;
  width?: number;
  blocks?: number;
  norm?: SRNorm;
  /** The bicubic global skip (files say so in __metadata__.residual = "bicubic"). */
  residual?: boolean;
  upsample?: SRUpsample;
  /** Names the source in error messages. */
  file?: string;
}

/** The architecture from opts, else __metadata__, else the tensors (width from conv_in, blocks and scale counted). */
export function inferSRArch(
  tensors: ReadonlyMap<string, { shape: readonly number[] }>,
  metadata: Record<string, string>,
  opts: LoadSRNetOptions = {},
): Required<Omit<LoadSRNetOptions, 'file'>> {
  const file = opts.file ?? 'model file';
  if (metadata.arch !== undefined && metadata.arch !== SR_ARCH) {
    throw new WeightFileError(`${file}: this file holds a ${metadata.arch} network (__metadata__.arch), not ${SR_ARCH}`);
  }
  const int = (key: string, v: string | undefined, min: number): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!(Number.isInteger(n) && n >= min)) throw new WeightFileError(`${file}: __metadata__.${key} "${v}" is not a valid ${key}; pass the ${key} option`);
    return n;
  };
  const count = (re: RegExp) => [...tensors.keys()].filter((k) => re.test(k)).length;
  // What the tensors say: transposed convs (up1, up2, …) each double the size; without them, conv_out feeds a pixel
  // shuffle and has 3·scale² out-channels.
  const out = tensors.get('conv_out.weight')?.shape;
  const shuffled = !tensors.has('up1.weight') && out !== undefined;
  let scale = opts.scale ?? (int('scale', metadata.scale, 1) as SRScale | undefined);
  scale ??= (shuffled ? Math.sqrt(out[0] / 3) : 2 ** count(/^up\d+\.weight$/)) as SRScale;
  if (!SR_SCALES.includes(scale)) {
    throw new WeightFileError(`${file}: scale ${scale}${opts.scale === undefined ? (metadata.scale !== undefined ? ' (__metadata__.scale)' : ' (from the up*.weight tensors)') : ''} is not supported (known: ${SR_SCALES.join(', ')})`);
  }
  const w = tensors.get('conv_in.weight');
  const width = opts.width ?? int('width', metadata.width, 1) ?? (w && w.shape.length === 4 && w.shape[0] >= 1 ? w.shape[0] : 64);
  const blocks = opts.blocks ?? int('blocks', metadata.blocks, 0) ?? count(/^res\d+\.conv1\.weight$/);
  const norm = opts.norm ?? (metadata.norm as SRNorm | undefined) ?? (tensors.has('bn_in.running_mean') || !tensors.has('bn_in.weight') ? 'batch' : 'instance');
  if (!SR_NORMS.includes(norm)) throw new WeightFileError(`${file}: unknown norm "${norm}" (known: ${SR_NORMS.join(', ')})`);
  if (metadata.residual !== undefined && metadata.residual !== 'bicubic') throw new WeightFileError(`${file}: unknown __metadata__.residual "${metadata.residual}" (known: bicubic)`);
  const residual = opts.residual ?? metadata.residual === 'bicubic';
  const upsample = opts.upsample ?? (metadata.upsample as SRUpsample | undefined) ?? (shuffled ? 'pixel-shuffle' : 'transposed');
  if (!SR_UPSAMPLES.includes(upsample)) throw new WeightFileError(`${file}: unknown upsample "${upsample}" (known: ${SR_UPSAMPLES.join(', ')})`);
  return { scale, width, blocks, norm, residual, upsample };
}

/** Builds an SRNet from tensors already read; mismatched files throw one WeightFileError listing every missing,
 *  unexpected and mis-shaped tensor. */
export function srNetFromTensors(
  gpu: Gpu,
  tensors: ReadonlyMap<string, LoadedTensor | { data: Float32Array; shape: readonly number[] }>,
  metadata: Record<string, string> = {},
  opts: LoadSRNetOptions = {},
): SRNet {
  const file = opts.file ?? 'model file';
  assertFinite(tensors, `${file}: refusing to load non-finite weights`);
  const arch = inferSRArch(tensors, metadata, opts);
  const net = new SRNet(gpu, { ...arch, rand: () => 0.5 });
  try {
    const expected = new Map(net.stateShapes());
    for (const k of [...expected.keys()]) if (k.endsWith('.num_batches_tracked') && !tensors.has(k)) expected.delete(k);
    checkTensors(`${file} (${net})`, tensors, expected);
    net.loadStateDict(tensors as Map<string, { data: Float32Array; shape: readonly number[] }>, false);
  } catch (e) {
    net.dispose();
    throw e;
  }
  return net;
}

/** Loads an SRNet from a safetensors file (or a torch.save checkpoint with these names). */
export function loadSRNet(gpu: Gpu, bytes: Uint8Array, opts: LoadSRNetOptions = {}): SRNet {
  const file = opts.file ?? 'model file';
  const { tensors, metadata } = readWeightBytes(bytes, file);
  return srNetFromTensors(gpu, tensors, metadata, { ...opts, file });
}
