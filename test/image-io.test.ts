// Image decoding/encoding (sharp), the planar RGB Image helpers, and the antialiased bilinear resize against a
// float64 reference written from PIL's definition.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  centerCrop,
  centerCropOffsets,
  createImage,
  crop,
  fromInterleaved,
  fromRGBA,
  imageToTensor,
  imagesFromNCHW,
  imagesToNCHW,
  roundHalfEven,
  tensorToImages,
  toRGB,
  toRGBA,
  type Image,
} from '../src/io/image.js';
import { ImageFileError, decodeImage, encodeImage, formatForPath, readImage, writeImage } from '../src/io/image-node.js';
import { bilinearCoeffs, resize, resizeAndCenterCrop, resizeShorterSide, shorterSideSize } from '../src/io/resize.js';
import { useGpu } from './helpers/gpu.js';
import { rng } from './helpers/rand.js';
import { SHARED_TAG } from './helpers/shared.js';

const CONTENT = '../shared/data/content';

// ---- a minimal PNG writer (independent of sharp), for exact decode checks -------------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, data: Uint8Array): Buffer {
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
/** PNG colour types: 0 grey, 2 RGB, 4 grey+alpha, 6 RGBA; depth 8 or 16; samples interleaved, big-endian for 16. */
function makePng(width: number, height: number, colourType: 0 | 2 | 4 | 6, depth: 8 | 16, samples: ArrayLike<number>): Buffer {
  const ch = { 0: 1, 2: 3, 4: 2, 6: 4 }[colourType];
  const bps = depth / 8;
  const stride = width * ch * bps;
  const raw = Buffer.alloc(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = 0; // filter: none
    for (let i = 0; i < width * ch; i++) {
      const v = samples[y * width * ch + i];
      const o = y * (stride + 1) + 1 + i * bps;
      if (depth === 8) raw[o] = v;
      else raw.writeUInt16BE(v, o);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = depth;
  ihdr[9] = colourType;
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

const px = (img: Image, x: number, y: number): number[] => {
  const hw = img.width * img.height;
  const i = y * img.width + x;
  return [img.data[i], img.data[hw + i], img.data[2 * hw + i]];
};

function randomSamples(n: number, seed: number, max = 255): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.floor(r() * (max + 1)));
}

// ---- decoding -------------------------------------------------------------------------------------------------

describe('decodeImage', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'perceptual-image-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('8-bit RGB, grey, grey+alpha and RGBA PNGs decode exactly (grey replicated, alpha dropped)', async () => {
    const W = 7;
    const H = 5;
    for (const [ct, ch] of [[2, 3], [0, 1], [4, 2], [6, 4]] as const) {
      const s = randomSamples(W * H * ch, 10 + ct);
      const img = await decodeImage(makePng(W, H, ct, 8, s), `ct${ct}.png`);
      expect([img.width, img.height]).toEqual([W, H]);
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const o = (y * W + x) * ch;
          const want = ch <= 2 ? [s[o], s[o], s[o]] : [s[o], s[o + 1], s[o + 2]];
          expect(px(img, x, y)).toEqual(want);
        }
      }
    }
  });

  it('16-bit RGB and grey PNGs keep their precision (value / 257)', async () => {
    const W = 4;
    const H = 3;
    for (const [ct, ch] of [[2, 3], [0, 1]] as const) {
      const s = randomSamples(W * H * ch, 20 + ct, 65535);
      s[0] = 65535;
      s[1] = 0;
      const img = await decodeImage(makePng(W, H, ct, 16, s), `deep${ct}.png`);
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const o = (y * W + x) * ch;
          const want = (ch === 1 ? [s[o], s[o], s[o]] : [s[o], s[o + 1], s[o + 2]]).map((v) => v / 257);
          px(img, x, y).forEach((v, c) => expect(v).toBeCloseTo(want[c], 3));
        }
      }
    }
  });

  it('PNG written by writeImage reads back exactly; JPEG closely; the extension picks the format', async () => {
    const W = 33;
    const H = 17;
    const r = rng(3);
    // a smooth image (JPEG-friendly) with integer values
    const img = createImage(W, H);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) img.data[c * W * H + y * W + x] = Math.round(20 + 50 * c + 2 * x + 3 * y + 4 * r());
    }
    const png = join(dir, 'a.png');
    const jpg = join(dir, 'a.JPG');
    await writeImage(png, img);
    await writeImage(jpg, img);
    const bytesPng = await readFile(png);
    const bytesJpg = await readFile(jpg);
    expect([...bytesPng.subarray(1, 4)]).toEqual([0x50, 0x4e, 0x47]); // "PNG"
    expect([bytesJpg[0], bytesJpg[1]]).toEqual([0xff, 0xd8]); // JPEG SOI
    expect((await readImage(png)).data).toEqual(img.data);
    const back = await readImage(jpg);
    let err = 0;
    for (let i = 0; i < img.data.length; i++) err += Math.abs(back.data[i] - img.data[i]);
    expect(err / img.data.length).toBeLessThan(2);
    expect(formatForPath('x.jpeg')).toBe('jpeg');
    await expect(writeImage(join(dir, 'a.bmp'), img)).rejects.toThrow(/a\.bmp.*unknown extension '\.bmp'/);
  });

  it('out-of-range values are clamped and rounded when encoding', async () => {
    const img = createImage(3, 1, new Float32Array([-20, 0.4, 300, 254.6, 127.5, 1e9, Number.NaN, 10, 20]));
    expect([...toRGB(img)]).toEqual([0, 255, 0, 0, 128, 10, 255, 255, 20]);
    const back = await decodeImage(await encodeImage(img, 'png'));
    expect([...back.data]).toEqual([0, 0, 255, 255, 128, 255, 0, 10, 20]);
  });

  it('applies the EXIF orientation (6: rotate 90° clockwise)', async () => {
    // 16x8 stored: quadrants TL red, TR blue, BL green, BR white
    const W = 16;
    const H = 8;
    const rgb = new Uint8Array(W * H * 3);
    const col = (x: number, y: number) => (y < H / 2 ? (x < W / 2 ? [255, 0, 0] : [0, 0, 255]) : x < W / 2 ? [0, 255, 0] : [255, 255, 255]);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) rgb.set(col(x, y), (y * W + x) * 3);
    const jpeg = await sharp(rgb, { raw: { width: W, height: H, channels: 3 } }).withMetadata({ orientation: 6 }).jpeg({ quality: 100 }).toBuffer();
    expect((await sharp(jpeg).metadata()).orientation).toBe(6);
    const img = await decodeImage(jpeg, 'rotated.jpg');
    expect([img.width, img.height]).toEqual([H, W]);
    // displayed: TL green, TR red, BR blue, BL white
    const near = (got: number[], want: number[]) => got.forEach((v, c) => expect(Math.abs(v - want[c])).toBeLessThan(40));
    near(px(img, 1, 1), [0, 255, 0]);
    near(px(img, H - 2, 1), [255, 0, 0]);
    near(px(img, H - 2, W - 2), [0, 0, 255]);
    near(px(img, 1, W - 2), [255, 255, 255]);
  });

  it('CMYK and greyscale JPEGs come out as RGB', async () => {
    const W = 8;
    const rgb = new Uint8Array(W * W * 3);
    for (let i = 0; i < W * W; i++) rgb.set(i < (W * W) / 2 ? [200, 40, 40] : [40, 60, 200], i * 3);
    const cmyk = await sharp(rgb, { raw: { width: W, height: W, channels: 3 } }).toColourspace('cmyk').jpeg({ quality: 100 }).toBuffer();
    expect((await sharp(cmyk).metadata()).space).toBe('cmyk');
    const img = await decodeImage(cmyk, 'cmyk.jpg');
    expect([img.width, img.height]).toEqual([W, W]);
    const top = px(img, 3, 1);
    const bottom = px(img, 3, W - 2);
    expect(top[0]).toBeGreaterThan(top[2] + 60); // reddish
    expect(bottom[2]).toBeGreaterThan(bottom[0] + 60); // bluish
    const grey = await sharp(rgb, { raw: { width: W, height: W, channels: 3 } }).toColourspace('b-w').jpeg().toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    const g = await decodeImage(grey);
    for (let i = 0; i < W * W; i++) expect(g.data[i]).toBe(g.data[W * W + i]);
  });

  it('a non-image, a truncated JPEG and a missing file give errors naming the file', async () => {
    const notImage = join(dir, 'notes.txt');
    await writeFile(notImage, 'this is not an image\n');
    await expect(readImage(notImage)).rejects.toThrow(new RegExp(`'${notImage.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}'.*not an image`));
    await expect(readImage(notImage)).rejects.toBeInstanceOf(ImageFileError);

    const rgb = new Uint8Array(64 * 64 * 3).map((_, i) => (i * 37) % 251);
    const full = await sharp(rgb, { raw: { width: 64, height: 64, channels: 3 } }).jpeg().toBuffer();
    const truncated = join(dir, 'truncated.jpg');
    await writeFile(truncated, full.subarray(0, Math.floor(full.length * 0.6)));
    await expect(readImage(truncated)).rejects.toThrow(/truncated\.jpg.*premature end.*truncated or corrupt/i);
    const png = await sharp(rgb, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
    const truncatedPng = join(dir, 'truncated.png');
    await writeFile(truncatedPng, png.subarray(0, Math.floor(png.length * 0.6)));
    await expect(readImage(truncatedPng)).rejects.toThrow(/'[^']*truncated\.png'.*truncated or corrupt/);

    await expect(readImage(join(dir, 'nope.png'))).rejects.toThrow(/nope\.png.*no such file/);
    await expect(decodeImage(new Uint8Array(0), 'empty')).rejects.toThrow(/'empty'/);
  });

  describe.skipIf(!existsSync(CONTENT))(`the content photos in ../shared/data/content ${SHARED_TAG}`, () => {
    // Sizes from ../shared/data/README.md.
    const SIZES: Record<string, [number, number]> = {
      'chicago.jpg': [712, 474],
      'hoovertowernight.jpg': [760, 400],
      'amber.jpg': [1080, 1080],
      'stata.jpg': [1024, 679],
      'tubingen.jpg': [1024, 768],
      'golden_gate.jpg': [979, 734],
      'cornell.jpg': [729, 512],
      'newyork.jpg': [1120, 704],
      'sailboat.jpg': [512, 512],
      'modern.jpg': [564, 564],
      'flowers.jpg': [640, 427],
    };
    it('decode at their documented sizes, in 0..255 and not flat', async () => {
      for (const [f, [w, h]] of Object.entries(SIZES)) {
        const img = await readImage(join(CONTENT, f));
        expect([f, img.width, img.height]).toEqual([f, w, h]);
        let lo = Infinity;
        let hi = -Infinity;
        for (const v of img.data) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
          if (!Number.isInteger(v)) throw new Error(`${f}: non-integer sample ${v}`);
        }
        expect(lo).toBeGreaterThanOrEqual(0);
        expect(hi).toBeLessThanOrEqual(255);
        expect(hi - lo).toBeGreaterThan(100);
      }
    });
  });
});

