// CPU image resizing: separable bilinear (triangle) filtering with antialiasing, as PIL's `Image.resize(...,
// BILINEAR)` (ImagingResample) and torchvision's `Resize(..., antialias=True)` on tensors compute it: output pixel i
// has its centre at (i + 0.5) * scale in input coordinates (scale = in / out); when downscaling, the triangle's
// support widens from 1 to `scale` input pixels, so every input pixel contributes (no aliasing). Taps beyond the edge
// are dropped and the remaining weights renormalised. Computed in float64, stored as float32, without PIL's uint8
// rounding between the passes (torchvision's tensor path does not round either).
import { centerCrop, createImage, type Image } from './image.js';

/** The triangle (tent) filter of PIL's BILINEAR. */
const triangle = (x: number): number => {
  const a = Math.abs(x);
  return a < 1 ? 1 - a : 0;
};

/** Taps of a 1-D resampling: output i reads `count[i]` inputs from `start[i]` with weights `w[i*ksize + k]`. */
export interface ResampleCoeffs {
  start: Int32Array;
  count: Int32Array;
  ksize: number;
  weights: Float64Array;
}

/** The per-output taps and normalised weights of PIL's `precompute_coeffs` for a bilinear filter. */
export function bilinearCoeffs(inSize: number, outSize: number): ResampleCoeffs {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 1 * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * ksize);
  const ss = 1 / filterScale;
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize);
    const n = Math.min(xmax - xmin, ksize);
    let sum = 0;
    for (let k = 0; k < n; k++) {
      const w = triangle((k + xmin - center + 0.5) * ss);
      weights[i * ksize + k] = w;
      sum += w;
    }
    if (sum !== 0) for (let k = 0; k < n; k++) weights[i * ksize + k] /= sum;
    start[i] = xmin;
    count[i] = n;
  }
  return { start, count, ksize, weights };
}

/** Bilinear resize with antialiasing (PIL / torchvision `antialias=True`) to `width` x `height`; an alpha plane is
 *  resized with the colours. */
export function resize(img: Image, width: number, height: number): Image {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`resize: invalid output size ${width}x${height}`);
  }
  const W = img.width;
  const H = img.height;
  if (W < 1 || H < 1) throw new Error(`resize: cannot resize an empty ${W}x${H} image`);
  const alpha = img.alpha && { alpha: resizePlanes(img.alpha, 1, W, H, width, height) };
  if (W === width && H === height) return { ...createImage(W, H, img.data.slice()), ...alpha };
  return { width, height, data: resizePlanes(img.data, 3, W, H, width, height), ...alpha };
}

/** `planes` row-major planes of W x H, each resized to `width` x `height` (bilinear, antialiased). */
export function resizePlanes(src: Float32Array, planes: number, W: number, H: number, width: number, height: number): Float32Array {
  const out = new Float32Array(planes * width * height);
  if (W === width && H === height) {
    out.set(src.subarray(0, out.length));
    return out;
  }
  const cx = W === width ? null : bilinearCoeffs(W, width);
  const cy = H === height ? null : bilinearCoeffs(H, height);
  const tmp = new Float64Array(H * width);
  const row = new Float64Array(width);
  for (let c = 0; c < planes; c++) {
    const plane = src.subarray(c * W * H, (c + 1) * W * H);
    // Horizontal pass: H rows of W → H rows of `width`.
    if (cx) {
      for (let y = 0; y < H; y++) {
        const r = y * W;
        for (let x = 0; x < width; x++) {
          const s = r + cx.start[x];
          const wo = x * cx.ksize;
          let acc = 0;
          for (let k = 0, n = cx.count[x]; k < n; k++) acc += plane[s + k] * cx.weights[wo + k];
          tmp[y * width + x] = acc;
        }
      }
    } else {
      for (let i = 0; i < H * W; i++) tmp[i] = plane[i];
    }
    // Vertical pass: H rows → `height` rows.
    const dst = out.subarray(c * width * height, (c + 1) * width * height);
    if (!cy) {
      for (let i = 0; i < H * width; i++) dst[i] = tmp[i];
      continue;
    }
    for (let y = 0; y < height; y++) {
      row.fill(0);
      const wo = y * cy.ksize;
      for (let k = 0, n = cy.count[y]; k < n; k++) {
        const w = cy.weights[wo + k];
        const r = (cy.start[y] + k) * width;
        for (let x = 0; x < width; x++) row[x] += tmp[r + x] * w;
      }
      dst.set(row, y * width);
    }
  }
  return out;
}

/**
 * The output size of torchvision's `Resize(size)` with an int: the shorter side becomes `size`, the longer one
 * `int(size * long / short)` (truncated), keeping the orientation.
 */
export function shorterSideSize(width: number, height: number, size: number): { width: number; height: number } {
  if (!Number.isInteger(size) || size < 1) throw new Error(`resize: invalid size ${size}`);
  if (width <= height) return { width: size, height: Math.trunc((size * height) / width) };
  return { width: Math.trunc((size * width) / height), height: size };
}

/** torchvision's `Resize(size, antialias=True)` with an int size: the shorter side to `size`, bilinear. */
export function resizeShorterSide(img: Image, size: number): Image {
  const s = shorterSideSize(img.width, img.height, size);
  return resize(img, s.width, s.height);
}

/** The usual ImageNet evaluation preprocessing: shorter side to `resizeTo` (256), then the central `crop` (224). */
export function resizeAndCenterCrop(img: Image, resizeTo = 256, crop = 224): Image {
  return centerCrop(resizeShorterSide(img, resizeTo), crop);
}
