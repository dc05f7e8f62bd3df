// Feed-forward style training (§3, "Style transfer"): a TransformerNet trained on a folder of content images
// with λc·l_feat + λs·Σ l_style + λTV·l_TV on a frozen loss network, Adam, checkpoints and exact resume.
// Several style images train one multi-style network (conditional instance norm, Dumoulin et al. 2017): step s
// trains style (s − 1) mod S, so every style gets the same number of steps and a resumed run continues the cycle.
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { keep, noGrad, Tensor, tidy } from '../autograd/tensor.js';
import type { Gpu } from '../gpu/index.js';
import { imageToTensor, type Image } from '../io/image.js';
import { readImage, writeImage } from '../io/image-node.js';
import { writeFileAtomic } from '../io/files.js';
import { resizeShorterSide } from '../io/resize.js';
import { add, mulScalar } from '../layers/elementwise.js';
import { affineAbout, affineWarp, warpConsistency, type Affine } from '../layers/warp.js';
import type { LossNetwork, LossNetworkName } from '../nets/loss-network.js';
import { saveTransformerNet } from '../nets/model-file.js';
import { TransformerNet, type TransformerNorm, type TransformerVariant } from '../nets/transformer-net.js';
import { Adam } from '../train/adam.js';
import { ImageFolder } from '../train/dataset.js';
import { StyleTransferLoss, layerWeights, type LayerWeights } from '../train/perceptual-loss.js';
import { Rng } from '../train/rng.js';
import { openLossNetwork, type TrainingRunOptions } from './training.js';
import { train, type LossTerms, type TrainResult } from '../train/trainer.js';
import { stylizeImage } from './stylize.js';
import { loadModel } from './model-node.js';

/** A style to learn: its image (path or decoded) and the name it is listed under (default: the file's name). */
export type StyleSpec = string | Image | { image: string | Image; name?: string; info?: Record<string, string> };

export interface TrainStyleOptions extends TrainingRunOptions {
  /** The style image, or several: one multi-style network (conditional instance norm). */
  style: StyleSpec | readonly StyleSpec[];
  arch?: TransformerVariant;
  /** Default instance norm; several styles always use conditional instance norm. */
  norm?: TransformerNorm;
  width?: number;
  /** pytorch-examples' output: linear (upstream) or 127.5·tanh + 127.5 (starts at mid-grey; see TransformerNet). */
  output?: 'linear' | 'tanh';
  contentWeight?: number;
  styleWeight?: number;
  contentLayers?: LayerWeights;
  styleLayers?: LayerWeights;
  lossNet?: LossNetworkName;
  /** Shorter side of the style image when computing its Gram matrices (default: `size`). */
  styleSize?: number;
  /** Weight of the warp-consistency (stability) term, default 0 (off): see STABILITY_MOTION. */
  stabilityWeight?: number;
  /** Start from this model file's weights (fine-tuning, e.g. a shipped style with stabilityWeight); its architecture
   *  must be the run's. A resumed run takes its weights from the checkpoint. */
  init?: string;
  /** Record the first step's commands (of each style) and replay them (default true). */
  record?: boolean;
}

export interface TrainStyleResult extends TrainResult {
  /** The trained model (safetensors with its architecture, styles and training command in the metadata). */
  model: string;
}

/**
 * The random motions of the stability term (Wang et al. 2020, "Consistent Video Style Transfer via Compound
 * Regularization"): each sample of a step is warped by a shift of up to `shift` px per axis, a rotation of up to
 * `angle` degrees and a zoom of up to `zoom` (relative) about its centre, all uniform, plus Gaussian noise of σ =
 * `noise` (0..255 scale); the term is the mean squared difference, over the pixels the warp keeps inside the frame,
 * between the network's output for that input and its output for the batch warped the same way. The ranges are
 * those of small camera motion between two video frames; the noise that of a sensor.
 */
export const STABILITY_MOTION = { shift: 2, angle: 1, zoom: 0.02, noise: 4 };

