// Images as the engine sees them: RGB, planar (CHW), float32, values on the 0..255 scale. Format-independent and
// browser-safe (no Node imports): decoding/encoding files lives in image-node.ts (Node) or in the browser's own APIs,
// which hand over interleaved RGBA bytes (ImageData) that `fromRGBA` / `toRGBA` convert.
import { Tensor } from '../autograd/tensor.js';
import type { Gpu } from '../gpu/index.js';

/** An RGB image: `data` is planar CHW (all R, then all G, then all B), row-major, values nominally 0..255. */
export interface Image {
  readonly width: number;
  readonly height: number;
  readonly data: Float32Array;
  /** Opacity 0..255 per pixel (row-major), when the source had an alpha channel. The networks see RGB only; an
   *  image made from one with alpha carries the same plane (stylizeImage), and files are written with it. */
  readonly alpha?: Float32Array;
}

function checkSize(op: string, width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0) {
    throw new Error(`${op}: invalid image size ${width}x${height}`);
  }
}

/** A new image; `data` (planar RGB, length 3*width*height) is taken as is, or zero-filled when omitted. */
export function createImage(width: number, height: number, data?: Float32Array): Image {
  checkSize('createImage', width, height);
  const n = 3 * width * height;
  if (data && data.length !== n) {
    throw new Error(`createImage: ${data.length} values for a ${width}x${height} RGB image (${n} expected)`);
  }
  return { width, height, data: data ?? new Float32Array(n) };
}

/**
 * From interleaved 8-bit (or 16-bit, scaled to 0..255 by /257) samples with `channels` per pixel:
 * 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA. Grey is replicated to R, G and B; alpha is not composited (the colours
 * stay as stored, as PIL's `convert('RGB')` leaves them) and is kept as the `alpha` plane when `keepAlpha`.
 */
export function fromInterleaved(
  samples: ArrayLike<number>,
  width: number,
  height: number,
  channels: 1 | 2 | 3 | 4,
  scale = 1,
  keepAlpha = false,
): Image {
  checkSize('fromInterleaved', width, height);
  const hw = width * height;
  if (samples.length !== hw * channels) {
    throw new Error(`fromInterleaved: ${samples.length} samples for ${width}x${height} with ${channels} channels (${hw * channels} expected)`);
  }
  const out = new Float32Array(3 * hw);
  const grey = channels <= 2;
  for (let i = 0, s = 0; i < hw; i++, s += channels) {
    const r = samples[s] * scale;
    out[i] = r;
    out[hw + i] = grey ? r : samples[s + 1] * scale;
    out[2 * hw + i] = grey ? r : samples[s + 2] * scale;
  }
  if (!keepAlpha || channels % 2 === 1) return { width, height, data: out };
  const alpha = new Float32Array(hw);
  for (let i = 0, s = channels - 1; i < hw; i++, s += channels) alpha[i] = samples[s] * scale;
  return { width, height, data: out, alpha };
}

/** From interleaved RGBA bytes (e.g. a canvas ImageData's `data`); alpha is dropped. */
export function fromRGBA(rgba: ArrayLike<number>, width: number, height: number): Image {
  return fromInterleaved(rgba, width, height, 4);
}

/** Rounded and clamped to 0..255; NaN gives 0. */
const byte = (v: number): number => (v >= 0.5 ? (v >= 255 ? 255 : Math.round(v)) : 0);

/** Interleaved RGBA bytes (values rounded and clamped to 0..255; alpha from the image's plane, else 255), e.g. for
 *  `new ImageData(...)`. */
export function toRGBA(img: Image): Uint8ClampedArray {
  return interleave(img, 4) as Uint8ClampedArray;
}

/** Interleaved RGB bytes (rounded and clamped to 0..255). */
export function toRGB(img: Image): Uint8Array {
  return interleave(img, 3) as Uint8Array;
}

function interleave(img: Image, channels: 3 | 4): Uint8Array | Uint8ClampedArray {
  const hw = img.width * img.height;
  const out = channels === 4 ? new Uint8ClampedArray(4 * hw) : new Uint8Array(3 * hw);
  const d = img.data;
  const a = img.alpha;
  for (let i = 0, o = 0; i < hw; i++, o += channels) {
    out[o] = byte(d[i]);
    out[o + 1] = byte(d[hw + i]);
    out[o + 2] = byte(d[2 * hw + i]);
    if (channels === 4) out[o + 3] = a ? byte(a[i]) : 255;
  }
  return out;
}

