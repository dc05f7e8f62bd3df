// A folder of training images, served as fixed-size batches [B,3,size,size] (RGB, 0..255, ready for Tensor.from).
//
// Order and randomness are functions of (seed, epoch, position) only: the epoch's permutation is a shuffle drawn
// from Rng.derive(seed, 'order', epoch), the crop of the image at permutation position p of epoch e from
// Rng.derive(seed, 'crop', e, p). So the whole data state is the cursor {epoch, position} of the next batch,
// prefetching ahead changes nothing, and a run resumed from getState() sees exactly the batches an uninterrupted
// run would. Batches run across epoch boundaries (an epoch of 5 images with batch 2: [a b] [c d] [e a'] ...).
//
// Unreadable files are skipped (the next image of the permutation takes their place) and reported through
// `onWarning`; they stay skipped for the rest of the run. A folder without images is an error.
import { readdir, stat } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import { readImage } from '../io/image-node.js';
import { centerCrop, crop, type Image } from '../io/image.js';
import { resizeShorterSide } from '../io/resize.js';
import { Rng } from './rng.js';

/** What a training loop needs from a data source: batches, and a JSON-serialisable position to checkpoint. */
export interface DataSource {
  next(): Promise<BatchData>;
  getState(): unknown;
  setState(state: unknown): void;
  /** Stops background work (called by the trainer when it ends). */
  close?(): void;
}

export interface BatchData {
  /** NCHW float32, values 0..255. */
  data: Float32Array;
  shape: [number, number, number, number];
}

export interface Batch extends BatchData {
  /** The files of the batch, in order. */
  files: string[];
}

export interface ImageFolderState {
  seed: number;
  /** The cursor of the next batch: epoch, and position in that epoch's permutation. */
  epoch: number;
  position: number;
  /** The number of files and a hash of their names, to detect a changed folder on resume. */
  count: number;
  hash: string;
}

export interface ImageFolderOptions {
  /** Output side: every image becomes size x size. */
  size: number;
  batchSize: number;
  /** Seed of the order and the crops (default 0). */
  seed?: number;
  /** Shuffle each epoch (default true); false serves the files in sorted order. */
  shuffle?: boolean;
  /** Random crops instead of centre crops (default false). */
  randomCrop?: boolean;
  /**
   * The shorter side is resized to this before cropping (default `size`: the crop spans the whole shorter side).
   * 'none' keeps the native resolution (patches; images whose shorter side is below `size` are resized up to it).
   */
  resizeTo?: number | 'none';
  /** Look in sub-folders too (default false). */
  recursive?: boolean;
  /** File extensions, lower case with the dot (default .jpg, .jpeg, .png; matched in any case). */
  extensions?: readonly string[];
  /** Decoded and resized images kept in memory, least recently used evicted first (default 0: none). */
  cacheSize?: number;
  /** Decode the next batch while the current one is in use (default true). */
  prefetch?: boolean;
  /** Told about every skipped file (e.g. the CLI prints it); the message names the file. */
  onWarning?: (message: string, file: string) => void;
}

const DEFAULT_EXTENSIONS = ['.jpg', '.jpeg', '.png'];