// ---- the Image helpers ----------------------------------------------------------------------------------------

describe('Image helpers', () => {
  const gpu = useGpu();

  it('RGBA bytes ↔ planar RGB', () => {
    const rgba = new Uint8ClampedArray([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const img = fromRGBA(rgba, 3, 1);
    expect([...img.data]).toEqual([1, 5, 9, 2, 6, 10, 3, 7, 11]);
    expect([...toRGBA(img)]).toEqual([1, 2, 3, 255, 5, 6, 7, 255, 9, 10, 11, 255]);
    expect(() => fromInterleaved([1, 2, 3], 2, 1, 3)).toThrow(/3 samples for 2x1 with 3 channels \(6 expected\)/);
  });

  it('crop copies the window, zero outside the image', () => {
    const img = createImage(4, 3, Float32Array.from({ length: 36 }, (_, i) => i));
    const c = crop(img, 1, 1, 2, 2);
    expect([...c.data]).toEqual([5, 6, 9, 10, 17, 18, 21, 22, 29, 30, 33, 34]);
    const p = crop(img, -1, 2, 3, 2);
    expect([...p.data.subarray(0, 6)]).toEqual([0, 8, 9, 0, 0, 0]);
  });

  it('centre-crop offsets follow torchvision: round((H - h) / 2) with Python rounding, zero padding when larger', () => {
    expect([roundHalfEven(0.5), roundHalfEven(1.5), roundHalfEven(2.5), roundHalfEven(15.5), roundHalfEven(16.5), roundHalfEven(-1.5)]).toEqual([0, 2, 2, 16, 16, -2]);
    expect(centerCropOffsets(384, 256, 224, 224)).toEqual({ left: 80, top: 16 });
    expect(centerCropOffsets(255, 225, 224, 224)).toEqual({ left: 16, top: 0 }); // 15.5 → 16, 0.5 → 0
    expect(centerCropOffsets(257, 227, 224, 224)).toEqual({ left: 16, top: 2 }); // 16.5 → 16, 1.5 → 2
    expect(centerCropOffsets(3, 3, 5, 4)).toEqual({ left: -1, top: 0 }); // pad (5-3)//2 = 1 left, (4-3)//2 = 0 top
    const img = createImage(5, 4, Float32Array.from({ length: 60 }, (_, i) => i));
    const c = centerCrop(img, 2, 3); // left round(1.5) = 2, top round(0.5) = 0
    expect([...c.data.subarray(0, 6)]).toEqual([2, 3, 7, 8, 12, 13]);
  });

  it('NCHW stacking and the GPU round trip', async () => {
    const a = createImage(3, 2, Float32Array.from({ length: 18 }, (_, i) => i));
    const b = createImage(3, 2, Float32Array.from({ length: 18 }, (_, i) => 100 + i));
    const { data, shape } = imagesToNCHW([a, b]);
    expect(shape).toEqual([2, 3, 2, 3]);
    expect(imagesFromNCHW(data, shape)[1].data).toEqual(b.data);
    expect(() => imagesToNCHW([a, createImage(2, 3)])).toThrow(/image 1 is 2x3, image 0 is 3x2/);
    const t = imageToTensor(gpu(), [a, b]);
    expect(t.shape).toEqual([2, 3, 2, 3]);
    const back = await tensorToImages(t);
    t.dispose();
    expect(back.map((i) => [...i.data])).toEqual([[...a.data], [...b.data]]);
  });
});

// ---- resize ---------------------------------------------------------------------------------------------------

/**
 * Reference: PIL's antialiased bilinear as a dense float64 matrix per axis. Output pixel i is centred at
 * (i + 0.5) * s in input coordinates (s = in / out); input pixel j at j + 0.5. The weight is the triangle
 * max(0, 1 - |d| / max(s, 1)) of their distance d; weights over the input pixels are normalised to sum to 1.
 */
function refMatrix(inSize: number, outSize: number): Float64Array[] {
  const s = inSize / outSize;
  const f = Math.max(s, 1);
  return Array.from({ length: outSize }, (_, i) => {
    const c = (i + 0.5) * s;
    const w = Float64Array.from({ length: inSize }, (_, j) => Math.max(0, 1 - Math.abs(j + 0.5 - c) / f));
    const sum = w.reduce((a, b) => a + b, 0);
    return w.map((v) => v / sum);
  });
}

function refResize(img: Image, W: number, H: number): Float64Array {
  const my = refMatrix(img.height, H);
  const mx = refMatrix(img.width, W);
  const out = new Float64Array(3 * W * H);
  const hw = img.width * img.height;
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        let acc = 0;
        for (let i = 0; i < img.height; i++) {
          if (my[y][i] === 0) continue;
          for (let j = 0; j < img.width; j++) acc += my[y][i] * mx[x][j] * img.data[c * hw + i * img.width + j];
        }
        out[c * W * H + y * W + x] = acc;
      }
    }
  }
  return out;
}

