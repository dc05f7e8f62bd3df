// Super-resolution training (§4, "Single-Image Super-Resolution"): an SRNet (×4 or ×8, batch norm) trained on
// random size×size patches of a folder of images, with l_feat at relu2_2 of a frozen VGG-16 (or the per-pixel
// baseline l_pixel) plus λTV·l_TV, Adam, checkpoints and exact resume (the generic trainer).
//
// Data, per step: `batchSize` random size×size crops at the images' native resolution (an image whose shorter side
// is below `size` is first resized, bilinearly, so that its shorter side equals `size`); the crop is the HR target.
// The LR input is made on the GPU (makeLowRes): Gaussian blur σ = 1.0 (radius 3, edge-replicated borders), then
// MATLAB bicubic imresize by 1/scale with antialiasing, rounded and clipped to 0..255 after each pass as MATLAB does
// for uint8 images, so the network sees the integer values a real LR image file would hold.
//
// TV weight: totalVariation is the SUM of squared neighbour differences over the batch (0..255 scale), while
// l_pixel and l_feat are means, so λTV's effect grows with batch·size²; the default depends on the loss:
//   pixel 1e-8: in the paper's setting (batch 4, 288² patches) λTV·N·C·H·W ≈ 0.01, i.e. a squared neighbour
//               difference weighs 1% of a squared pixel error: a mild regulariser (1e-6 would weigh them equally);
//   feat  1e-6: Johnson's usual value, for a Caffe-scale VGG-16 (BGR 0..255 minus the mean, as
//               ../shared/weights/vgg16_partial_relu2_2.safetensors), where l_feat at relu2_2 is ~1e5..6e5 for a
//               bicubic ×4 output and λTV·TV ≈ 1% of it. With torchvision-normalised weights (rgb01_imagenet_norm)
//               l_feat is ~(255·0.226)² ≈ 3300× smaller: scale tvWeight down accordingly.
// (Measured on 96² crops of shared/data/content images, ×4: l_pixel 260..3000, HR squared TV per element 500..7000.)
import { mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { noGrad, Tensor } from '../autograd/tensor.js';
import type { Gpu } from '../gpu/index.js';
import { imresize } from '../io/bicubic.js';
import { writeFileAtomic } from '../io/files.js';
import { imageToTensor, type Image } from '../io/image.js';
import { readImage, writeImage } from '../io/image-node.js';
import { add, mulScalar } from '../layers/elementwise.js';
import { mseLoss, totalVariation } from '../layers/loss.js';
import { bicubicResize2d, gaussianBlur2d } from '../layers/resize.js';
import type { LossNetworkName } from '../nets/loss-network.js';
import { SR_NORMS, SR_SCALES, SRNet, saveSRNet, upscaleImage, type SRNorm, type SRScale, type SRUpsample } from '../nets/sr-net.js';
import { cropToMultiple, toUint8Values } from '../eval/sr-eval.js';
import { Adam } from '../train/adam.js';
import { ImageFolder } from '../train/dataset.js';
import { featureLoss, targetFeatures } from '../train/perceptual-loss.js';
import { Rng } from '../train/rng.js';
import { openLossNetwork, type TrainingRunOptions } from './training.js';
import { train, type LossTerms, type TrainResult } from '../train/trainer.js';

export type SRLoss = 'feat' | 'pixel';
export const SR_LOSSES: readonly SRLoss[] = ['feat', 'pixel'];
/** σ of the Gaussian blur applied before bicubic downsampling (the paper's 1.0). */
export const LOW_RES_BLUR_SIGMA = 1;
/** Default λTV per loss (see the file header). */
export const SR_DEFAULT_TV_WEIGHT: Readonly<Record<SRLoss, number>> = { feat: 1e-6, pixel: 1e-8 };

/** `size` is the HR patch side, a multiple of `scale` (default 288; the LR input is size/scale); `tvWeight`
 *  defaults to 1e-6 for feat and 1e-8 for pixel (see the file header); `lossWeights` only matters for 'feat'. */
export interface TrainSROptions extends TrainingRunOptions {
  scale: SRScale;
  /** l_feat (feature reconstruction at `featLayer` of the loss network) or l_pixel (the baseline). */
  loss: SRLoss;
  /** Hidden channels (default 64, the paper's). */
  width?: number;
  /** Residual blocks (default 4, the paper's). */
  blocks?: number;
  /** Normalisation (default batch, the paper's). */
  norm?: SRNorm;
  /** Beyond the paper: predict a correction to the bicubic upscaling (VDSR's global skip); starts at bicubic. */
  residual?: boolean;
  /** Upsampling: the paper's transposed convs, or a pixel shuffle after a conv at the low resolution. */
  upsample?: SRUpsample;
  /** Learning rate over the run: constant (the paper's) or cosine decay from `lr` to 0 at `steps`. */
  lrSchedule?: 'constant' | 'cosine';
  /** The loss network's layer for l_feat (default relu2_2). */
  featLayer?: string;
  lossNet?: LossNetworkName;
}

export interface TrainSRResult extends TrainResult {
  /** The trained model (safetensors, arch sr-net, with the training configuration in the metadata). */
  model: string;
}

/**
 * The LR input of the training pipeline for HR images (RGB 0..255, [N,3,H,W] with H, W multiples of `scale`, or one
 * Image): Gaussian blur σ = 1, then MATLAB bicubic ×1/scale with antialiasing, in uint8 (rounded and clipped after
 * each pass). A constant (no gradient), [N,3,H/scale,W/scale], in the caller's tidy scope.
 */
export function makeLowRes(gpu: Gpu, hr: Tensor | Image, scale: number): Tensor {
  return noGrad(() => {
    const x = hr instanceof Tensor ? hr : imageToTensor(gpu, hr);
    const [, , H, W] = x.shape;
    if (!(Number.isInteger(scale) && scale >= 1) || H % scale !== 0 || W % scale !== 0) {
      throw new Error(`makeLowRes: the HR size ${W}x${H} must be a multiple of the scale ${scale}`);
    }
    const blurred = gaussianBlur2d(x, LOW_RES_BLUR_SIGMA);
    if (x !== hr) x.dispose();
    const lr = bicubicResize2d(blurred, { scale: 1 / scale }, { antialias: true, uint8: true });
    blurred.dispose();
    return lr;
  });
}

const positiveInt = (v: number, what: string) => {
  if (!(Number.isInteger(v) && v >= 1)) throw new Error(`trainSR: ${what} must be a positive integer, got ${v}`);
  return v;
};

export async function trainSR(gpu: Gpu, o: TrainSROptions): Promise<TrainSRResult> {
  const scale = o.scale;
  if (!SR_SCALES.includes(scale)) throw new Error(`trainSR: scale must be ${SR_SCALES.join(' or ')}, got ${String(scale)}`);
  if (!SR_LOSSES.includes(o.loss)) throw new Error(`trainSR: loss must be ${SR_LOSSES.join(' or ')}, got ${String(o.loss)}`);
  const norm = o.norm ?? 'batch';
  if (!SR_NORMS.includes(norm)) throw new Error(`trainSR: norm must be ${SR_NORMS.join(' or ')}, got ${String(norm)}`);
  const width = positiveInt(o.width ?? 64, 'width');
  const blocks = o.blocks ?? 4;
  const size = positiveInt(o.size ?? 288, 'size');
  if (size % scale !== 0) throw new Error(`trainSR: the patch size ${size} must be a multiple of the scale ${scale}`);
  const batchSize = positiveInt(o.batchSize ?? 4, 'batchSize');
  const lr = o.lr ?? 1e-3;
  const tvWeight = o.tvWeight ?? SR_DEFAULT_TV_WEIGHT[o.loss];
  if (!(Number.isFinite(tvWeight) && tvWeight >= 0)) throw new Error(`trainSR: tvWeight must be a non-negative number, got ${tvWeight}`);
  const featLayer = o.featLayer ?? 'relu2_2';
  const lossNetName = o.lossNet ?? 'vgg16';
  const seed = o.seed ?? 0;
  await mkdir(o.outDir, { recursive: true });

  const net = o.loss === 'feat' ? await openLossNetwork(gpu, 'trainSR', lossNetName, o.lossWeights, [featLayer]) : null;
  const samples: { name: string; lr: Image }[] = [];
  let data: ImageFolder | null = null;
  let model: SRNet | null = null;
  let optimizer: Adam | null = null;
  try {
    for (const f of o.sampleImages ?? []) {
      const hr = cropToMultiple(await readImage(f), scale);
      if (hr.width < 1 || hr.height < 1) throw new Error(`trainSR: sample image ${f} is smaller than ${scale}x${scale}`);
      samples.push({ name: basename(f).replace(/\.[^.]+$/, ''), lr: imresize(hr, { scale: 1 / scale }, { uint8: true }) });
    }
    data = await ImageFolder.open(o.data, { size, batchSize, seed, randomCrop: true, resizeTo: 'none', onWarning: (m) => o.onLog?.(m) });
    const r = new Rng(seed);
    const residual = o.residual ?? false;
    const schedule = o.lrSchedule ?? 'constant';
    const steps = o.steps ?? 200000;
    if (schedule !== 'constant' && schedule !== 'cosine') throw new Error(`trainSR: lrSchedule must be constant or cosine, got ${String(schedule)}`);
    const upsample = o.upsample ?? 'transposed';
    const m = (model = new SRNet(gpu, { scale, width, blocks, norm, residual, upsample, rand: () => r.next() }));
    optimizer = new Adam(m.parameters(), { lr });
    const config = { kind: 'sr', scale, loss: o.loss, width, blocks, norm, residual, upsample, size, batchSize, lr, lrSchedule: schedule, tvWeight, seed, ...(net ? { lossNet: lossNetName, featLayer } : {}) };
    const lossNet = net;
    const result = await train({
      model: m,
      optimizer,
      steps,
      outDir: o.outDir,
      data,
      seed,
      resume: o.resume,
      overwrite: o.overwrite,
      checkpointEvery: o.checkpointEvery ?? 500,
      sampleEvery: samples.length ? (o.sampleEvery ?? 500) : undefined,
      config,
      mustMatch: { kind: 'sr', scale, loss: o.loss, width, blocks, norm, residual, upsample },
      lrAt: schedule === 'cosine' ? (step) => 0.5 * lr * (1 + Math.cos((Math.PI * (step - 1)) / steps)) : undefined,
      signal: o.signal,
      onProgress: o.onProgress,
      onLog: o.onLog,
      loss: async (ctx): Promise<LossTerms> => {
        const hr = await ctx.batch();
        const sr = m.forward(makeLowRes(gpu, hr, scale));
        const tv = totalVariation(sr);
        if (lossNet) {
          const feat = featureLoss(lossNet, sr, targetFeatures(lossNet, hr, [featLayer]), [featLayer]);
          return { total: add(feat, mulScalar(tv, tvWeight)), feat, tv };
        }
        const pixel = mseLoss(sr, hr);
        return { total: add(pixel, mulScalar(tv, tvWeight)), pixel, tv };
      },
      onSample: async (step) => {
        const dir = join(o.outDir, 'samples');
        await mkdir(dir, { recursive: true });
        m.eval();
        for (const s of samples) {
          const lrPath = join(dir, `${s.name}-lr.png`);
          if (!existsSync(lrPath)) await writeImage(lrPath, s.lr);
          await writeImage(join(dir, `${s.name}-step${step}.png`), toUint8Values(await upscaleImage(m, s.lr)));
        }
      },
    });
    const modelPath = join(o.outDir, 'model.safetensors');
    m.eval();
    await writeFileAtomic(modelPath, await saveSRNet(m, { training: JSON.stringify({ ...config, steps: result.step }) }));
    return { ...result, model: modelPath };
  } finally {
    data?.close();
    net?.dispose();
    optimizer?.dispose();
    model?.dispose();
  }
}
