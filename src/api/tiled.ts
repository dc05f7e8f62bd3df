// Image-to-image inference for images of any size. An image that fits runs in one piece; one that does not
// (the device's buffer limits) runs in overlapping tiles whose halo covers the network's receptive field, so
// every output pixel is computed from exactly the context it would have had in one piece. Instance norm is
// the catch: its statistics are over the whole image. They are computed here layer by layer — pass k runs
// every tile up to the k-th instance norm, using the whole-image statistics already known for the earlier
// ones, and accumulates that layer's mean and variance over each tile's core (Chan et al.'s parallel
// combination, in float64) — then a last pass normalises every tile with the whole-image statistics.
// The result equals the one-piece result up to float32 rounding: no seams, no per-tile colour shifts.
import { noGrad, tidy, type Tensor } from '../autograd/tensor.js';
import { GpuMemoryError, type Gpu, type RawTensor } from '../gpu/index.js';
import { groupsOf, normStats } from '../kernels/norm.js';
import { channelAffine } from '../layers/channel-affine.js';
import { centerCrop2d } from '../layers/spatial.js';
import { instanceNorm2d, withInstanceNormHook, type InstanceNorm2d } from '../layers/norm.js';
import { createImage, imageToTensor, tensorToImages, type Image } from '../io/image.js';
import type { StyleBlend } from '../nets/transformer-net.js';

/** A same-size image-to-image network (RGB 0..255 in and out) with a bounded receptive field. */
export interface ImageNetwork {
  forward(x: Tensor, opts?: { style?: StyleBlend }): Tensor;
}

export interface TileOptions {
  /** Core size of a tile in pixels (a multiple of 4); default: one piece if it fits, else the largest that fits. */
  tile?: number;
  /** Context around each core, ≥ the receptive field's radius (default 64 px, for TransformerNet's ~54). */
  halo?: number;
  onTile?: (done: number, total: number) => void;
  /** Multi-style networks: the style index or blend. */
  style?: StyleBlend;
}

const STOP = Symbol('stop');

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

async function runWhole(gpu: Gpu, net: ImageNetwork, img: Image, style?: StyleBlend): Promise<Image> {
  const y = noGrad(() => tidy(() => net.forward(imageToTensor(gpu, img), { style })));
  try {
    return (await tensorToImages(y))[0];
  } finally {
    y.dispose();
  }
}

interface NormLayer {
  module: InstanceNorm2d;
  /** Downsampling factor and symmetric offset of this layer's grid relative to the input's. */
  f: number;
  off: number;
  weight: Float32Array | null;
  bias: Float32Array | null;
  /** Whole-image statistics, once known. */
  mean?: Float64Array;
  var?: Float64Array;
}

/** Finds the instance-norm layers in call order and how their grids map onto the input's. */
async function probe(gpu: Gpu, net: ImageNetwork, style?: StyleBlend): Promise<NormLayer[]> {
  const trace = async (size: number) => {
    const seen: { module: InstanceNorm2d; h: number }[] = [];
    const y = noGrad(() =>
      withInstanceNormHook(
        (m, x) => {
          seen.push({ module: m, h: x.shape[2] });
          return instanceNorm2d(x, m.weight, m.bias, { eps: m.eps });
        },
        () => tidy(() => net.forward(imageToTensor(gpu, createImage(size, size)), { style })),
      ),
    );
    y.dispose();
    return seen;
  };
  // Two sizes: a layer's height is size/f + 2·off, which gives f and off.
  const a = await trace(64);
  const b = await trace(96);
  const layers: NormLayer[] = [];
  for (let i = 0; i < a.length; i++) {
    const f = 32 / (b[i].h - a[i].h);
    const off = (a[i].h - 64 / f) / 2;
    if (![1, 2, 4].includes(f) || !Number.isInteger(off)) throw new Error(`tiled inference: instance norm ${i} has an unexpected grid (f ${f}, offset ${off})`);
    const m = a[i].module;
    layers.push({ module: m, f, off, weight: m.weight ? await m.weight.data() : null, bias: m.bias ? await m.bias.data() : null });
  }
  return layers;
}

