// Table 2 of Johnson et al. on the adapter at hand: ×4 PSNR / SSIM (Y, the paper's protocol) of bicubic and of SR
// models on Set5, Set14 and BSD100, beside the paper's numbers; and a strip of sample crops to look at.
//
//   npx tsx bench/sr-report.ts --data ../shared/data/sr --model l_pixel=models/sr-x4-pixel.safetensors
//                              --model l_feat=models/sr-x4-feat.safetensors [--hist-match] [--json FILE]
//                              [--crops OUT.png] [--with-hr] [--crop FILE:LEFT:TOP ...] [--sets Set5,Set14,BSD100]
//                              [--peer upscalerjs[:slim,medium,thick]] [--no-time] [--time-reps N]
//
// Each model is evaluated as it comes and, with --hist-match, also after the paper's post-processing (the output's
// histogram matched to the LR input's). --crops writes one row per sample image: bicubic, then each model (and the
// HR ground truth with --with-hr; left out by default so that a committed figure holds none of the data set).
// --crop (repeatable) takes the 96×96 windows from other images instead, e.g. examples/village.png.
//
// --peer upscalerjs adds UpscalerJS's ×4 models (bench/upscalerjs-peer.ts: esrgan-slim, -medium, -thick from their
// npm packages, dev-dependencies, on TF.js's WASM backend), scored with the same protocol on the same LR inputs
// (checked bit-exact against DATA/reference_lr_x4/ where that folder exists). Unless --no-time, a column of the
// median milliseconds per Set5 image (LR → SR, LR in memory, output read back; after one warm-up image per
// method; the methods interleaved image by image, --time-reps rounds) for every method, all measured in this run:
// bicubic on the CPU, ours on the WebGPU adapter, UpscalerJS on WASM.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Gpu } from '../src/gpu/index.js';
import { matchHistogram, srMetrics } from '../src/eval/metrics.js';
import {
  cropToMultiple,
  evaluateSrFolder,
  isGreyscaleFile,
  listImages,
  superResolve,
  toUint8Values,
  type SrEvalResult,
  type SrImageResult,
} from '../src/eval/sr-eval.js';
import { imresize } from '../src/io/bicubic.js';
import { createImage, crop, type Image } from '../src/io/image.js';
import { readImage, writeImage } from '../src/io/image-node.js';
import { loadSRNet, upscaleImage, type SRNet } from '../src/nets/sr-net.js';
import type { UpscalerJsEnv, UpscalerJsModel, UpscalerJsPeer } from './upscalerjs-peer.js';

/** The paper's Table 2 (×4), PSNR / SSIM as recalled in ../shared/PAPER.md; l_pixel has PSNR only. */
const PAPER: Record<string, Record<string, string>> = {
  Set5: { bicubic: '28.43 / 0.8114', l_pixel: '≈28.40', SRCNN: '30.48 / 0.8628', l_feat: '27.09 / 0.7680' },
  Set14: { bicubic: '25.99 / 0.7301', l_pixel: '≈25.96', SRCNN: '27.49 / 0.7503', l_feat: '24.99 / 0.6731' },
  BSD100: { bicubic: '25.96 / 0.682', l_pixel: '≈25.8', SRCNN: '26.90 / 0.7101', l_feat: '24.95 / 0.6317' },
};
/** Sample crops: (set, file, left, top) of a 96×96 HR window with texture and edges. */
const CROPS: [string, string, number, number][] = [
  ['Set5', 'butterfly.png', 80, 60],
  ['Set14', 'zebra.png', 300, 180],
  ['Set14', 'comic.png', 60, 40],
  ['BSD100', '302008.png', 120, 100],
];
const CROP = 96;

const { values: args } = parseArgs({
  options: {
    data: { type: 'string', default: '../shared/data/sr' },
    model: { type: 'string', multiple: true, default: [] },
    sets: { type: 'string', default: 'Set5,Set14,BSD100' },
    'hist-match': { type: 'boolean', default: false },
    json: { type: 'string' },
    crops: { type: 'string' },
    'with-hr': { type: 'boolean', default: false },
    'no-eval': { type: 'boolean', default: false },
    crop: { type: 'string', multiple: true, default: [] },
    peer: { type: 'string' },
    'no-time': { type: 'boolean', default: false },
    'time-reps': { type: 'string', default: '1' },
  },
});
const timeReps = Number(args['time-reps']);
if (!(Number.isInteger(timeReps) && timeReps >= 1)) throw new Error(`--time-reps takes a positive integer, got '${args['time-reps']}'`);

