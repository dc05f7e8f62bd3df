// Table 2 of Johnson et al. on the adapter at hand: ×4 PSNR / SSIM (Y, the paper's protocol) of bicubic and of SR
// models on Set5, Set14 and BSD100, beside the paper's numbers; and a strip of sample crops to look at.
//
//   npx tsx bench/sr-report.ts --data ../shared/data/sr --model l_pixel=models/sr-x4-pixel.safetensors
//                              --model l_feat=models/sr-x4-feat.safetensors [--hist-match] [--json FILE]
//                              [--crops OUT.png] [--with-hr] [--crop FILE:LEFT:TOP ...] [--sets Set5,Set14,BSD100]
//
// Each model is evaluated as it comes and, with --hist-match, also after the paper's post-processing (the output's
// histogram matched to the LR input's). --crops writes one row per sample image: bicubic, then each model (and the
// HR ground truth with --with-hr; left out by default so that a committed figure holds none of the data set).
// --crop (repeatable) takes the 96×96 windows from other images instead, e.g. examples/village.png.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Gpu } from '../src/gpu/index.js';
import { cropToMultiple, evaluateSrFolder, superResolve, type SrEvalResult } from '../src/eval/sr-eval.js';
import { createImage, crop, type Image } from '../src/io/image.js';
import { readImage, writeImage } from '../src/io/image-node.js';
import { loadSRNet, type SRNet } from '../src/nets/sr-net.js';

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
  },
});

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

const fmt = (r: SrEvalResult) => `${r.mean.psnr.toFixed(2)} / ${r.mean.ssim.toFixed(4)}`;
const sets = args.sets.split(',');
const columns: [string, SRNet | undefined, boolean][] = [['bicubic', undefined, false]];
for (const [name, net] of models) {
  columns.push([name, net, false]);
  if (args['hist-match']) columns.push([`${name} + hist. match`, net, true]);
}

if (!args['no-eval']) {
  const results: Record<string, Record<string, SrEvalResult>> = {};
  for (const set of sets) {
    results[set] = {};
    for (const [name, model, histMatch] of columns) {
      const t0 = performance.now();
      results[set][name] = await evaluateSrFolder(join(args.data, set), {
        scale,
        model,
        histMatch,
        onImage: (_r, i, n) => process.stderr.write(`\r${set} ${name}: ${i + 1}/${n}`),
      });
      process.stderr.write(`\r${set} ${name}: ${fmt(results[set][name])} (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
    }
  }
  console.log(`\n×4 PSNR (dB) / SSIM on Y, here (${gpu.adapterInfo.description || gpu.adapterInfo.architecture}) and in the paper:\n`);
  const head = ['set', ...columns.map(([n]) => `${n} (here)`), ...['bicubic', 'l_pixel', 'SRCNN', 'l_feat'].map((n) => `${n} (paper)`)];
  console.log(`| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|`);
  for (const set of sets) {
    const row = [set, ...columns.map(([n]) => fmt(results[set][n])), ...['bicubic', 'l_pixel', 'SRCNN', 'l_feat'].map((n) => PAPER[set]?.[n] ?? '')];
    console.log(`| ${row.join(' | ')} |`);
  }
  if (args.json) {
    const rows = sets.flatMap((set) => columns.map(([n]) => ({ set, method: n, psnr: results[set][n].mean.psnr, ssim: results[set][n].mean.ssim })));
    writeFileSync(args.json, JSON.stringify({ scale, adapter: gpu.adapterInfo, rows }, null, 2) + '\n');
  }
}

if (args.crops) {
  // One row per sample: the same HR window cut from each method's output, side by side with a 4-px gap.
  const gap = 4;
  const panels = columns.filter(([, , h]) => !h).length + (args['with-hr'] ? 1 : 0);
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
    if (args['with-hr']) paste(crop(hr, left, top, CROP, CROP), col, row);
  }
  await writeImage(args.crops, out);
  console.log(`\nsample crops (${windows.map(([f, l, t]) => `${f} at ${l},${t}`).join('; ')}; columns: ${columns.filter(([, , h]) => !h).map(([n]) => n).join(', ')}${args['with-hr'] ? ', HR' : ''}) → ${args.crops}`);
}
gpu.destroy();
