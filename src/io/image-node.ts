// Node-only image files through `sharp` (libvips): decode JPEG, PNG, WebP, GIF (first frame), TIFF (first page),
// AVIF and SVG (rendered at its own size); encode PNG or JPEG. Everything becomes 8-bit-scale RGB (see image.ts):
// greyscale is replicated, CMYK is converted to sRGB by libvips, an alpha channel is kept beside the colours (the
// `alpha` plane, written back to PNG), the EXIF orientation is applied, and 16-bit images keep their precision in
// memory (value / 257, so 65535 → 255); files are written with 8 bits per sample.
// The header is read before any pixel: an image beyond `maxPixels` (a 31 KB PNG or a 122-byte SVG can declare
// gigapixels) is refused without being decoded.
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import sharp, { type Metadata } from 'sharp';
import { writeFileAtomic } from './files.js';
import { fromInterleaved, toRGB, toRGBA, type Image } from './image.js';

/** The default limit of decoded images: 8192 × 8192 (67 megapixels; a 61 MP camera's photos pass). Decoding costs
 *  about 15 bytes per pixel (8-bit samples, then float32 RGB), so this bounds one image near 1 GB. */
export const DEFAULT_MAX_PIXELS = 8192 * 8192;

/** The extensions of the formats decodeImage reads, for finding images in folders. */
export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif', '.avif', '.svg'];

/** Those formats, for messages and help texts. */
export const IMAGE_FORMATS = 'JPEG, PNG, WebP, TIFF, GIF, AVIF, SVG';

export interface DecodeOptions {
  /** Refuse images with more pixels than this, before decoding them (default DEFAULT_MAX_PIXELS). */
  maxPixels?: number;
}

/** What an image file's header says, read without decoding its pixels. */
export interface ImageHeader {
  /** As the image will be decoded (EXIF orientation applied). */
  width: number;
  height: number;
  format: string;
  /** Whether it has an alpha channel. */
  alpha: boolean;
  /** Bits per sample: 8, or 16 (kept in memory, written as 8). */
  bits: number;
}

/** An image file could not be read, decoded or written; the message names the file. */
export class ImageFileError extends Error {
  override name = 'ImageFileError';
  constructor(
    message: string,
    readonly file: string,
  ) {
    super(message);
  }
}

function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ENOENT') return 'no such file';
  if (err?.code === 'EISDIR') return 'is a directory';
  if (err?.code === 'EACCES') return 'permission denied';
  const m = String(err?.message ?? e).trim();
  if (/unsupported image format/i.test(m)) return 'not an image (unrecognised or unsupported format)';
  const msg = m.replace(/^vips\w*:\s*/i, '');
  return /premature end|read error|truncat|corrupt/i.test(msg) ? `${msg} (the file is truncated or corrupt)` : msg;
}