const gpu = await Gpu.create();
const models: [string, SRNet][] = args.model.map((m) => {
  const eq = m.indexOf('=');
  if (eq < 1) throw new Error(`--model takes NAME=FILE, got '${m}'`);
  const net = loadSRNet(gpu, new Uint8Array(readFileSync(m.slice(eq + 1))), { file: m.slice(eq + 1) });
  net.eval();
  return [m.slice(0, eq), net];
});
const scale = 4;
for (const [name, net] of models) if (net.scale !== scale) throw new Error(`model ${name} upscales ×${net.scale}; this table is ×4`);

// The peer: UpscalerJS's ×4 models, loaded only when asked for (its packages are dev-dependencies).
let peerEnv: UpscalerJsEnv | undefined;
const peers: UpscalerJsPeer[] = [];
if (args.peer) {
  const m = /^upscalerjs(?::(.+))?$/.exec(args.peer);
  if (!m) throw new Error(`--peer takes upscalerjs or upscalerjs:MODEL,MODEL (slim, medium, thick), got '${args.peer}'`);
  const { UPSCALERJS_MODELS, loadUpscalerJs, startUpscalerJs } = await import('./upscalerjs-peer.js');
  const wanted = (m[1] ?? 'slim,medium,thick').split(',').map((n): UpscalerJsModel => {
    const full = n.startsWith('esrgan-') ? n : `esrgan-${n}`;
    const found = UPSCALERJS_MODELS.find((k) => k === full);
    if (!found) throw new Error(`--peer upscalerjs: unknown model '${n}' (${UPSCALERJS_MODELS.join(', ')})`);
    return found;
  });
  peerEnv = await startUpscalerJs();
  for (const name of wanted) {
    const p = await loadUpscalerJs(name);
    if (p.scale !== scale) throw new Error(`${p.name} upscales ×${p.scale}; this table is ×4`);
    peers.push(p);
  }
}

/** A column of the table: how its SR images are made. */
interface Method {
  name: string;
  net?: SRNet;
  peer?: UpscalerJsPeer;
  histMatch: boolean;
  /** Where it runs. */
  engine: string;
  params?: number;
}
const adapter = gpu.adapterInfo.description || gpu.adapterInfo.architecture;
const fmt = (r: SrEvalResult) => `${r.mean.psnr.toFixed(2)} / ${r.mean.ssim.toFixed(4)}`;
const sets = args.sets.split(',');
const columns: [string, SRNet | undefined, boolean][] = [['bicubic', undefined, false]];
const methods: Method[] = [{ name: 'bicubic', histMatch: false, engine: 'CPU (JavaScript, float64)' }];
for (const [name, net] of models) {
  const params = net.parameters().reduce((a, p) => a + p.size, 0);
  columns.push([name, net, false]);
  methods.push({ name, net, histMatch: false, engine: `ours, WebGPU (${adapter})`, params });
  if (args['hist-match']) {
    columns.push([`${name} + hist. match`, net, true]);
    methods.push({ name: `${name} + hist. match`, net, histMatch: true, engine: `ours, WebGPU (${adapter}) + CPU`, params });
  }
}
for (const p of peers) {
  methods.push({ name: p.name, peer: p, histMatch: false, engine: `UpscalerJS ${peerEnv!.upscaler}, TF.js ${peerEnv!.tfjs} ${peerEnv!.backend} (${peerEnv!.simd ? 'SIMD, ' : ''}${peerEnv!.threads} thread${peerEnv!.threads === 1 ? '' : 's'})`, params: p.params });
}

/** The 8-bit LR input of a cropped HR image (MATLAB bicubic ↓scale), checked against the standard LR file if there is one. */
function lrInput(hr: Image, set: string, file: string, reference?: Image): Image {
  const lr = imresize(hr, { scale: 1 / scale }, { uint8: true });
  if (reference) {
    const same = reference.width === lr.width && reference.height === lr.height && reference.data.every((v, i) => v === lr.data[i]);
    if (!same) throw new Error(`${set}/${file}: our ×1/${scale} LR input differs from the standard one in reference_lr_x${scale}/`);
  }
  return lr;
}
const referenceLr = async (set: string, file: string): Promise<Image | undefined> => {
  const p = join(args.data, `reference_lr_x${scale}`, set, file);
  return existsSync(p) ? readImage(p) : undefined;
};

