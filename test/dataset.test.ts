// ImageFolder: listing, decoding to size x size, seeded deterministic order, epochs, state round trips (with
// prefetch and random crops), skipped unreadable files, and the empty-folder error. Images are generated on the fly.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeImage } from '../src/io/image-node.js';
import { centerCrop, createImage } from '../src/io/image.js';
import { readImage } from '../src/io/image-node.js';
import { resizeShorterSide } from '../src/io/resize.js';
import { ImageFolder, listImages, type Batch } from '../src/train/dataset.js';
import { rng } from './helpers/rand.js';

let dir: string;
let good: string; // 5 RGB images of various sizes
let mixed: string; // grey, RGBA, odd sizes, upper-case extension, a broken file, a sub-folder

async function randomPng(path: string, w: number, h: number, seed: number): Promise<void> {
  const r = rng(seed);
  const data = new Float32Array(3 * w * h);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(r() * 256);
  await writeImage(path, createImage(w, h, data));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dataset-test-'));
  good = join(dir, 'good');
  mixed = join(dir, 'mixed');
  await mkdir(good);
  await mkdir(join(mixed, 'sub'), { recursive: true });
  const sizes = [[8, 8], [12, 10], [9, 16], [20, 11], [10, 10]];
  await Promise.all(sizes.map(([w, h], i) => randomPng(join(good, `img${i}.png`), w, h, 100 + i)));
  // Greyscale (1 channel) 10x14 of value 100; RGBA 9x9 (10, 20, 30, alpha 128); odd-size RGB JPEG with .JPG.
  await sharp(Buffer.alloc(10 * 14, 100), { raw: { width: 10, height: 14, channels: 1 } }).png().toFile(join(mixed, 'grey.png'));
  const rgba = Buffer.alloc(9 * 9 * 4);
  for (let i = 0; i < 81; i++) rgba.set([10, 20, 30, 128], 4 * i);
  await sharp(rgba, { raw: { width: 9, height: 9, channels: 4 } }).png().toFile(join(mixed, 'rgba.png'));
  await randomPng(join(mixed, 'odd.png'), 13, 9, 7);
  await sharp(Buffer.alloc(11 * 17 * 3, 200), { raw: { width: 11, height: 17, channels: 3 } }).jpeg().toFile(join(mixed, 'photo.JPG'));
  await writeFile(join(mixed, 'broken.png'), 'this is not a png');
  await writeFile(join(mixed, 'notes.txt'), 'ignored');
  await writeFile(join(mixed, '.hidden.png'), 'ignored');
  await randomPng(join(mixed, 'sub', 'deep.png'), 8, 8, 9);
  await mkdir(join(dir, 'empty'));
  await writeFile(join(dir, 'empty', 'readme.txt'), 'no images here');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function take(f: ImageFolder, n: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for (let i = 0; i < n; i++) out.push(await f.next());
  return out;
}

const names = (bs: Batch[]) => bs.flatMap((b) => b.files.map((f) => basename(f)));

describe('ImageFolder', () => {
  it('lists images sorted, any extension case, hidden files and other files skipped, sub-folders on request', async () => {
    expect((await listImages(mixed)).map((f) => basename(f))).toEqual(['broken.png', 'grey.png', 'odd.png', 'photo.JPG', 'rgba.png']);
    expect((await listImages(mixed, { recursive: true })).map((f) => f.slice(mixed.length + 1))).toEqual([
      'broken.png',
      'grey.png',
      'odd.png',
      'photo.JPG',
      'rgba.png',
      'sub/deep.png',
    ]);
  });

  it('a folder without images, or no folder, is a clear error', async () => {
    await expect(ImageFolder.open(join(dir, 'empty'), { size: 8, batchSize: 2 })).rejects.toThrow(/image folder '.*empty' has no images \(looked for \.jpg, \.jpeg, \.png/);
    await expect(ImageFolder.open(join(dir, 'nope'), { size: 8, batchSize: 2 })).rejects.toThrow(/image folder '.*nope': no such folder/);
    await expect(ImageFolder.open(join(good, 'img0.png'), { size: 8, batchSize: 2 })).rejects.toThrow(/is not a folder/);
  });

  it('greyscale, RGBA, JPEG and odd sizes all become [B,3,size,size]; the unreadable file is skipped with a warning', async () => {
    const warnings: [string, string][] = [];
    const f = await ImageFolder.open(mixed, { size: 8, batchSize: 1, shuffle: false, onWarning: (m, file) => warnings.push([m, file]) });
    const bs = await take(f, 4);
    expect(names(bs)).toEqual(['grey.png', 'odd.png', 'photo.JPG', 'rgba.png']);
    for (const b of bs) {
      expect(b.shape).toEqual([1, 3, 8, 8]);
      expect(b.data.length).toBe(3 * 64);
    }
    expect(warnings.length).toBe(1);
    expect(warnings[0][1]).toBe(join(mixed, 'broken.png'));
    expect(warnings[0][0]).toMatch(/skipping unreadable image '.*broken\.png'/);
    expect([...f.skipped.keys()]).toEqual([join(mixed, 'broken.png')]);
    // Grey replicated to RGB (a constant stays constant through the resize); RGBA loses its alpha.
    expect([...bs[0].data].every((v) => Math.abs(v - 100) < 1e-3)).toBe(true);
    const rgba = bs[3].data;
    expect([rgba[0], rgba[64], rgba[128]]).toEqual([10, 20, 30]);
    expect([...rgba].every((v, i) => Math.abs(v - [10, 20, 30][Math.floor(i / 64)]) < 1e-3)).toBe(true);
    // The odd-size image: shorter side to 8, then the centre 8x8 (computed independently here).
    const want = centerCrop(resizeShorterSide(await readImage(join(mixed, 'odd.png')), 8), 8);
    expect(bs[1].data).toEqual(want.data);
    // The next epoch: still 4 images, broken.png not retried (one warning only), batches stay full.
    const again = await take(f, 4);
    expect(names(again)).toEqual(['grey.png', 'odd.png', 'photo.JPG', 'rgba.png']);
    expect(warnings.length).toBe(1);
    f.close();
  });

  it('a skipped file is replaced by the next image, so batches are full; a batch runs into the next epoch', async () => {
    const f = await ImageFolder.open(mixed, { size: 8, batchSize: 3, shuffle: false, onWarning: () => {} });
    const bs = await take(f, 3);
    expect(bs.map((b) => b.shape[0])).toEqual([3, 3, 3]);
    expect(names(bs)).toEqual(['grey.png', 'odd.png', 'photo.JPG', 'rgba.png', 'grey.png', 'odd.png', 'photo.JPG', 'rgba.png', 'grey.png']);
    f.close();
  });

  it('the order is a seeded shuffle: the same per seed, different across seeds and epochs, every image once per epoch', async () => {
    const run = async (seed: number) => {
      const f = await ImageFolder.open(good, { size: 8, batchSize: 2, seed });
      const bs = await take(f, 10); // 20 images = 4 epochs of 5
      f.close();
      for (const b of bs) expect(b.shape).toEqual([2, 3, 8, 8]);
      return names(bs);
    };
    const a = await run(1);
    const b = await run(1);
    const c = await run(2);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    const epochs = [0, 1, 2, 3].map((e) => a.slice(5 * e, 5 * e + 5));
    for (const e of epochs) expect([...e].sort()).toEqual(['img0.png', 'img1.png', 'img2.png', 'img3.png', 'img4.png']);
    expect(new Set(epochs.map((e) => e.join())).size).toBeGreaterThan(1);
  });

  it('state round trip: a new folder object resumed from getState serves exactly the same batches (random crops, prefetch, cache)', async () => {
    const opts = { size: 8, batchSize: 2, seed: 5, randomCrop: true, resizeTo: 12 } as const;
    const ref = await ImageFolder.open(good, opts);
    const all = await take(ref, 9);
    ref.close();
    const a = await ImageFolder.open(good, { ...opts, cacheSize: 2 });
    const first = await take(a, 4);
    const state = JSON.parse(JSON.stringify(a.getState()));
    expect(state).toMatchObject({ seed: 5, epoch: 1, position: 3, count: 5 });
    a.close();
    const b = await ImageFolder.open(good, { ...opts, prefetch: false });
    b.setState(state);
    const rest = await take(b, 5);
    const got = [...first, ...rest];
    got.forEach((bt, i) => {
      expect(bt.files).toEqual(all[i].files);
      expect(bt.data).toEqual(all[i].data);
    });
    // Random crops really vary: the same image over the epochs is cropped in more than one place.
    const crops = new Set(all.flatMap((bt) => bt.files.map((f, k) => (basename(f) === 'img3.png' ? bt.data.slice(k * 192, k * 192 + 8).join() : null))).filter((x) => x));
    expect(crops.size).toBeGreaterThan(1);
    // Going back to an earlier state replays it.
    b.setState(state);
    expect((await b.next()).data).toEqual(all[4].data);
  });

  it('setState refuses a state of a different file list or seed', async () => {
    const a = await ImageFolder.open(good, { size: 8, batchSize: 2, seed: 1 });
    const s = a.getState();
    const other = await ImageFolder.open(mixed, { size: 8, batchSize: 2, seed: 1 });
    expect(() => other.setState(s)).toThrow(/the image list changed since the state was saved \(5 files/);
    const seeded = await ImageFolder.open(good, { size: 8, batchSize: 2, seed: 2 });
    expect(() => seeded.setState(s)).toThrow(/data seed 1/);
    expect(() => seeded.setState({ epoch: -1 })).toThrow(/not a data state/);
  });
});
