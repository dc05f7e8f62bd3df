// Super-resolution evaluation of a folder of high-resolution images (Node only), with the protocol of the SR
// literature (../shared/PAPER.md): each HR image is cropped to a multiple of the scale (top-left: the last rows and
// columns are dropped); the LR input is MATLAB's bicubic imresize(HR, 1/scale) in uint8 (io/bicubic.ts, bit-exact
// with the standard benchmark LR files); the SR image is the model's output (rounded to uint8, as a saved image) or
// bicubic imresize(LR, scale) in uint8; metrics (eval/metrics.ts) on Y with `scale` border pixels shaved.
// Greyscale files (one channel, e.g. Set14's bridge) are evaluated on their grey values.
// Optional post-processing (the paper's): the SR output's histogram matched to the LR input's, per channel.
import { readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import sharp from 'sharp';
import { imresize } from '../io/bicubic.js';
import { crop, type Image } from '../io/image.js';
import { readImage } from '../io/image-node.js';
import { upscaleImage, type SRNet } from '../nets/sr-net.js';
import { matchHistogram, srMetrics, type SrMetrics } from './metrics.js';

export const SR_IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp'];

export interface SrEvalOptions {
  scale: number;
  /** The network that makes the SR image; without one, bicubic upscaling (the baseline). Put it in eval mode. */
  model?: SRNet;
  /** Match the SR output's histogram to the LR input's, per channel, before measuring. */
  histMatch?: boolean;
  /** LR tile size for the model (see upscaleImage). */
  tile?: number;
  /** Score the SR images another method made instead: a folder holding, for each HR image, an image of the same
   *  base name (any image extension) and of the cropped HR size. */
  outputs?: string;
  /** Called after each image. */
  onImage?: (r: SrImageResult, index: number, total: number) => void;
}

export interface SrImageResult extends SrMetrics {
  file: string;
  /** The evaluated (cropped) HR size. */
  width: number;
  height: number;
  grey: boolean;
}

export interface SrEvalResult {
  mean: SrMetrics;
  images: SrImageResult[];
}

/** The image files of a folder (by extension), sorted by name. */
export function listImages(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`cannot read folder '${dir}': ${code === 'ENOENT' ? 'no such folder' : code === 'ENOTDIR' ? 'not a folder' : (e as Error).message}`);
  }
  return names
    .filter((f) => SR_IMAGE_EXTENSIONS.includes(extname(f).toLowerCase()) && statSync(join(dir, f)).isFile())
    .sort()
    .map((f) => join(dir, f));
}

/** Top-left crop to multiples of `scale` (drops the last rows and columns). */
export function cropToMultiple(img: Image, scale: number): Image {
  const w = img.width - (img.width % scale);
  const h = img.height - (img.height % scale);
  if (w === img.width && h === img.height) return img;
  return crop(img, 0, 0, w, h);
}

/** Rounded half away from zero and clipped to 0..255, as an 8-bit image file would hold it. */
export function toUint8Values(img: Image): Image {
  return { width: img.width, height: img.height, data: img.data.map((v) => (v >= 0.5 ? (v >= 255 ? 255 : Math.floor(v + 0.5)) : 0)) };
}

/** The SR image of a cropped HR image (and the LR input it was made from). */
export async function superResolve(hr: Image, opts: SrEvalOptions): Promise<{ lr: Image; sr: Image }> {
  const s = opts.scale;
  const lr = imresize(hr, { scale: 1 / s }, { uint8: true });
  let sr: Image;
  if (opts.model) {
    if (opts.model.scale !== s) throw new Error(`the model upscales ×${opts.model.scale}, not ×${s}`);
    sr = await upscaleImage(opts.model, lr, { tile: opts.tile });
    if (!opts.histMatch) sr = toUint8Values(sr);
  } else {
    sr = imresize(lr, { scale: s }, { uint8: true });
  }
  if (opts.histMatch) sr = toUint8Values(matchHistogram(sr, lr));
  return { lr, sr };
}

/** Whether an image file has a single (grey) channel, alpha aside. */
export async function isGreyscaleFile(path: string): Promise<boolean> {
  const m = await sharp(path).metadata();
  return (m.channels ?? 3) <= 2;
}

/** Metrics of one HR image file. */
export async function evaluateSrFile(path: string, opts: SrEvalOptions): Promise<SrImageResult> {
  const s = opts.scale;
  if (!(Number.isInteger(s) && s >= 2)) throw new Error(`scale must be an integer ≥ 2, got ${s}`);
  const full = await readImage(path);
  const grey = await isGreyscaleFile(path);
  const hr = cropToMultiple(full, s);
  const min = 2 * s + 11; // the SSIM window must fit after shaving
  if (hr.width < min || hr.height < min) {
    throw new Error(`image '${path}' (${full.width}x${full.height}) is too small for ×${s} evaluation (at least ${min}x${min} after cropping)`);
  }
  const sr = opts.outputs ? await readOutput(opts.outputs, path, hr) : (await superResolve(hr, opts)).sr;
  const m = srMetrics(sr, hr, { shave: s, grey });
  return { file: basename(path), width: hr.width, height: hr.height, grey, ...m };
}

/** The SR image another method made for HR file `hrPath`: same base name in `dir`, the cropped HR's size. */
async function readOutput(dir: string, hrPath: string, hr: Image): Promise<Image> {
  const stem = basename(hrPath, extname(hrPath));
  const match = listImages(dir).find((f) => basename(f, extname(f)) === stem);
  if (!match) throw new Error(`no output for '${basename(hrPath)}' in '${dir}' (looked for ${stem}.{${SR_IMAGE_EXTENSIONS.map((e) => e.slice(1)).join(',')}})`);
  const sr = await readImage(match);
  if (sr.width !== hr.width || sr.height !== hr.height) {
    throw new Error(`output '${match}' is ${sr.width}x${sr.height}, but the HR image cropped to the scale is ${hr.width}x${hr.height}`);
  }
  return sr;
}

/** Evaluates every image of a folder; the mean is over images (as the SR literature reports). */
export async function evaluateSrFolder(dir: string, opts: SrEvalOptions): Promise<SrEvalResult> {
  const files = listImages(dir);
  if (files.length === 0) throw new Error(`no images in '${dir}' (looked for ${SR_IMAGE_EXTENSIONS.join(', ')})`);
  const images: SrImageResult[] = [];
  for (const [i, f] of files.entries()) {
    const r = await evaluateSrFile(f, opts);
    images.push(r);
    opts.onImage?.(r, i, files.length);
  }
  const mean = (k: 'psnr' | 'ssim') => images.reduce((a, r) => a + r[k], 0) / images.length;
  return { mean: { psnr: mean('psnr'), ssim: mean('ssim') }, images };
}