const megapixels = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} gigapixels` : n >= 1e5 ? `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)} megapixels` : `${n} pixels`);

function headerOf(meta: Metadata): ImageHeader {
  // libvips reports the stored size; orientations 5–8 swap it when applied.
  const turned = (meta.orientation ?? 1) >= 5;
  const [w, h] = [meta.width ?? 0, meta.height ?? 0];
  return { width: turned ? h : w, height: turned ? w : h, format: meta.format ?? 'unknown', alpha: !!meta.hasAlpha, bits: meta.depth === 'ushort' ? 16 : 8 };
}

/** The refusal of an image beyond the pixel limit, or null. */
export function pixelLimitError(name: string, h: { width: number; height: number }, maxPixels = DEFAULT_MAX_PIXELS): string | null {
  const n = h.width * h.height;
  if (n <= maxPixels) return null;
  return `'${name}' is ${h.width}×${h.height} (${megapixels(n)}), beyond the limit of ${megapixels(maxPixels)} (not decoded)`;
}

/** The header of an image file or bytes (size, format, alpha, bit depth), read without decoding the pixels. */
export async function probeImage(source: string | Uint8Array, name = typeof source === 'string' ? source : '<buffer>'): Promise<ImageHeader> {
  try {
    return headerOf(await sharp(source, { limitInputPixels: false }).metadata());
  } catch (e) {
    throw new ImageFileError(`cannot ${typeof source === 'string' && (e as NodeJS.ErrnoException)?.code ? 'read' : 'decode'} image '${name}': ${reason(e)}`, name);
  }
}

/** Decodes image bytes (any format libvips reads) into an RGB `Image`, with its `alpha` plane when it has one.
 *  `name` is used in error messages. Images beyond `opts.maxPixels` are refused from their header. */
export async function decodeImage(bytes: Uint8Array, name = '<buffer>', opts: DecodeOptions = {}): Promise<Image> {
  const meta = await probeImage(bytes, name);
  const big = pixelLimitError(name, meta, opts.maxPixels);
  if (big) throw new ImageFileError(`cannot decode image ${big}`, name);
  try {
    // failOn 'error': truncated or corrupt data is an error; libjpeg's benign warnings are not. The pixel count
    // was checked above (libvips' own limit would stop at 268 megapixels).
    const input = sharp(bytes, { failOn: 'error', autoOrient: true, limitInputPixels: false });
    const deep = meta.bits === 16;
    const channels = meta.alpha ? 4 : 3;
    let pipeline = input.toColourspace(deep ? 'rgb16' : 'srgb');
    if (!meta.alpha) pipeline = pipeline.removeAlpha();
    const { data, info } = await pipeline.raw({ depth: deep ? 'ushort' : 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== channels) throw new Error(`decoded to ${info.channels} channels, expected ${channels}`);
    const samples = deep ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return fromInterleaved(samples, info.width, info.height, channels, deep ? 1 / 257 : 1, true);
  } catch (e) {
    throw new ImageFileError(`cannot decode image '${name}': ${reason(e)}`, name);
  }
}

/** Reads and decodes an image file. Errors (missing file, not an image, truncated data, beyond `opts.maxPixels`)
 *  name the file; the size is checked from the header before the pixels are decoded. */
export async function readImage(path: string, opts: DecodeOptions = {}): Promise<Image> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new ImageFileError(`cannot read image '${path}': ${reason(e)}`, path);
  }
  return decodeImage(bytes, path, opts);
}

export type ImageFormat = 'png' | 'jpeg';

export interface EncodeOptions {
  /** JPEG quality 1..100 (default 95). */
  quality?: number;
}

/** Encodes an image as 8-bit PNG (RGBA when it has an alpha plane, else RGB) or JPEG (RGB: JPEG has no alpha);
 *  values rounded and clamped to 0..255. */
export async function encodeImage(img: Image, format: ImageFormat, opts: EncodeOptions = {}): Promise<Uint8Array> {
  const rgba = format === 'png' && img.alpha !== undefined;
  const samples = rgba ? toRGBA(img) : toRGB(img);
  const raw = sharp(samples, { raw: { width: img.width, height: img.height, channels: rgba ? 4 : 3 } });
  const buf = format === 'png' ? await raw.png().toBuffer() : await raw.jpeg({ quality: opts.quality ?? 95, chromaSubsampling: '4:4:4' }).toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** The format implied by a file name's extension (.png, .jpg, .jpeg), or an error naming the file. */
export function formatForPath(path: string): ImageFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.png') return 'png';
  if (ext === '.jpg' || ext === '.jpeg') return 'jpeg';
  throw new ImageFileError(`cannot write image '${path}': unknown extension '${ext || '(none)'}' (use .png, .jpg or .jpeg)`, path);
}

/** Writes an image as PNG or JPEG chosen by the extension; the file is replaced atomically. */
export async function writeImage(path: string, img: Image, opts: EncodeOptions = {}): Promise<void> {
  const format = formatForPath(path);
  const bytes = await encodeImage(img, format, opts);
  try {
    await writeFileAtomic(path, bytes);
  } catch (e) {
    throw new ImageFileError(`cannot write image '${path}': ${reason(e)}`, path);
  }
}