/** λ·F(warp(x) + n) ≈ warp(F(x)): the stability term for outputs y = F(x), drawn from the run's generator. */
function stabilityTerm(m: TransformerNet, x: Tensor, y: Tensor, style: number, rng: Rng): Tensor {
  const [N, , H, W] = x.shape;
  const u = () => 2 * rng.next() - 1;
  const { shift, angle, zoom, noise } = STABILITY_MOTION;
  const maps: Affine[] = Array.from({ length: N }, () =>
    affineAbout((W - 1) / 2, (H - 1) / 2, { dx: shift * u(), dy: shift * u(), angle: (angle * Math.PI * u()) / 180, scale: 1 + zoom * u() }),
  );
  // Box–Muller from the run's generator, so that a resumed run draws the same noise.
  const n = new Float32Array(x.size);
  for (let i = 0; i < n.length; i++) n[i] = noise * Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const xw = add(affineWarp(x, maps, { padding: 'border' }), Tensor.from(x.gpu, n, x.shape));
  return warpConsistency(m.forward(xw, { style }), y, maps);
}

const nameOf = (s: StyleSpec, i: number): string => {
  if (typeof s === 'string') return basename(s).replace(/\.[^.]+$/, '');
  if ('data' in s) return `style${i + 1}`;
  return s.name ?? nameOf(s.image, i);
};

