// Image-to-image inference for images of any size. An image that fits runs in one piece; one that does not (the
// device's buffer limits) runs in overlapping tiles whose halo covers the network's receptive field, so every
// output pixel is computed from exactly the context it would have had in one piece.
// Instance norm is the catch: its statistics are over the whole image. So the network runs stage by stage over
// all tiles (nets/blocks.ts `walk` pauses a tile at each instance norm): every tile runs up to instance norm k and
// waits there, its core's statistics are accumulated (Chan et al.'s parallel combination, in float64), then every
// tile resumes, normalised with the whole-image statistics, up to norm k + 1. Each layer runs once per tile — one
// forward plus the halos in all — and the result equals the one-piece result up to float32 rounding: no seams, no
// per-tile colour shifts. Waiting tiles stay on the GPU up to a memory budget, beyond it in host memory.
import { noGrad, tidy, Tensor } from '../autograd/tensor.js';
import { GpuMemoryError, bytesPerElement, numel, pickPrecision, type Dtype, type Gpu, type Precision, type RawTensor } from '../gpu/index.js';
import { groupsOf, normStats } from '../kernels/norm.js';
import { channelAffine } from '../layers/channel-affine.js';
import { cast } from '../layers/elementwise.js';
import { ConditionalInstanceNorm2d, type InstanceNorm2d } from '../layers/norm.js';
import { centerCrop2d } from '../layers/spatial.js';
import { createImage, imageToTensor, tensorToImages, type Image } from '../io/image.js';
import { walk, type NormPoint, type Row, type WalkContext } from '../nets/blocks.js';
import type { StyleBlend } from '../nets/transformer-net.js';

/** A same-size image-to-image network (RGB 0..255 in and out) with a bounded receptive field, written as rows. */
export interface ImageNetwork {
  forward(x: Tensor, opts?: { style?: StyleBlend }): Tensor;
  /** The rows forward runs and their context (tiled inference drives them stage by stage); without it, images
   *  run in one piece only. */
  plan?(opts?: { style?: StyleBlend }): { rows: readonly Row[]; ctx: WalkContext };
}

/** Where a long run is: `done` of `total` units (a unit is one tile through one stage). */
export interface TileProgress {
  done: number;
  total: number;
  /** Stages: one more than the network's instance norms. */
  stage: number;
  stages: number;
  tile: number;
  tiles: number;
}

export interface TileOptions {
  /** Core size of a tile in pixels (a multiple of 4); default: one piece if it fits, else the largest that fits. */
  tile?: number;
  /** Context around each core, ≥ the receptive field's radius (default 64 px, for TransformerNet's ~54). */
  halo?: number;
  /** Bytes of waiting tiles kept on the GPU between stages (default 1 GiB); the rest wait in host memory. */
  memoryBudget?: number;
  onTile?: (p: TileProgress) => void;
  /** Multi-style networks: the style index or blend. */
  style?: StyleBlend;
  /** Storage of activations and weights: 'f16' halves their bytes (needs 'shader-f16'; computed in f32);
   *  'auto' (default): f16 on a GPU that has 'shader-f16', f32 on a CPU adapter (pickPrecision, src/gpu/f16.ts). */
  precision?: Precision;
}

const DEFAULT_BUDGET = 2 ** 30;

/** Reflect-pads an image on the right and bottom (edge not repeated), as the networks' own padding does. */
export function padReflect(img: Image, right: number, bottom: number): Image {
  if (!right && !bottom) return img;
  const { width: W, height: H } = img;
  const out = createImage(W + right, H + bottom);
  // Mirror without repeating the edge; periodic, so pads beyond the size (a 2-px image padded by 3) work too.
  const reflect = (i: number, n: number) => {
    if (n === 1) return 0;
    const j = i % (2 * n - 2);
    return j < n ? j : 2 * n - 2 - j;
  };
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < H + bottom; y++)
      for (let x = 0; x < W + right; x++)
        out.data[(c * (H + bottom) + y) * (W + right) + x] = img.data[(c * H + reflect(y, H)) * W + reflect(x, W)];
  return out;
}

function cropImage(img: Image, x0: number, y0: number, w: number, h: number): Image {
  const out = createImage(w, h);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < h; y++) {
      const src = (c * img.height + y0 + y) * img.width + x0;
      out.data.set(img.data.subarray(src, src + w), (c * h + y) * w);
    }
  return out;
}

function paste(dst: Image, src: Image, sx: number, sy: number, w: number, h: number, dx: number, dy: number): void {
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < h; y++) {
      const from = (c * src.height + sy + y) * src.width + sx;
      dst.data.set(src.data.subarray(from, from + w), (c * dst.height + dy + y) * dst.width + dx);
    }
}