/**
 * The `width` x `height` window whose top-left corner is (`left`, `top`). The window may extend past the image
 * (negative offsets too): those pixels are 0, like torchvision's zero padding.
 */
export function crop(img: Image, left: number, top: number, width: number, height: number): Image {
  checkSize('crop', width, height);
  if (!Number.isInteger(left) || !Number.isInteger(top)) throw new Error(`crop: offsets must be integers, got (${left}, ${top})`);
  const out = new Float32Array(3 * width * height);
  const W = img.width;
  const H = img.height;
  const x0 = Math.max(0, -left);
  const x1 = Math.min(width, W - left);
  for (let c = 0; c < 3; c++) {
    const src = c * W * H;
    const dst = c * width * height;
    for (let y = 0; y < height; y++) {
      const sy = y + top;
      if (sy < 0 || sy >= H || x1 <= x0) continue;
      const s = src + sy * W + left;
      out.set(img.data.subarray(s + x0, s + x1), dst + y * width + x0);
    }
  }
  return { width, height, data: out };
}

/** Python's round(): halves to even (torchvision computes crop offsets with `int(round(x))`). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The top-left corner torchvision's `center_crop` uses: `round((H - h) / 2)` (Python rounding) when the crop fits;
 * when it does not, the image is zero-padded by `floor((h - H) / 2)` before the top (resp. left) edge.
 */
export function centerCropOffsets(imgWidth: number, imgHeight: number, width: number, height: number): { left: number; top: number } {
  const off = (size: number, crop: number) => (crop <= size ? roundHalfEven((size - crop) / 2) : 0 - Math.floor((crop - size) / 2));
  return { left: off(imgWidth, width), top: off(imgHeight, height) };
}

/** torchvision's `CenterCrop((height, width))`; `height` defaults to `width`. */
export function centerCrop(img: Image, width: number, height = width): Image {
  const { left, top } = centerCropOffsets(img.width, img.height, width, height);
  return crop(img, left, top, width, height);
}

/** Stacks same-sized images into one NCHW float32 array. */
export function imagesToNCHW(images: readonly Image[]): { data: Float32Array; shape: [number, number, number, number] } {
  if (images.length === 0) throw new Error('imagesToNCHW: no images');
  const { width, height } = images[0];
  const per = 3 * width * height;
  const data = new Float32Array(images.length * per);
  images.forEach((im, i) => {
    if (im.width !== width || im.height !== height) {
      throw new Error(`imagesToNCHW: image ${i} is ${im.width}x${im.height}, image 0 is ${width}x${height}; a batch needs one size`);
    }
    data.set(im.data, i * per);
  });
  return { data, shape: [images.length, 3, height, width] };
}

/** Splits an NCHW array with C = 3 into images (copies). */
export function imagesFromNCHW(data: Float32Array, shape: readonly number[]): Image[] {
  if (shape.length !== 4 || shape[1] !== 3) throw new Error(`imagesFromNCHW: expected shape [N,3,H,W], got [${shape.join(',')}]`);
  const [n, , h, w] = shape;
  const per = 3 * h * w;
  if (data.length !== n * per) throw new Error(`imagesFromNCHW: ${data.length} values for shape [${shape.join(',')}]`);
  return Array.from({ length: n }, (_, i) => ({ width: w, height: h, data: data.slice(i * per, (i + 1) * per) }));
}

/** Uploads one image or a batch of same-sized images as a [N,3,H,W] tensor (values stay on the 0..255 scale). */
export function imageToTensor(gpu: Gpu, images: Image | readonly Image[], requiresGrad = false): Tensor {
  const { data, shape } = imagesToNCHW(Array.isArray(images) ? images : [images as Image]);
  return Tensor.from(gpu, data, shape, requiresGrad);
}

/** Reads a [N,3,H,W] tensor back as N images (values as they are: not clamped or rounded). */
export async function tensorToImages(t: Tensor): Promise<Image[]> {
  return imagesFromNCHW(await t.data(), t.shape);
}
