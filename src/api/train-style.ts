// Feed-forward style training (§3, "Style transfer"): a TransformerNet trained on a folder of content images
// with λc·l_feat + λs·Σ l_style + λTV·l_TV on a frozen loss network, Adam, checkpoints and exact resume.
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { keep, noGrad, tidy } from '../autograd/tensor.js';
import type { Gpu } from '../gpu/index.js';
import { imageToTensor, type Image } from '../io/image.js';
import { readImage, writeImage } from '../io/image-node.js';
import { writeFileAtomic } from '../io/files.js';
import { resizeShorterSide } from '../io/resize.js';
import { defaultCacheDir } from '../io/fetch.js';
import { loadLossNetwork } from '../nets/loss-network-node.js';
import { saveTransformerNet } from '../nets/model-file.js';
import { TransformerNet, type TransformerNorm, type TransformerVariant } from '../nets/transformer-net.js';
import { Adam } from '../train/adam.js';
import { ImageFolder } from '../train/dataset.js';
import { StyleTransferLoss, type LayerWeights } from '../train/perceptual-loss.js';
import { Rng } from '../train/rng.js';
import type { TrainingRunOptions } from './training.js';
import { train, type TrainResult } from '../train/trainer.js';
import { stylizeImage } from './stylize.js';

export interface TrainStyleOptions extends TrainingRunOptions {
  /** The style image (path or decoded). */
  style: string | Image;
  arch?: TransformerVariant;
  norm?: TransformerNorm;
  width?: number;
  contentWeight?: number;
  styleWeight?: number;
  contentLayers?: LayerWeights;
  styleLayers?: LayerWeights;
  lossNet?: 'vgg16' | 'squeezenet1_1';
  /** Shorter side of the style image when computing its Gram matrices (default: `size`). */
  styleSize?: number;
}

export interface TrainStyleResult extends TrainResult {
  /** The trained model (safetensors with its architecture and training command in the metadata). */
  model: string;
}

export async function trainStyle(gpu: Gpu, o: TrainStyleOptions): Promise<TrainStyleResult> {
  const size = o.size ?? 256;
  const arch = o.arch ?? 'paper';
  const norm = o.norm ?? 'instance';
  const width = o.width ?? 32;
  const lossNetName = o.lossNet ?? 'vgg16';
  const seed = o.seed ?? 0;
  const lossWeights = o.lossWeights ?? join(defaultCacheDir(), `${lossNetName}.safetensors`);
  await mkdir(o.outDir, { recursive: true });

  const styleImg = typeof o.style === 'string' ? await readImage(o.style) : o.style;
  const net = await loadLossNetwork(gpu, lossNetName, lossWeights).catch((e: Error) => {
    throw new Error(
      `trainStyle: cannot load the ${lossNetName} loss network from ${lossWeights}: ${e.message}` +
        (o.lossWeights ? '' : ` (run 'perceptual weights fetch ${lossNetName}' or pass lossWeights)`),
    );
  });
  const model = new TransformerNet(gpu, { variant: arch, norm, width, rand: (() => { const r = new Rng(seed); return () => r.next(); })() });
  const optimizer = new Adam(model.parameters(), { lr: o.lr ?? 1e-3 });
  const styleTensor = tidy(() => keep(imageToTensor(gpu, resizeShorterSide(styleImg, o.styleSize ?? size))));
  const loss = new StyleTransferLoss(net, styleTensor, {
    contentLayers: o.contentLayers,
    styleLayers: o.styleLayers,
    contentWeight: o.contentWeight,
    styleWeight: o.styleWeight,
    tvWeight: o.tvWeight,
  });
  styleTensor.dispose();
  const data = await ImageFolder.open(o.data, {
    size,
    batchSize: o.batchSize ?? 4,
    seed,
    onWarning: (m) => o.onLog?.(m),
  });
  const samples = await Promise.all((o.sampleImages ?? []).map(async (f) => ({ name: basename(f).replace(/\.[^.]+$/, ''), img: resizeShorterSide(await readImage(f), size) })));
  const config = {
    kind: 'style',
    arch,
    norm,
    width,
    size,
    batchSize: o.batchSize ?? 4,
    lr: o.lr ?? 1e-3,
    lossNet: lossNetName,
    contentLayers: loss.contentLayers,
    styleLayers: loss.styleLayers,
    contentWeight: loss.contentWeight,
    styleWeight: loss.styleWeight,
    tvWeight: loss.tvWeight,
    style: typeof o.style === 'string' ? basename(o.style) : 'image',
    styleSize: o.styleSize ?? size,
    seed,
  };
  try {
    const result = await train({
      model,
      optimizer,
      steps: o.steps ?? 40000,
      outDir: o.outDir,
      data,
      seed,
      resume: o.resume,
      overwrite: o.overwrite,
      checkpointEvery: o.checkpointEvery ?? 500,
      sampleEvery: samples.length ? o.sampleEvery ?? 500 : undefined,
      config,
      mustMatch: { kind: 'style', arch, norm, width },
      signal: o.signal,
      onProgress: o.onProgress,
      onLog: o.onLog,
      loss: async (ctx) => {
        const x = await ctx.batch();
        const terms = loss.compute(model.forward(x), x);
        return { total: terms.total, content: terms.content, style: terms.style, tv: terms.tv };
      },
      onSample: async (step) => {
        await mkdir(join(o.outDir, 'samples'), { recursive: true });
        model.eval();
        for (const s of samples) await writeImage(join(o.outDir, 'samples', `${s.name}-step${step}.png`), await noGrad(() => stylizeImage(gpu, model, s.img)));
      },
    });
    const modelPath = join(o.outDir, 'model.safetensors');
    model.eval();
    await writeFileAtomic(modelPath, await saveTransformerNet(model, { training: JSON.stringify({ ...config, steps: result.step }) }));
    return { ...result, model: modelPath };
  } finally {
    data.close?.();
    loss.dispose();
    net.dispose();
    optimizer.dispose();
    model.dispose();
  }
}