/** An image as a [1,3,H,W] tensor stored as dtype. */
const inputOf = (gpu: Gpu, img: Image, dtype: Dtype): Tensor => noGrad(() => tidy(() => cast(imageToTensor(gpu, img), dtype)));

async function runWhole(gpu: Gpu, net: ImageNetwork, img: Image, dtype: Dtype, style?: StyleBlend): Promise<Image> {
  const y = noGrad(() => tidy(() => net.forward(inputOf(gpu, img, dtype), { style })));
  try {
    return (await tensorToImages(y))[0];
  } finally {
    y.dispose();
  }
}

type Norm = InstanceNorm2d | ConditionalInstanceNorm2d;

interface NormLayer {
  norm: Norm;
  /** Downsampling factor and symmetric offset of this layer's grid relative to the input's. */
  f: number;
  off: number;
  /** γ and β for the style being run (null: not affine). */
  weight: Float64Array | null;
  bias: Float64Array | null;
  /** Whole-image statistics, once known. */
  mean?: Float64Array;
  var?: Float64Array;
}

/** Runs rows to the end, normalising each instance norm on the spot (as forward does). */
function runPlain(rows: readonly Row[], x: Tensor, ctx: WalkContext, seen: (p: NormPoint) => void): Tensor {
  const it = walk(rows, x, ctx, true);
  let r = it.next();
  while (!r.done) {
    const p = r.value;
    seen(p);
    r = it.next(tidy(() => (p.norm instanceof ConditionalInstanceNorm2d ? p.norm.forward(p.x, ctx.style!) : p.norm.forward(p.x))));
  }
  return r.value;
}

/** Finds the instance norms in call order, how their grids map onto the input's, and their γ, β for the style;
 *  and the largest square tile whose every activation fits the device's binding limit. */
async function probe(gpu: Gpu, rows: readonly Row[], ctx: WalkContext, dtype: Dtype): Promise<{ layers: NormLayer[]; maxSide: number }> {
  const trace = (size: number) => {
    const seen: { norm: Norm; h: number }[] = [];
    gpu.resetLargest();
    noGrad(() => tidy(() => runPlain(rows, inputOf(gpu, createImage(size, size), dtype), ctx, (p) => seen.push({ norm: p.norm, h: p.x.shape[2] })))).dispose();
    return { seen, largest: gpu.stats().largestBytes };
  };
  // Two sizes: a layer's height is size/f + 2·off, which gives f and off; the largest tensor's side grows the
  // same way, so √bytes is linear in the size.
  const [a, b] = [trace(64), trace(96)];
  const slope = (Math.sqrt(b.largest) - Math.sqrt(a.largest)) / 32;
  const maxSide = Math.floor((Math.sqrt(gpu.maxTensorBytes) - (Math.sqrt(a.largest) - 64 * slope)) / slope);
  const blend = ctx.style ? await ctx.style.data() : null;
  const layers: NormLayer[] = [];
  for (let i = 0; i < a.seen.length; i++) {
    const f = 32 / (b.seen[i].h - a.seen[i].h);
    const off = (a.seen[i].h - 64 / f) / 2;
    if (![1, 2, 4].includes(f) || !Number.isInteger(off)) throw new Error(`tiled inference: instance norm ${i} has an unexpected grid (f ${f}, offset ${off})`);
    const norm = a.seen[i].norm;
    // Conditional instance norm: the rows of γ, β blended as forward blends them.
    const affine = async (t: Tensor | null) => {
      if (!t) return null;
      const v = await t.data();
      if (!(norm instanceof ConditionalInstanceNorm2d)) return Float64Array.from(v);
      const C = norm.numFeatures;
      const out = new Float64Array(C);
      blend!.forEach((w, s) => {
        for (let c = 0; c < C; c++) out[c] += w * v[s * C + c];
      });
      return out;
    };
    layers.push({ norm, f, off, weight: await affine(norm.weight), bias: await affine(norm.bias) });
  }
  return { layers, maxSide };
}

function normalizeWith(layer: NormLayer, x: Tensor): Tensor {
  const C = x.shape[1];
  const eps = layer.norm.eps;
  const scale: number[] = [];
  const shift: number[] = [];
  for (let c = 0; c < C; c++) {
    const s = (layer.weight ? layer.weight[c] : 1) / Math.sqrt(layer.var![c] + eps);
    scale.push(s);
    shift.push((layer.bias ? layer.bias[c] : 0) - layer.mean![c] * s);
  }
  return channelAffine(x, scale, shift);
}

interface Tile {
  /** Tile extent in the (padded) image. */
  x0: number;
  y0: number;
  w: number;
  h: number;
  /** Core, in tile coordinates. */
  cx: number;
  cy: number;
  cw: number;
  ch: number;
}

