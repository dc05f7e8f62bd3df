// A tiny training run for the trainer's tests: two 3x3 convolutions (Tiny), 8x8 random crops of five generated PNGs
// of odd sizes, batch 2 (so epochs wrap inside batches), and a loss that draws on ctx.rng (so its state matters).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Tensor } from '../../src/autograd/tensor.js';
import type { Gpu } from '../../src/gpu/index.js';
import { writeImage } from '../../src/io/image-node.js';
import { createImage } from '../../src/io/image.js';
import { Conv2d } from '../../src/layers/conv.js';
import { add, mulScalar, relu } from '../../src/layers/elementwise.js';
import { mseLoss, totalVariation } from '../../src/layers/loss.js';
import { Module } from '../../src/layers/module.js';
import { Adam } from '../../src/train/adam.js';
import { ImageFolder } from '../../src/train/dataset.js';
import type { LossTerms, StepContext, TrainOptions } from '../../src/train/trainer.js';
import { rng } from './rand.js';

export class Tiny extends Module {
  readonly c1: Conv2d;
  readonly c2: Conv2d;
  constructor(g: Gpu, seed = 1, width = 4) {
    super(g);
    const r = rng(seed);
    this.c1 = this.child('c1', new Conv2d(g, 3, width, 3, { padding: 1, rand: r }));
    this.c2 = this.child('c2', new Conv2d(g, width, 3, 3, { padding: 1, rand: r }));
  }
  forward(x: Tensor): Tensor {
    return this.c2.forward(relu(this.c1.forward(x)));
  }
}

export const SIZE = 8;
export const TARGET = Float32Array.from({ length: 2 * 3 * SIZE * SIZE }, (_, i) => ((i * 7) % 11) / 11);

/** mse to a fixed target + a TV term whose weight is drawn from ctx.rng (so the RNG state matters). */
export function lossOf(model: Tiny, inject?: (step: number) => { term: string; value: number } | null) {
  return async (ctx: StepContext): Promise<LossTerms> => {
    const x = mulScalar(await ctx.batch(), 1 / 255);
    const y = model.forward(x);
    const bad = inject?.(ctx.step) ?? null;
    const target = bad?.term === 'mse' ? TARGET.map(() => bad.value) : TARGET;
    const mse = mseLoss(y, Tensor.from(model.gpu, target, y.shape));
    let tv = mulScalar(totalVariation(y), 1e-3 * (1 + ctx.rng.next()));
    if (bad?.term === 'tv') tv = mulScalar(mulScalar(tv, 3e38), 3e38);
    return { total: add(mse, tv), mse, tv };
  };
}

/** Five random RGB PNGs of odd sizes in `dir` (created). */
export async function writeTinyImages(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const sizes = [[8, 8], [12, 10], [9, 16], [20, 11], [10, 10]];
  for (const [i, [w, h]] of sizes.entries()) {
    const r = rng(200 + i);
    await writeImage(join(dir, `im${i}.png`), createImage(w, h, Float32Array.from({ length: 3 * w * h }, () => Math.floor(r() * 256))));
  }
}

/** A 15-step run of Tiny (Adam lr 0.01) on the images in `images`, into `outDir`; `extra` overrides the options. */
export async function tinySetup(gpu: Gpu, images: string, outDir: string, extra: Partial<TrainOptions> = {}, seed = 1) {
  const model = new Tiny(gpu, seed);
  const optimizer = new Adam(model.parameters(), { lr: 0.01 });
  const data = await ImageFolder.open(images, { size: SIZE, batchSize: 2, seed: 3, randomCrop: true, resizeTo: 11 });
  const opts: TrainOptions = { model, optimizer, data, outDir, steps: 15, seed: 11, loss: lossOf(model), config: { model: 'tiny', width: 4 }, ...extra };
  return { model, optimizer, data, opts };
}

/** The model's state as bit patterns. */
export async function weights(m: Module): Promise<Map<string, Uint32Array>> {
  const out = new Map<string, Uint32Array>();
  for (const [k, t] of m.stateDict()) out.set(k, new Uint32Array((await t.data()).buffer));
  return out;
}