/**
 * A peer's metrics on a folder, by the path evaluateSrFile takes for our models (it has no hook for an outside
 * model): the HR image cropped to the scale, its LR input, the SR image rounded to 8 bits (toUint8Values), then
 * srMetrics on Y (grey files on their grey values) with `scale` pixels shaved; the mean over images.
 */
async function evaluatePeerFolder(dir: string, set: string, peer: UpscalerJsPeer, onImage: (i: number, n: number) => void): Promise<SrEvalResult> {
  const files = listImages(dir);
  const images: SrImageResult[] = [];
  for (const [i, path] of files.entries()) {
    const file = basename(path);
    const hr = cropToMultiple(await readImage(path), scale);
    const grey = await isGreyscaleFile(path);
    const lr = lrInput(hr, set, file, await referenceLr(set, file));
    const sr = toUint8Values(await peer.upscale(lr));
    images.push({ file, width: hr.width, height: hr.height, grey, ...srMetrics(sr, hr, { shave: scale, grey }) });
    onImage(i, files.length);
  }
  const mean = (k: 'psnr' | 'ssim') => images.reduce((a, r) => a + r[k], 0) / images.length;
  return { mean: { psnr: mean('psnr'), ssim: mean('ssim') }, images };
}

/** LR → SR of one method as timed: the LR image in memory, the SR image back in memory (not rounded). */
async function runMethod(m: Method, lr: Image): Promise<Image> {
  if (m.peer) return m.peer.upscale(lr);
  if (!m.net) return imresize(lr, { scale }, { uint8: true });
  const sr = await upscaleImage(m.net, lr);
  return m.histMatch ? matchHistogram(sr, lr) : sr;
}