function planTiles(W: number, H: number, core: number, halo: number): Tile[] {
  const tiles: Tile[] = [];
  for (let y = 0; y < H; y += core)
    for (let x = 0; x < W; x += core) {
      const cw = Math.min(core, W - x);
      const ch = Math.min(core, H - y);
      const x0 = Math.max(0, x - halo);
      const y0 = Math.max(0, y - halo);
      const x1 = Math.min(W, x + cw + halo);
      const y1 = Math.min(H, y + ch + halo);
      tiles.push({ x0, y0, w: x1 - x0, h: y1 - y0, cx: x - x0, cy: y - y0, cw, ch });
    }
  return tiles;
}

/** The core of tile t on layer L's grid (x: the layer's input there); cores on the image's border also take the
 *  margin a network pads there (the paper's 40-px reflection pad), which instance norm includes too. */
function coreOf(t: Tile, L: NormLayer, x: Tensor, img: Image): [number, number, number, number] {
  const [h, w] = [x.shape[2], x.shape[3]];
  const top = t.y0 + t.cy === 0 ? 0 : t.cy / L.f + L.off;
  const left = t.x0 + t.cx === 0 ? 0 : t.cx / L.f + L.off;
  const bottom = t.y0 + t.cy + t.ch === img.height ? h : (t.cy + t.ch) / L.f + L.off;
  const right = t.x0 + t.cx + t.cw === img.width ? w : (t.cx + t.cw) / L.f + L.off;
  return [left, right, top, bottom];
}

/** A tile waiting at a norm: its generator, the pre-norm activation, and (when moved off the GPU) host copies. */
interface Waiting {
  it: Generator<NormPoint, Tensor, Tensor>;
  input: Tensor;
  point: NormPoint;
  host: { x: HostTensor; skips: HostTensor[] } | null;
}

/** A tensor in host memory as stored on the GPU (an f16 tensor's bits stay 2 bytes an element). */
type HostTensor = { data: Float32Array | Uint16Array; shape: readonly number[]; dtype: Dtype };

const bytesOf = (p: NormPoint) => [p.x, ...p.skips].reduce((n, t) => n + numel(t.shape) * bytesPerElement(t.raw.dtype), 0);

/** Moves a waiting tile's tensors to host memory (their GPU buffers return to the pool). */
async function offload(w: Waiting): Promise<void> {
  const { point } = w;
  const host = async (t: Tensor): Promise<HostTensor> => ({ data: await t.gpu.readStored(t.raw), shape: t.shape, dtype: t.raw.dtype ?? 'f32' });
  w.host = { x: await host(point.x), skips: await Promise.all(point.skips.map(host)) };
  point.x.dispose();
  point.skips.forEach((t) => t.dispose());
}

/** Brings them back: new tensors in the walk's skip list (the walk reads its identities from there). */
function restore(gpu: Gpu, w: Waiting): Tensor {
  const { point, host } = w;
  if (!host) return point.x;
  const back = (t: HostTensor) => new Tensor(gpu, gpu.upload(t.data, t.shape, 'waiting tile', t.dtype));
  host.skips.forEach((t, i) => (point.skips[i] = back(t)));
  w.host = null;
  return back(host.x);
}

