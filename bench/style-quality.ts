// How good is a style network, measured as Johnson et al. do in their Figure 5: the network's output for a held-out
// photo is placed on the curve of Gatys et al.'s optimisation of the SAME objective (same loss network, layers,
// weights, style image size) for the same photo — "the output is as good as K L-BFGS iterations". Plus the output's
// colours against the style image's: per-channel mean and spread in CIELAB (L*, a*, b*), the perceptual colour space
// where a washed-out result shows as a lower chroma spread and a lighter L* than the painting's.
//
//   npx tsx bench/style-quality.ts --model FILE [--model FILE ...] [--styles a,b] [--photos p1.jpg,p2.jpg,p3.jpg]
//       [--sizes 128] [--iters 200] [--init noise|content] [--loss-weights FILE] [--json FILE]
//
// Everything about the objective comes from each model file's training record (__metadata__.training: loss network,
// content and style layers with their weights, λc, λs, λTV, style image and its size relative to the training
// size); the style images are looked up in --style-dir (default ../shared/data/styles). Held-out photos: the default
// three from ../shared/data/content are never in the training data (COCO). The style image is scaled as in training:
// its shorter side is styleSize/size × the photo's shorter side.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { noGrad, tidy } from '../src/autograd/tensor.js';
import { stylizeImage } from '../src/api/stylize.js';
import { Gpu } from '../src/gpu/index.js';
import { defaultCacheDir } from '../src/io/fetch.js';
import { imageToTensor, type Image } from '../src/io/image.js';
import { readImage } from '../src/io/image-node.js';
import { resizeShorterSide } from '../src/io/resize.js';
import { readWeightBytes } from '../src/io/weight-file.js';
import type { LossNetworkName } from '../src/nets/loss-network.js';
import { loadLossNetwork } from '../src/nets/loss-network-node.js';
import { loadTransformerNet, styleInfoOf } from '../src/nets/model-file.js';
import { GatysObjective, gatys } from '../src/train/gatys.js';

const SHARED = new URL('../../shared/', import.meta.url).pathname;
const { values: a } = parseArgs({
  options: {
    model: { type: 'string', multiple: true },
    styles: { type: 'string' },
    'style-dir': { type: 'string', default: join(SHARED, 'data/styles') },
    photos: { type: 'string', default: ['chicago', 'tubingen', 'golden_gate'].map((p) => join(SHARED, `data/content/${p}.jpg`)).join(',') },
    sizes: { type: 'string', default: '128' },
    iters: { type: 'string', default: '200' },
    init: { type: 'string', default: 'noise' },
    'loss-weights': { type: 'string' },
    json: { type: 'string' },
  },
});
if (!a.model?.length) throw new Error('--model FILE is required (repeatable)');
const iters = Number(a.iters);
const sizes = a.sizes!.split(',').map(Number);
const photos = a.photos!.split(',');
const init = a.init as 'noise' | 'content';