/** Median ms per Set5 image of every method: one warm-up image each, then the methods interleaved image by image. */
async function timeMethods(): Promise<Record<string, number>> {
  const dir = join(args.data, 'Set5');
  const lrs: Image[] = [];
  for (const path of listImages(dir)) {
    const file = basename(path);
    lrs.push(lrInput(cropToMultiple(await readImage(path), scale), 'Set5', file, await referenceLr('Set5', file)));
  }
  for (const m of methods) await runMethod(m, lrs[0]);
  const samples: Record<string, number[]> = Object.fromEntries(methods.map((m) => [m.name, []]));
  for (let r = 0; r < timeReps; r++) {
    for (const [i, lr] of lrs.entries()) {
      for (const m of methods) {
        const t0 = performance.now();
        await runMethod(m, lr);
        samples[m.name].push(performance.now() - t0);
      }
      process.stderr.write(`\rtiming on Set5: round ${r + 1}/${timeReps}, image ${i + 1}/${lrs.length}`);
    }
  }
  process.stderr.write('\n');
  const median = (v: number[]) => {
    const s = [...v].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  return Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
}

if (!args['no-eval']) {
  const results: Record<string, Record<string, SrEvalResult>> = {};
  for (const set of sets) {
    results[set] = {};
    for (const m of methods) {
      const t0 = performance.now();
      const onImage = (i: number, n: number) => process.stderr.write(`\r${set} ${m.name}: ${i + 1}/${n}`);
      results[set][m.name] = m.peer
        ? await evaluatePeerFolder(join(args.data, set), set, m.peer, onImage)
        : await evaluateSrFolder(join(args.data, set), { scale, model: m.net, histMatch: m.histMatch, onImage: (_r, i, n) => onImage(i, n) });
      process.stderr.write(`\r${set} ${m.name}: ${fmt(results[set][m.name])} (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
    }
  }
  const ms = args['no-time'] ? undefined : await timeMethods();
  console.log(`\n×4 PSNR (dB) / SSIM on Y, here (${adapter}) and in the paper:\n`);
  const head = ['set', ...methods.map((m) => `${m.name} (here)`), ...['bicubic', 'l_pixel', 'SRCNN', 'l_feat'].map((n) => `${n} (paper)`)];
  console.log(`| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|`);
  for (const set of sets) {
    const row = [set, ...methods.map((m) => fmt(results[set][m.name])), ...['bicubic', 'l_pixel', 'SRCNN', 'l_feat'].map((n) => PAPER[set]?.[n] ?? '')];
    console.log(`| ${row.join(' | ')} |`);
  }
  // The same results one method a row, with its size and time (the peer comparison's table).
  const mhead = ['method', 'params', ...sets, ...(ms ? ['ms / Set5 image'] : []), 'runs on'];
  console.log(`\n| ${mhead.join(' | ')} |\n|${mhead.map(() => '---').join('|')}|`);
  const kParams = (n?: number) => (n === undefined ? '–' : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${Math.round(n / 1e3)} k`);
  for (const m of methods) {
    const cells = sets.map((set) => `${results[set][m.name].mean.psnr.toFixed(3)} / ${results[set][m.name].mean.ssim.toFixed(4)}`);
    console.log(`| ${[m.name, kParams(m.params), ...cells, ...(ms ? [ms[m.name].toFixed(m.name === 'bicubic' ? 1 : 0)] : []), m.engine].join(' | ')} |`);
  }
  if (args.json) {
    const rows = sets.flatMap((set) => methods.map((m) => ({ set, method: m.name, psnr: results[set][m.name].mean.psnr, ssim: results[set][m.name].mean.ssim })));
    const info = methods.map((m) => ({
      method: m.name,
      engine: m.engine,
      ...(m.params !== undefined ? { params: m.params } : {}),
      ...(m.net ? { model: String(m.net) } : {}),
      ...(m.peer ? { package: m.peer.package, architecture: m.peer.architecture } : {}),
      ...(ms ? { ms_per_set5_image: ms[m.name] } : {}),
    }));
    const cpu = cpus();
    const out = {
      scale,
      date: new Date().toISOString().slice(0, 10),
      adapter: gpu.adapterInfo,
      machine: `${cpu.length} CPU cores (${cpu[0]?.model ?? '?'}), Node ${process.version}`,
      ...(ms ? { timing: `median ms per Set5 image, LR → SR in memory, after one warm-up image per method, methods interleaved, ${timeReps} round(s)` } : {}),
      ...(peerEnv ? { peer: { upscaler: peerEnv.upscaler, tfjs: peerEnv.tfjs, backend: peerEnv.backend, simd: peerEnv.simd, threads: peerEnv.threads } } : {}),
      methods: info,
      rows,
    };
    writeFileSync(args.json, JSON.stringify(out, null, 2) + '\n');
  }
}

if (args.crops) {
  // One row per sample: the same HR window cut from each method's output, side by side with a 4-px gap.
  const gap = 4;
  const panels = columns.filter(([, , h]) => !h).length + peers.length + (args['with-hr'] ? 1 : 0);
  const paste = (img: Image, col: number, row: number) => {
    const x0 = col * (CROP + gap), y0 = row * (CROP + gap);
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < CROP; y++)
        for (let x = 0; x < CROP; x++) out.data[(c * out.height + y0 + y) * out.width + x0 + x] = img.data[(c * img.height + y) * img.width + x];
  };
  const windows: [string, number, number][] = args.crop.length
    ? args.crop.map((c) => {
        const m = /^(.+):(\d+):(\d+)$/.exec(c);
        if (!m) throw new Error(`--crop takes FILE:LEFT:TOP, got '${c}'`);
        return [m[1], Number(m[2]), Number(m[3])];
      })
    : CROPS.map(([set, file, left, top]) => [join(args.data, set, file), left, top]);
  const out = createImage(panels * CROP + (panels - 1) * gap, windows.length * CROP + (windows.length - 1) * gap);
  out.data.fill(255);
  for (const [row, [path, left, top]] of windows.entries()) {
    const hr = cropToMultiple(await readImage(path), scale);
    let col = 0;
    for (const [, model, histMatch] of columns) {
      if (histMatch) continue;
      const { sr } = await superResolve(hr, { scale, model });
      paste(crop(sr, left, top, CROP, CROP), col++, row);
    }
    for (const p of peers) paste(crop(await p.upscale(imresize(hr, { scale: 1 / scale }, { uint8: true })), left, top, CROP, CROP), col++, row);
    if (args['with-hr']) paste(crop(hr, left, top, CROP, CROP), col, row);
  }
  await writeImage(args.crops, out);
  console.log(`\nsample crops (${windows.map(([f, l, t]) => `${f} at ${l},${t}`).join('; ')}; columns: ${[...columns.filter(([, , h]) => !h).map(([n]) => n), ...peers.map((p) => p.name)].join(', ')}${args['with-hr'] ? ', HR' : ''}) → ${args.crops}`);
}
for (const p of peers) await p.dispose();
gpu.destroy();