async function runTiles(gpu: Gpu, net: ImageNetwork, img: Image, tile: number | undefined, halo: number, dtype: Dtype, opts: TileOptions): Promise<Image> {
  if (!net.plan) throw new GpuMemoryError(`tiled inference: a ${img.width}×${img.height} image needs tiles, and this network does not expose its rows (plan)`);
  const { rows, ctx } = net.plan({ style: opts.style });
  const waiting: (Waiting | null)[] = [];
  try {
    const { layers, maxSide } = await probe(gpu, rows, ctx, dtype);
    // The largest core (a multiple of 4) whose tile, halo included, fits; never larger than the image needs.
    const core = tile ?? Math.min(Math.ceil(Math.max(img.width, img.height) / 4) * 4, Math.floor((maxSide - 2 * halo) / 4) * 4);
    if (core < 4) throw new GpuMemoryError(`tiled inference: even a tile of 4 px plus its ${halo}-px halo needs tensors beyond this device's limit (${maxSide}-px tiles at most)`);
    const tiles = planTiles(img.width, img.height, core, halo);
    const K = layers.length;
    const total = tiles.length * (K + 1);
    const budget = opts.memoryBudget ?? DEFAULT_BUDGET;
    const out = createImage(img.width, img.height);
    let done = 0;
    for (let k = 0; k <= K; k++) {
      const parts: { mean: RawTensor; var: RawTensor; n: number }[] = [];
      let onGpu = 0;
      for (let i = 0; i < tiles.length; i++) {
        const t = tiles[i];
        let r: IteratorResult<NormPoint, Tensor>;
        if (k === 0) {
          const input = inputOf(gpu, cropImage(img, t.x0, t.y0, t.w, t.h), dtype);
          const it = walk(rows, input, ctx, true);
          waiting[i] = { it, input, point: null as unknown as NormPoint, host: null };
          r = noGrad(() => it.next());
        } else {
          const w = waiting[i]!;
          const x = restore(gpu, w);
          const y = noGrad(() => tidy(() => normalizeWith(layers[k - 1], x)));
          if (x !== w.point.x) x.dispose();
          r = noGrad(() => w.it.next(y));
        }
        const w = waiting[i]!;
        if (r.done) {
          const piece = (await tensorToImages(r.value))[0];
          r.value.dispose();
          w.input.dispose();
          waiting[i] = null;
          paste(out, piece, t.cx, t.cy, t.cw, t.ch, t.x0 + t.cx, t.y0 + t.cy);
        } else {
          w.point = r.value;
          const L = layers[k];
          if (w.point.norm !== L.norm) throw new Error(`tiled inference: tile ${i} reached a different instance norm than the probe (${k})`);
          const [left, right, top, bottom] = coreOf(t, L, w.point.x, img);
          const [h, wd] = [w.point.x.shape[2], w.point.x.shape[3]];
          noGrad(() =>
            tidy(() => {
              const c = centerCrop2d(w.point.x, [left, wd - right, top, h - bottom]);
              parts.push({ ...normStats(gpu, c.raw, groupsOf(c.shape, false)), n: (bottom - top) * (right - left) });
            }),
          );
          // The tile waits for the others: on the GPU while the budget allows, else in host memory.
          onGpu += bytesOf(w.point);
          if (onGpu > budget) {
            onGpu -= bytesOf(w.point);
            await offload(w);
          }
        }
        opts.onTile?.({ done: ++done, total, stage: k + 1, stages: K + 1, tile: i + 1, tiles: tiles.length });
      }
      if (k < K) combineStats(layers[k], await Promise.all(parts.map(async (p) => ({ mean: await gpu.read(p.mean), var: await gpu.read(p.var), n: p.n }))));
      for (const p of parts) {
        gpu.release(p.mean);
        gpu.release(p.var);
      }
      // The next stage's tensors have other shapes: free buffers kept for this one would only add up, stage after
      // stage (on a CPU adapter that is the process's memory).
      gpu.trim();
    }
    return out;
  } finally {
    for (const w of waiting) {
      if (!w) continue;
      w.it.return(w.input);
      w.input.dispose();
      if (!w.host) [w.point?.x, ...(w.point?.skips ?? [])].forEach((t) => t?.dispose());
    }
    ctx.style?.dispose();
  }
}

/** Chan et al.: the whole image's mean and (biased) variance from each core's (n, mean, variance). */
function combineStats(L: NormLayer, parts: { mean: Float32Array; var: Float32Array; n: number }[]): void {
  const C = parts[0].mean.length;
  let n = 0;
  const mean = new Float64Array(C);
  const m2 = new Float64Array(C);
  for (const p of parts) {
    for (let c = 0; c < C; c++) {
      const d = p.mean[c] - mean[c];
      const nn = n + p.n;
      mean[c] += (d * p.n) / nn;
      m2[c] += p.var[c] * p.n + (d * d * n * p.n) / nn;
    }
    n += p.n;
  }
  L.mean = mean;
  L.var = m2.map((v) => v / n);
}

/**
 * Runs `net` on an image of any size: padded (reflect) to a multiple of 4, in one piece when it fits the
 * device, otherwise in tiles (or in tiles of `opts.tile` when given); the result has the input's size.
 */
export async function runImageNetwork(gpu: Gpu, net: ImageNetwork, img: Image, opts: TileOptions = {}): Promise<Image> {
  const padded = padReflect(img, (4 - (img.width % 4)) % 4, (4 - (img.height % 4)) % 4);
  const halo = opts.halo ?? 64;
  if (opts.tile !== undefined && !(Number.isInteger(opts.tile) && opts.tile >= 4 && opts.tile % 4 === 0)) throw new Error(`tiled inference: tile must be a multiple of 4 (≥ 4), got ${opts.tile}`);
  if (!(Number.isInteger(halo) && halo >= 0 && halo % 4 === 0)) throw new Error(`tiled inference: halo must be a multiple of 4, got ${halo}`);
  const dtype = pickPrecision(gpu, opts.precision, 'stylize');
  let result: Image | null = null;
  if (!opts.tile) {
    try {
      result = await runWhole(gpu, net, padded, dtype, opts.style);
    } catch (e) {
      if (!(e instanceof GpuMemoryError)) throw e;
    }
  }
  result ??= await runTiles(gpu, net, padded, opts.tile, halo, dtype, opts);
  return result.width === img.width && result.height === img.height ? result : cropImage(result, 0, 0, img.width, img.height);
}