function normalizeWith(layer: NormLayer, x: Tensor): Tensor {
  const C = x.shape[1];
  const eps = layer.module.eps;
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

async function runTiles(gpu: Gpu, net: ImageNetwork, img: Image, core: number, halo: number, onTile?: TileOptions['onTile'], style?: StyleBlend): Promise<Image> {
  const layers = await probe(gpu, net, style);
  const tiles = planTiles(img.width, img.height, core, halo);
  const total = tiles.length * (layers.length + 1);
  let done = 0;
  // Passes 0..K−1: whole-image statistics of instance norm k.
  for (let k = 0; k < layers.length; k++) {
    const L = layers[k];
    const parts: { mean: RawTensor; var: RawTensor; n: number }[] = [];
    for (const t of tiles) {
      let call = 0;
      try {
        noGrad(() =>
          withInstanceNormHook(
            (_m, x) => {
              const i = call++;
              if (i < k) return normalizeWith(layers[i], x);
              // The tile's core on this layer's grid; cores on the image's border also take the margin a
              // network pads there (the paper's 40-px reflection pad), which instance norm includes too.
              const [h, w] = [x.shape[2], x.shape[3]];
              const top = t.y0 + t.cy === 0 ? 0 : t.cy / L.f + L.off;
              const left = t.x0 + t.cx === 0 ? 0 : t.cx / L.f + L.off;
              const bottom = t.y0 + t.cy + t.ch === img.height ? h : (t.cy + t.ch) / L.f + L.off;
              const right = t.x0 + t.cx + t.cw === img.width ? w : (t.cx + t.cw) / L.f + L.off;
              const c = centerCrop2d(x, [left, w - right, top, h - bottom]);
              const s = normStats(gpu, c.raw, groupsOf(c.shape, false));
              parts.push({ ...s, n: (bottom - top) * (right - left) });
              throw STOP;
            },
            () => tidy(() => net.forward(imageToTensor(gpu, cropImage(img, t.x0, t.y0, t.w, t.h)), { style })),
          ),
        );
        throw new Error(`tiled inference: the network ran without reaching instance norm ${k}`);
      } catch (e) {
        if (e !== STOP) throw e;
      }
      onTile?.(++done, total);
    }
    // Chan et al.: combine (n, mean, M2) of the cores.
    const C = L.weight?.length ?? (await gpu.read(parts[0].mean)).length;
    let n = 0;
    const mean = new Float64Array(C);
    const m2 = new Float64Array(C);
    for (const p of parts) {
      const [pm, pv] = [await gpu.read(p.mean), await gpu.read(p.var)];
      gpu.release(p.mean);
      gpu.release(p.var);
      for (let c = 0; c < C; c++) {
        const d = pm[c] - mean[c];
        const nn = n + p.n;
        mean[c] += (d * p.n) / nn;
        m2[c] += pv[c] * p.n + (d * d * n * p.n) / nn;
      }
      n += p.n;
    }
    L.mean = mean;
    L.var = m2.map((v) => v / n);
  }
  // Last pass: every tile with whole-image statistics; keep each core.
  const out = createImage(img.width, img.height);
  for (const t of tiles) {
    let call = 0;
    const y = noGrad(() =>
      withInstanceNormHook(
        (_m, x) => normalizeWith(layers[call++], x),
        () => tidy(() => net.forward(imageToTensor(gpu, cropImage(img, t.x0, t.y0, t.w, t.h)), { style })),
      ),
    );
    const piece = (await tensorToImages(y))[0];
    y.dispose();
    paste(out, piece, t.cx, t.cy, t.cw, t.ch, t.x0 + t.cx, t.y0 + t.cy);
    onTile?.(++done, total);
  }
  return out;
}

/**
 * Runs `net` on an image of any size: padded (reflect) to a multiple of 4, in one piece when it fits the
 * device, otherwise in tiles (or in tiles of `opts.tile` when given); the result has the input's size.
 */
export async function runImageNetwork(gpu: Gpu, net: ImageNetwork, img: Image, opts: TileOptions = {}): Promise<Image> {
  const padded = padReflect(img, (4 - (img.width % 4)) % 4, (4 - (img.height % 4)) % 4);
  const halo = opts.halo ?? 64;
  let result: Image | null = null;
  if (!opts.tile) {
    try {
      result = await runWhole(gpu, net, padded, opts.style);
    } catch (e) {
      if (!(e instanceof GpuMemoryError)) throw e;
    }
  }
  for (let core = opts.tile ?? 1024; !result; core /= 2) {
    if (core % 4 || core < 16) throw new GpuMemoryError(`tiled inference: even ${core * 2}-px tiles do not fit this device`);
    try {
      result = await runTiles(gpu, net, padded, core, halo, opts.onTile, opts.style);
    } catch (e) {
      if (!(e instanceof GpuMemoryError) || opts.tile) throw e;
    }
  }
  return result.width === img.width && result.height === img.height ? result : cropImage(result, 0, 0, img.width, img.height);
}