// ---- CIELAB (sRGB, D65) ----------------------------------------------------------------------------------------
const lin = (v: number) => (v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
const f = (t: number) => (t > (6 / 29) ** 3 ? Math.cbrt(t) : t / (3 * (6 / 29) ** 2) + 4 / 29);
/** Per-channel mean and standard deviation of L*, a*, b* over the image's pixels. */
function labStats(img: Image): { mean: number[]; std: number[] } {
  const n = img.width * img.height;
  const sum = [0, 0, 0];
  const sq = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    const [r, g, b] = [0, 1, 2].map((c) => lin(Math.min(255, Math.max(0, img.data[c * n + i])) / 255));
    const x = f((0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047);
    const y = f(0.2126 * r + 0.7152 * g + 0.0722 * b);
    const z = f((0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883);
    const lab = [116 * y - 16, 500 * (x - y), 200 * (y - z)];
    lab.forEach((v, c) => {
      sum[c] += v;
      sq[c] += v * v;
    });
  }
  const mean = sum.map((s) => s / n);
  return { mean, std: sq.map((s, c) => Math.sqrt(Math.max(0, s / n - mean[c] ** 2))) };
}
const fmtLab = (s: { mean: number[]; std: number[] }) => s.mean.map((m, c) => `${m.toFixed(1)}±${s.std[c].toFixed(1)}`).join('  ');

interface Training {
  lossNet: LossNetworkName;
  contentLayers: Record<string, number>;
  styleLayers: Record<string, number>;
  contentWeight: number;
  styleWeight: number;
  tvWeight: number;
  size: number;
  styleSize: number;
  style: string | string[];
  steps?: number;
}

const gpu = await Gpu.create();
const rows: Record<string, unknown>[] = [];
try {
  for (const file of a.model) {
    const { metadata } = readWeightBytes(new Uint8Array(readFileSync(file)), file);
    const t = JSON.parse(metadata.training ?? 'null') as Training | null;
    if (!t) throw new Error(`${file}: no __metadata__.training: the objective it was trained with is unknown`);
    const net = loadTransformerNet(gpu, new Uint8Array(readFileSync(file)), { file }).eval();
    const names = styleInfoOf(metadata, net.styles).map((s) => s.name);
    const styleFiles = (Array.isArray(t.style) ? t.style : [t.style]).map((s) => s.replace(/\.[^.]+$/, ''));
    const weights = a['loss-weights'] ?? join(defaultCacheDir(), `${t.lossNet}.safetensors`);
    const lossNet = await loadLossNetwork(gpu, t.lossNet, existsSync(weights) ? weights : join(SHARED, `weights/${t.lossNet === 'vgg19' ? 'vgg19_partial_relu3_4' : t.lossNet}.safetensors`));
    const wanted = a.styles ? a.styles.split(',') : names;
    try {
      for (const name of wanted) {
        const s = names.indexOf(name);
        if (s < 0) throw new Error(`${file}: no style '${name}' (it has ${names.join(', ')})`);
        const styleImg = await readImage(join(a['style-dir']!, `${styleFiles[s]}.jpg`));
        for (const size of sizes) {
          const style = resizeShorterSide(styleImg, Math.round((size * t.styleSize) / t.size));
          const styleLab = labStats(style);
          const ks: (number | null)[] = [];
          const outLabs: { mean: number[]; std: number[] }[] = [];
          for (const photo of photos) {
            const content = resizeShorterSide(await readImage(photo), size);
            const out = await noGrad(() => stylizeImage(gpu, net, content, { style: s }));
            outLabs.push(labStats(out));
            const opts = { contentLayers: t.contentLayers, styleLayers: t.styleLayers, contentWeight: t.contentWeight, styleWeight: t.styleWeight, tvWeight: t.tvWeight };
            const obj = new GatysObjective(lossNet, imageToTensor(gpu, content), imageToTensor(gpu, style), opts);
            const total = tidy(() => noGrad(() => obj.compute(imageToTensor(gpu, out)).total));
            const target = (await total.data())[0];
            total.dispose();
            obj.dispose();
            // The curve is only needed up to the network's loss: stop there (K ≪ iters for a weak network).
            const curve: number[] = [];
            const reached = new AbortController();
            const onIter = (_i: number, l: { total: number }) => {
              curve.push(l.total);
              if (l.total <= target) reached.abort();
            };
            await gatys({ gpu, net: lossNet, content, style, styleSize: Math.max(style.width, style.height), iters, init, ...opts, onIter, signal: reached.signal }).catch((e) => {
              if (!reached.signal.aborted) throw e;
            });
            // K: the first iteration whose loss is at or below the network's (linear between iterations).
            const j = curve.findIndex((v) => v <= target);
            const k = j < 0 ? null : j === 0 ? 0 : j - 1 + (curve[j - 1] - target) / (curve[j - 1] - curve[j]);
            ks.push(k);
            console.error(`${basename(file)} ${name} ${size}px ${basename(photo)}: network loss ${target.toExponential(3)}, Gatys ${curve[0].toExponential(3)} → ${curve.at(-1)!.toExponential(3)} in ${curve.length} of ${iters}; K = ${k === null ? `> ${iters}` : k.toFixed(1)}`);
          }
          const mean = (k: 'mean' | 'std', c: number) => outLabs.reduce((acc, l) => acc + l[k][c], 0) / outLabs.length;
          const outLab = { mean: [0, 1, 2].map((c) => mean('mean', c)), std: [0, 1, 2].map((c) => mean('std', c)) };
          rows.push({ model: basename(file), style: name, size, steps: t.steps, K: ks, styleLab, outputLab: outLab });
          console.log(
            `${basename(file).padEnd(34)} ${name.padEnd(18)} ${String(size).padStart(4)}  K ${ks.map((k) => (k === null ? `>${iters}` : k.toFixed(0))).join(', ').padEnd(16)}  ` +
              `Lab style ${fmtLab(styleLab)}  output ${fmtLab(outLab)}`,
          );
        }
      }
    } finally {
      lossNet.dispose();
      net.dispose();
    }
  }
} finally {
  gpu.destroy();
}
if (a.json) writeFileSync(a.json, JSON.stringify({ date: new Date().toISOString(), adapter: 'see perceptual info', iters, init, photos: photos.map((p) => basename(p)), rows }, null, 2));