/** Compares by UTF-16 code units: a locale-independent, platform-independent order. */
const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** FNV-1a over the names (a fingerprint of the list, not a security hash). */
function hashNames(names: readonly string[]): string {
  let h = 0x811c9dc5;
  for (const n of names) {
    for (let i = 0; i < n.length; i++) h = Math.imul(h ^ n.charCodeAt(i), 0x01000193);
    h = Math.imul(h ^ 0x0a, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** The image files of `dir`, sorted by path (hidden files skipped). Throws when `dir` is not a readable folder. */
export async function listImages(dir: string, opts: { recursive?: boolean; extensions?: readonly string[] } = {}): Promise<string[]> {
  const exts = new Set((opts.extensions ?? DEFAULT_EXTENSIONS).map((e) => e.toLowerCase()));
  let isDir: boolean;
  try {
    isDir = (await stat(dir)).isDirectory();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(`image folder '${dir}': ${err.code === 'ENOENT' ? 'no such folder' : err.message}`);
  }
  if (!isDir) throw new Error(`image folder '${dir}' is not a folder`);
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const ent of await readdir(d, { withFileTypes: true })) {
      if (ent.name.startsWith('.')) continue;
      const p = join(d, ent.name);
      if (ent.isDirectory()) {
        if (opts.recursive) await walk(p);
      } else if (exts.has(extname(ent.name).toLowerCase())) out.push(p);
    }
  };
  await walk(dir);
  // Sort by the path relative to dir with '/' separators, so the order is the same on every platform.
  const key = (p: string) => relative(dir, p).split(sep).join('/');
  return out.sort((a, b) => byCodeUnit(key(a), key(b)));
}

interface Prefetched {
  epoch: number;
  position: number;
  result: Promise<{ batch: Batch; epoch: number; position: number }>;
}

export class ImageFolder implements DataSource {
  readonly size: number;
  readonly batchSize: number;
  readonly seed: number;
  /** Files that could not be read, with the reason (they are skipped). */
  readonly skipped = new Map<string, string>();
  private readonly opts: ImageFolderOptions;
  private readonly hash: string;
  private epoch = 0;
  private position = 0;
  private perms = new Map<number, Uint32Array>();
  private cache = new Map<number, Image>();
  private ahead: Prefetched | null = null;

  /** Use `ImageFolder.open(dir, opts)` for a folder; this takes an explicit, already ordered file list. */
  constructor(
    readonly files: readonly string[],
    opts: ImageFolderOptions,
  ) {
    if (files.length === 0) throw new Error('ImageFolder: no image files');
    if (!Number.isInteger(opts.size) || opts.size < 1) throw new Error(`ImageFolder: invalid size ${opts.size}`);
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new Error(`ImageFolder: invalid batch size ${opts.batchSize}`);
    const seed = opts.seed ?? 0;
    if (!Number.isSafeInteger(seed)) throw new Error(`ImageFolder: seed must be an integer, got ${seed}`);
    const r = opts.resizeTo;
    if (r !== undefined && r !== 'none' && (!Number.isInteger(r) || r < opts.size)) {
      throw new Error(`ImageFolder: resizeTo ${r} must be an integer >= size ${opts.size}, or 'none'`);
    }
    this.opts = opts;
    this.size = opts.size;
    this.batchSize = opts.batchSize;
    this.seed = seed;
    this.hash = hashNames(files);
  }

  /** The images of `dir` (see listImages); a folder without any is an error naming the folder and the extensions. */
  static async open(dir: string, opts: ImageFolderOptions): Promise<ImageFolder> {
    const files = await listImages(dir, opts);
    if (files.length === 0) {
      const exts = (opts.extensions ?? DEFAULT_EXTENSIONS).join(', ');
      throw new Error(`image folder '${dir}' has no images (looked for ${exts}${opts.recursive ? ' in it and its sub-folders' : '; sub-folders are not searched'})`);
    }
    return new ImageFolder(files, opts);
  }

  get length(): number {
    return this.files.length;
  }

  /** Batches per epoch (rounded up; batches continue into the next epoch). */
  get batchesPerEpoch(): number {
    return Math.ceil(this.files.length / this.batchSize);
  }

  /** The file order of an epoch (indices into `files`). */
  permutation(epoch: number): Uint32Array {
    let p = this.perms.get(epoch);
    if (!p) {
      const idx = Array.from({ length: this.files.length }, (_, i) => i);
      if (this.opts.shuffle ?? true) Rng.derive(this.seed, 'order', epoch).shuffle(idx);
      p = Uint32Array.from(idx);
      this.perms.set(epoch, p);
      // Only the current and the next epoch are ever needed.
      for (const k of this.perms.keys()) if (k < epoch - 1) this.perms.delete(k);
    }
    return p;
  }

  getState(): ImageFolderState {
    return { seed: this.seed, epoch: this.epoch, position: this.position, count: this.files.length, hash: this.hash };
  }

  /** Moves to a state from getState (of a folder with the same files and seed); a prefetched batch is dropped. */
  setState(state: unknown): void {
    const s = state as Partial<ImageFolderState> | null;
    const ok = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
    if (!s || typeof s !== 'object' || !ok(s.epoch) || !ok(s.position) || !ok(s.count) || typeof s.hash !== 'string' || !Number.isSafeInteger(s.seed)) {
      throw new Error(`ImageFolder.setState: not a data state: ${JSON.stringify(state)}`);
    }
    if (s.count !== this.files.length || s.hash !== this.hash) {
      throw new Error(
        `ImageFolder.setState: the image list changed since the state was saved (${s.count} files, fingerprint ${s.hash}; now ${this.files.length} files, ${this.hash}); ` +
          'the run cannot continue with the same data order',
      );
    }
    if (s.seed !== this.seed) throw new Error(`ImageFolder.setState: the state was saved with data seed ${s.seed}, this folder uses seed ${this.seed}`);
    if (s.position! > this.files.length) throw new Error(`ImageFolder.setState: position ${s.position} is beyond the ${this.files.length} files`);
    this.drop();
    this.epoch = s.epoch!;
    this.position = s.position!;
  }

  /** The next batch; the one after it starts decoding in the background (unless prefetch is off). */
  async next(): Promise<Batch> {
    const a = this.ahead;
    const pending = a && a.epoch === this.epoch && a.position === this.position ? a.result : this.load(this.epoch, this.position);
    this.ahead = null;
    const r = await pending;
    this.epoch = r.epoch;
    this.position = r.position;
    if (this.opts.prefetch ?? true) {
      const result = this.load(r.epoch, r.position);
      result.catch(() => {}); // reported when (if) it is awaited
      this.ahead = { epoch: r.epoch, position: r.position, result };
    }
    return r.batch;
  }

  /** Drops the prefetched batch (call when done; a pending decode finishes in the background and is discarded). */
  close(): void {
    this.drop();
  }

  private drop(): void {
    this.ahead = null;
  }

  /** The batch starting at the cursor and the cursor after it. */
  private async load(epoch0: number, position0: number): Promise<{ batch: Batch; epoch: number; position: number }> {
    let epoch = epoch0;
    let position = position0;
    const images: Image[] = [];
    const files: string[] = [];
    const n = this.files.length;
    while (images.length < this.batchSize) {
      if (this.skipped.size >= n) throw new Error(`ImageFolder: none of the ${n} images could be read (first: ${[...this.skipped.values()][0]})`);
      // The next candidates, decoded concurrently; failures are replaced by the following ones, in order.
      const slots: { epoch: number; position: number; index: number }[] = [];
      while (slots.length < this.batchSize - images.length) {
        if (position >= n) {
          epoch++;
          position = 0;
        }
        const index = this.permutation(epoch)[position];
        if (!this.skipped.has(this.files[index])) slots.push({ epoch, position, index });
        position++;
      }
      const got = await Promise.all(slots.map((s) => this.image(s.index, s.epoch, s.position).catch((e: unknown) => e as Error)));
      got.forEach((g, k) => {
        const file = this.files[slots[k].index];
        if (g instanceof Error) {
          if (!this.skipped.has(file)) {
            this.skipped.set(file, g.message);
            this.opts.onWarning?.(`skipping unreadable image '${file}': ${g.message}`, file);
          }
        } else {
          images.push(g);
          files.push(file);
        }
      });
    }
    const S = this.size;
    const per = 3 * S * S;
    const data = new Float32Array(images.length * per);
    images.forEach((im, i) => data.set(im.data, i * per));
    return { batch: { data, shape: [images.length, 3, S, S], files }, epoch, position };
  }

  /** File `index` decoded and resized (cached), then cropped to size x size with the crop of (epoch, position). */
  private async image(index: number, epoch: number, position: number): Promise<Image> {
    let img = this.cache.get(index);
    if (img) {
      this.cache.delete(index); // re-insert: most recently used last
      this.cache.set(index, img);
    } else {
      const raw = await readImage(this.files[index]);
      if (raw.width < 1 || raw.height < 1) throw new Error(`image is empty (${raw.width}x${raw.height})`);
      img = this.resized(raw);
      const cap = this.opts.cacheSize ?? 0;
      if (cap > 0) {
        this.cache.set(index, img);
        while (this.cache.size > cap) this.cache.delete(this.cache.keys().next().value!);
      }
    }
    const S = this.size;
    if (!this.opts.randomCrop) return centerCrop(img, S);
    const r = Rng.derive(this.seed, 'crop', epoch, position);
    return crop(img, r.int(img.width - S + 1), r.int(img.height - S + 1), S, S);
  }

  private resized(img: Image): Image {
    const to = this.opts.resizeTo ?? this.size;
    const short = Math.min(img.width, img.height);
    if (to === 'none') return short < this.size ? resizeShorterSide(img, this.size) : img;
    return short === to ? img : resizeShorterSide(img, to);
  }
}