export async function trainStyle(gpu: Gpu, o: TrainStyleOptions): Promise<TrainStyleResult> {
  const specs = Array.isArray(o.style) ? (o.style as readonly StyleSpec[]) : [o.style as StyleSpec];
  if (!specs.length) throw new Error('trainStyle: no style image given');
  const S = specs.length;
  const size = o.size ?? 256;
  const arch = o.arch ?? 'paper';
  const norm: TransformerNorm = S > 1 ? 'conditional-instance' : (o.norm ?? 'instance');
  const width = o.width ?? 32;
  const lossNetName = o.lossNet ?? 'vgg16';
  const seed = o.seed ?? 0;
  const batchSize = o.batchSize ?? 4;
  const names = specs.map(nameOf);
  await mkdir(o.outDir, { recursive: true });

  const styleImages = await Promise.all(specs.map((s) => (typeof s === 'string' ? readImage(s) : 'data' in s ? s : typeof s.image === 'string' ? readImage(s.image) : s.image)));
  const wanted = [...layerWeights(o.contentLayers ?? []), ...layerWeights(o.styleLayers ?? [])].map(([k]) => k);
  let net: LossNetwork | null = null;
  let model: TransformerNet | null = null;
  let optimizer: Adam | null = null;
  let data: ImageFolder | null = null;
  const losses: StyleTransferLoss[] = [];
  try {
    net = await openLossNetwork(gpu, 'trainStyle', lossNetName, o.lossWeights, wanted);
    const rng = new Rng(seed);
    const m = (model = new TransformerNet(gpu, { variant: arch, norm, width, styles: S, output: o.output, rand: () => rng.next() }));
    const output = m.output; // the variant's default when not given
    if (o.init) {
      const from = await loadModel(gpu, o.init);
      try {
        if (from.variant !== arch || from.norm !== norm || from.width !== width || from.output !== output || from.styles !== S) {
          throw new Error(
            `trainStyle: --init ${o.init} is ${from}; the run is ${m} (pass the same --arch, --norm, --width, --output and as many --style images)`,
          );
        }
        m.loadStateDict(new Map(await Promise.all([...from.stateDict()].map(async ([k, t]) => [k, { data: await t.data(), shape: t.shape }] as const))));
      } finally {
        from.dispose();
      }
    }
    optimizer = new Adam(m.parameters(), { lr: o.lr ?? 1e-3 });
    for (const img of styleImages) {
      const styleTensor = tidy(() => keep(imageToTensor(gpu, resizeShorterSide(img, o.styleSize ?? size))));
      try {
        losses.push(
          new StyleTransferLoss(net, styleTensor, {
            contentLayers: o.contentLayers,
            styleLayers: o.styleLayers,
            contentWeight: o.contentWeight,
            styleWeight: o.styleWeight,
            tvWeight: o.tvWeight,
          }),
        );
      } finally {
        styleTensor.dispose();
      }
    }
    data = await ImageFolder.open(o.data, { size, batchSize, seed, onWarning: (msg) => o.onLog?.(msg) });
    const samples = await Promise.all((o.sampleImages ?? []).map(async (f) => ({ name: basename(f).replace(/\.[^.]+$/, ''), img: resizeShorterSide(await readImage(f), size) })));
    const first = losses[0];
    const config = {
      kind: 'style',
      arch,
      norm,
      width,
      output,
      size,
      batchSize,
      lr: o.lr ?? 1e-3,
      lossNet: lossNetName,
      contentLayers: first.contentLayers,
      styleLayers: first.styleLayers,
      contentWeight: first.contentWeight,
      styleWeight: first.styleWeight,
      tvWeight: first.tvWeight,
      style: S === 1 ? (typeof specs[0] === 'string' ? basename(specs[0]) : names[0]) : names,
      styleSize: o.styleSize ?? size,
      seed,
      ...(o.stabilityWeight ? { stabilityWeight: o.stabilityWeight, stabilityMotion: STABILITY_MOTION } : {}),
      ...(o.init ? { init: basename(o.init) } : {}),
    };
    const result = await train({
      model: m,
      optimizer,
      steps: o.steps ?? 40000,
      outDir: o.outDir,
      data,
      seed,
      resume: o.resume,
      overwrite: o.overwrite,
      checkpointEvery: o.checkpointEvery ?? 500,
      sampleEvery: samples.length ? (o.sampleEvery ?? 500) : undefined,
      config,
      mustMatch: { kind: 'style', arch, norm, width, output, ...(S > 1 ? { style: names } : {}) },
      // A recording replays one style's graph: one recording per style, each replayed at that style's steps.
      record: o.record !== false,
      recordKey: (step) => (step - 1) % S,
      signal: o.signal,
      onProgress: o.onProgress,
      onLog: o.onLog,
      loss: async (ctx): Promise<LossTerms> => {
        const s = (ctx.step - 1) % S;
        const x = await ctx.batch();
        const y = m.forward(x, { style: s });
        const terms = losses[s].compute(y, x);
        if (!o.stabilityWeight) return { total: terms.total, content: terms.content, style: terms.style, tv: terms.tv };
        // It draws on ctx.rng, so these steps run eagerly (the trainer sees it), and resume stays exact.
        const stability = stabilityTerm(m, x, y, s, ctx.rng);
        return { total: add(terms.total, mulScalar(stability, o.stabilityWeight)), content: terms.content, style: terms.style, tv: terms.tv, stability };
      },
      onSample: async (step) => {
        await mkdir(join(o.outDir, 'samples'), { recursive: true });
        m.eval();
        for (const smp of samples) {
          for (let s = 0; s < S; s++) {
            const out = await noGrad(() => stylizeImage(gpu, m, smp.img, { style: s }));
            await writeImage(join(o.outDir, 'samples', `${smp.name}${S > 1 ? `-${names[s]}` : ''}-step${step}.png`), out);
          }
        }
      },
    });
    const modelPath = join(o.outDir, 'model.safetensors');
    m.eval();
    const styleInfo = specs.map((s, i) => ({ name: names[i], ...(typeof s === 'object' && 'image' in s ? s.info : {}) }));
    await writeFileAtomic(modelPath, await saveTransformerNet(m, { training: JSON.stringify({ ...config, steps: result.step }), style_info: JSON.stringify(styleInfo) }));
    return { ...result, model: modelPath };
  } finally {
    data?.close?.();
    for (const l of losses) l.dispose();
    net?.dispose();
    optimizer?.dispose();
    model?.dispose();
  }
}
