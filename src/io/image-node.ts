// Node-only image files through `sharp` (libvips): decode JPEG, PNG, WebP, GIF (first frame), TIFF (first page),
// AVIF/HEIF where libvips has them; encode PNG or JPEG. Everything becomes 8-bit-scale RGB (see image.ts):
// greyscale is replicated, CMYK is converted to sRGB by libvips, alpha is dropped (as PIL's `convert('RGB')`), the
// EXIF orientation is applied, and 16-bit images keep their precision (value / 257, so 65535 → 255).
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import sharp from 'sharp';
import { writeFileAtomic } from './files.js';
import { fromInterleaved, toRGB, type Image } from './image.js';

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

/** Decodes image bytes (any format libvips reads) into an RGB `Image`. `name` is used in error messages. */
export async function decodeImage(bytes: Uint8Array, name = '<buffer>'): Promise<Image> {
  try {
    // failOn 'error': truncated or corrupt data is an error; libjpeg's benign warnings are not.
    const input = sharp(bytes, { failOn: 'error', autoOrient: true });
    const meta = await input.metadata();
    const deep = meta.depth === 'ushort';
    const { data, info } = await input
      .toColourspace(deep ? 'rgb16' : 'srgb')
      .removeAlpha()
      .raw({ depth: deep ? 'ushort' : 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    const samples = deep ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return fromInterleaved(samples, info.width, info.height, 3, deep ? 1 / 257 : 1);
  } catch (e) {
    throw new ImageFileError(`cannot decode image '${name}': ${reason(e)}`, name);
  }
}

/** Reads and decodes an image file. Errors (missing file, not an image, truncated data) name the file. */
export async function readImage(path: string): Promise<Image> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new ImageFileError(`cannot read image '${path}': ${reason(e)}`, path);
  }
  return decodeImage(bytes, path);
}

export type ImageFormat = 'png' | 'jpeg';

export interface EncodeOptions {
  /** JPEG quality 1..100 (default 95). */
  quality?: number;
}

/** Encodes an image as 8-bit RGB PNG or JPEG (values rounded and clamped to 0..255). */
export async function encodeImage(img: Image, format: ImageFormat, opts: EncodeOptions = {}): Promise<Uint8Array> {
  const raw = sharp(toRGB(img), { raw: { width: img.width, height: img.height, channels: 3 } });
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
