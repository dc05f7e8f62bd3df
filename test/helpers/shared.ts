// What tests take from ../shared (real weight files, photos, benchmark images: not part of the project, so a user's
// clone lacks them) and what they make instead. A test that needs the real thing (a value against torchvision, a
// PSNR of the paper, a photo's class) sits in a suite named with SHARED_TAG and is skipped without it; the run's last
// line counts those (shared-reporter.ts). A test that only needs *a* loss network or *some* images makes them:
// random weights with the real shapes (the same code runs), generated pictures.
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeImage } from '../../src/io/image-node.js';
import { createImage, type Image } from '../../src/io/image.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import type { State } from '../reference/cnn.js';
import { rng } from './rand.js';
import { randomVgg } from './random-vgg.js';

/** ../shared beside the repository. */
export const SHARED = fileURLToPath(new URL('../../../shared/', import.meta.url));

/** In the name of every suite that is skipped without ../shared; the reporter counts by it. */
export const SHARED_TAG = '[needs ../shared]';

/** A path under ../shared. */
export const shared = (rel: string): string => join(SHARED, rel);

/** Whether ../shared has all these paths. */
export const haveShared = (...rel: string[]): boolean => rel.every((p) => existsSync(shared(p)));

/** A suite's name with the tag and what it needs. */
export const sharedSuite = (name: string, ...rel: string[]): string => `${name} ${SHARED_TAG.slice(0, -1)}: ${rel.join(', ')}]`;

/** SqueezeNet 1.1's Fire modules: [features index, in, squeeze, expand] (as src/nets/squeezenet.ts). */
const FIRES = [
  [3, 64, 16, 64], [4, 128, 16, 64], [6, 128, 32, 128], [7, 256, 32, 128],
  [9, 256, 48, 192], [10, 384, 48, 192], [11, 384, 64, 256], [12, 512, 64, 256],
] as const;

/** Random SqueezeNet 1.1 weights with torchvision's names and shapes (He-uniform, small biases). */
export function randomSqueezenet(seed: number): State {
  const r = rng(seed);
  const state: State = new Map();
  const conv = (name: string, cout: number, cin: number, k: number) => {
    const bound = Math.sqrt(6 / (cin * k * k));
    state.set(`${name}.weight`, { data: Float32Array.from({ length: cout * cin * k * k }, () => (2 * r() - 1) * bound), shape: [cout, cin, k, k] });
    state.set(`${name}.bias`, { data: Float32Array.from({ length: cout }, () => 0.1 * (2 * r() - 1)), shape: [cout] });
  };
  conv('features.0', 64, 3, 3);
  for (const [i, cin, s, e] of FIRES) {
    conv(`features.${i}.squeeze`, s, cin, 1);
    conv(`features.${i}.expand1x1`, e, s, 1);
    conv(`features.${i}.expand3x3`, e, s, 3);
  }
  return state;
}

/** A loss network's weight file with random weights and the real shapes, in a new temporary folder. */
export function randomWeightFile(net: 'squeezenet1_1' | 'vgg16' | 'vgg19', seed = 1, depth = 4): string {
  const path = join(mkdtempSync(join(tmpdir(), 'pw-weights-')), `${net}-random.safetensors`);
  const state = net === 'squeezenet1_1' ? randomSqueezenet(seed) : randomVgg(depth, seed, net);
  writeFileSync(path, writeSafetensors(state, { arch: net }));
  return path;
}

/** A smooth picture with some texture (like a photo, unlike noise), integer values. */
export function picture(w: number, h: number, seed: number): Image {
  const r = rng(seed);
  const f = Array.from({ length: 9 }, () => r());
  const data = new Float32Array(3 * w * h);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const v = 127.5 + 70 * Math.sin(x * (0.05 + 0.2 * f[c]) + y * 0.2 * f[c + 3] + 6 * f[c + 6]) + 40 * (r() - 0.5);
        data[(c * h + y) * w + x] = Math.round(Math.min(255, Math.max(0, v)));
      }
  return createImage(w, h, data);
}

/** `picture`s written as PNG files `name` in `dir`; returns their paths. */
export async function writePictures(dir: string, sizes: readonly (readonly [number, number])[], seed = 1, name = (i: number) => `img${i}.png`): Promise<string[]> {
  const paths: string[] = [];
  for (const [i, [w, h]] of sizes.entries()) {
    const p = join(dir, name(i));
    await writeImage(p, picture(w, h, seed + i));
    paths.push(p);
  }
  return paths;
}