function randomImage(w: number, h: number, seed: number): Image {
  const r = rng(seed);
  return createImage(w, h, Float32Array.from({ length: 3 * w * h }, () => Math.round(255 * r())));
}

describe('resize (bilinear, antialiased)', () => {
  const cases: [number, number, number, number][] = [
    [13, 7, 5, 4], // down, non-integer factors
    [7, 13, 20, 31], // up
    [17, 11, 6, 11], // one axis unchanged
    [33, 29, 10, 7], // strong downscale (support > 3 pixels)
    [8, 8, 3, 3],
    [5, 9, 12, 4], // up in x, down in y
    [1, 1, 3, 2], // from a single pixel
    [64, 48, 32, 24], // exact factor 2
    [9, 6, 9, 6], // identity
  ];
  for (const [w, h, W, H] of cases) {
    it(`${w}x${h} → ${W}x${H} matches the float64 reference`, () => {
      const img = randomImage(w, h, w * 100 + h);
      const got = resize(img, W, H);
      const want = refResize(img, W, H);
      expect([got.width, got.height]).toEqual([W, H]);
      let num = 0;
      let den = 0;
      let max = 0;
      for (let i = 0; i < want.length; i++) {
        num += (got.data[i] - want[i]) ** 2;
        den += want[i] ** 2;
        max = Math.max(max, Math.abs(got.data[i] - want[i]));
      }
      expect(Math.sqrt(num / den)).toBeLessThan(1e-6);
      expect(max).toBeLessThan(1e-4);
    });
  }

  it('weights are PIL’s: 2x downscale averages 4 taps (1/8, 3/8, 3/8, 1/8); a constant stays constant', () => {
    const c = bilinearCoeffs(8, 4);
    expect([c.start[1], c.count[1]]).toEqual([1, 4]);
    [0.125, 0.375, 0.375, 0.125].forEach((v, k) => expect(c.weights[c.ksize + k]).toBeCloseTo(v, 12));
    const flat = createImage(23, 19, new Float32Array(3 * 23 * 19).fill(77));
    for (const v of resize(flat, 7, 30).data) expect(v).toBeCloseTo(77, 4);
  });

  it('shorter side to 256 (torchvision truncates the long side), then centre crop 224', () => {
    expect(shorterSideSize(712, 474, 256)).toEqual({ width: 384, height: 256 }); // 384.54 → 384
    expect(shorterSideSize(474, 712, 256)).toEqual({ width: 256, height: 384 });
    expect(shorterSideSize(640, 427, 256)).toEqual({ width: 383, height: 256 }); // 383.7 → 383
    expect(shorterSideSize(1080, 1080, 256)).toEqual({ width: 256, height: 256 });
    const img = randomImage(40, 27, 5);
    const r = resizeShorterSide(img, 16);
    expect([r.width, r.height]).toEqual([23, 16]); // 16 * 40 / 27 = 23.7
    const pre = resizeAndCenterCrop(img, 16, 12);
    expect([pre.width, pre.height]).toEqual([12, 12]);
    expect(pre.data).toEqual(crop(r, 6, 2, 12, 12).data); // left round(11/2 = 5.5) = 6, top round(2) = 2
    expect(() => resize(img, 0, 3)).toThrow(/invalid output size 0x3/);
  });
});
