// f16 storage against f32 (issue #19 item 3): speed and output error of the inference networks, in one process.
//
//   npx tsx bench/precision.ts [--runs 7] [--sizes 256,512] [--sr-size 128] [--photo-side 512] [--sr-model FILE]
//                              [--skip speed|error] [--json FILE]
//
// Models: the embedded style model (DEFAULT_MODEL: paper, instance norm, width 16); a pytorch-examples TransformerNet
// of width 16 with random weights (seeded); an SR ×4 network (paper: width 64, 4 blocks, batch norm in eval mode)
// with random weights whose running statistics were set from one photo (a training-mode forward with momentum 1,
// so its activations are normalised as a trained network's are), or --sr-model FILE.
// Speed: each workload runs once per precision to warm up (pipelines), then --runs rounds alternating f32 and f16
// (the order swapped every round); a run is upload + cast + forward between two gpu.sync(); medians and minima
// reported (on a loaded machine other processes only ever add time: the minimum is the least disturbed run), the
// median CPU time of the process (lavapipe's threads run in it), and the pool's peak bytes. The machine's load average is printed: other processes slow both precisions alike.
// Error: every photo of shared/data/content, resized (bilinear, rounded to 8 bits, as a saved file would be) to
// --photo-side px on its longer side (SR: to --photo-side / 4, MATLAB bicubic, the LR input), through the product
// paths stylizeImage / upscaleImage with precision f32 and f16: max and mean |f16 − f32| in 0..255 levels and the
// share of 8-bit output values that differ. The random pytorch-examples network has no output activation (its
// outputs are not in 0..255): its differences are given in levels of its f32 output's range (max − min ↦ 255).
import { readdirSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { noGrad, tidy, Tensor } from '../src/autograd/tensor.js';
import { DEFAULT_MODEL } from '../src/api/default-model.js';
import { loadModel } from '../src/api/model-node.js';
import { runImageNetwork } from '../src/api/tiled.js';
import { stylizeImage } from '../src/api/stylize.js';
import { Gpu, type Dtype } from '../src/gpu/index.js';
import { imresize } from '../src/io/bicubic.js';
import { centerCrop, createImage, imageToTensor, type Image } from '../src/io/image.js';
import { readImage } from '../src/io/image-node.js';
import { readFileBytes } from '../src/io/files.js';
import { resize, resizeShorterSide } from '../src/io/resize.js';
import { cast } from '../src/layers/elementwise.js';
import { BatchNorm2d } from '../src/layers/norm.js';
import { loadSRNet, SRNet, upscaleImage } from '../src/nets/sr-net.js';
import { TransformerNet } from '../src/nets/transformer-net.js';
import { Rng } from '../src/train/rng.js';

const { values: a } = parseArgs({
  options: {
    runs: { type: 'string', default: '7' },
    sizes: { type: 'string', default: '256,512' },
    'sr-size': { type: 'string', default: '128' },
    'photo-side': { type: 'string', default: '512' },
    'sr-model': { type: 'string' },
    skip: { type: 'string', multiple: true, default: [] },
    json: { type: 'string' },
  },
});
const RUNS = Number(a.runs);
const SIZES = a.sizes!.split(',').map(Number);
const SR_SIZE = Number(a['sr-size']);
const SIDE = Number(a['photo-side']);
const CONTENT = fileURLToPath(new URL('../../shared/data/content/', import.meta.url));
const PRECISIONS: Dtype[] = ['f32', 'f16'];

const median = (v: number[]) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');

/** A photo of 8-bit values resized so that its longer side is `side` (as a file saved at that size would be). */
function fitPhoto(img: Image, side: number, bicubic = false): Image {
  const s = side / Math.max(img.width, img.height);
  const [w, h] = [Math.max(1, Math.round(img.width * s)), Math.max(1, Math.round(img.height * s))];
  const out = bicubic ? imresize(img, { width: w, height: h }, { uint8: true }) : resize(img, w, h);
  return createImage(out.width, out.height, out.data.map((v) => Math.min(255, Math.max(0, Math.round(v)))));
}

/** The centre square of a photo scaled to `side` px on its shorter side, in 8-bit values. */
function square(img: Image, side: number): Image {
  const c = centerCrop(resizeShorterSide(img, side), side);
  return createImage(side, side, c.data.map((v) => Math.min(255, Math.max(0, Math.round(v)))));
}

/** A random paper SR ×4 net whose batch norms hold the statistics of `img` (momentum 1, one training forward). */
function calibratedSR(gpu: Gpu, img: Image): SRNet {
  const rng = new Rng(7);
  const net = new SRNet(gpu, { scale: 4, rand: () => rng.next() });
  const bns: BatchNorm2d[] = [];
  const visit = (m: object) => {
    if (m instanceof BatchNorm2d) bns.push(m);
    for (const c of ((m as { children?: Map<string, object> }).children ?? new Map()).values()) visit(c);
  };
  visit(net);
  for (const b of bns) (b as { momentum: number }).momentum = 1;
  net.train();
  noGrad(() => tidy(() => net.forward(imageToTensor(gpu, img)))).dispose();
  return net.eval();
}

interface SpeedRow {
  model: string;
  size: string;
  /** Medians. */
  f32_ms: number;
  f16_ms: number;
  ratio: number;
  f32_min_ms: number;
  f16_min_ms: number;
  min_ratio: number;
  /** Medians of the process's CPU time (lavapipe's threads run in it): less sensitive to waiting for a core. */
  f32_cpu_ms: number;
  f16_cpu_ms: number;
  f32_runs_ms: number[];
  f16_runs_ms: number[];
  f32_peak_bytes: number;
  f16_peak_bytes: number;
  load: string;
}

interface ErrorRow {
  model: string;
  photo: string;
  size: string;
  max: number;
  mean: number;
  /** Share of 8-bit output values (rounded, clamped) that differ. */
  changed: number;
  units: string;
}

async function speed(gpu: Gpu, model: string, size: string, forward: (x: Tensor) => Tensor, input: Image): Promise<SpeedRow> {
  const run = async (dt: Dtype) => {
    await gpu.sync();
    gpu.resetPeak();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const y = noGrad(() => tidy(() => forward(cast(imageToTensor(gpu, input), dt))));
    await gpu.sync();
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    y.dispose();
    return { ms, cpu: (c.user + c.system) / 1000, peak: gpu.stats().peakInUseBytes };
  };
  const times: Record<Dtype, number[]> = { f32: [], f16: [] };
  const cpu: Record<Dtype, number[]> = { f32: [], f16: [] };
  const peak: Record<Dtype, number> = { f32: 0, f16: 0 };
  for (const dt of PRECISIONS) peak[dt] = (await run(dt)).peak;
  for (let r = 0; r < RUNS; r++) {
    for (const dt of r % 2 ? [...PRECISIONS].reverse() : PRECISIONS) {
      const t = await run(dt);
      times[dt].push(t.ms);
      cpu[dt].push(t.cpu);
    }
  }
  const row: SpeedRow = {
    model,
    size,
    f32_ms: median(times.f32),
    f16_ms: median(times.f16),
    ratio: median(times.f32) / median(times.f16),
    f32_min_ms: Math.min(...times.f32),
    f16_min_ms: Math.min(...times.f16),
    min_ratio: Math.min(...times.f32) / Math.min(...times.f16),
    f32_cpu_ms: median(cpu.f32),
    f16_cpu_ms: median(cpu.f16),
    f32_runs_ms: times.f32,
    f16_runs_ms: times.f16,
    f32_peak_bytes: peak.f32,
    f16_peak_bytes: peak.f16,
    load: load(),
  };
  const ms = (m: number, lo: number) => `${m.toFixed(0).padStart(6)} (${lo.toFixed(0).padStart(6)})`;
  console.log(
    `${model.padEnd(31)} ${size.padEnd(9)} f32 ${ms(row.f32_ms, row.f32_min_ms)}  f16 ${ms(row.f16_ms, row.f16_min_ms)} ms  ` +
      `f32/f16 ${row.ratio.toFixed(2)} (${row.min_ratio.toFixed(2)})  cpu ${row.f32_cpu_ms.toFixed(0)} / ${row.f16_cpu_ms.toFixed(0)} ms  peak ${(peak.f32 / 2 ** 20).toFixed(0)} → ${(peak.f16 / 2 ** 20).toFixed(0)} MiB  (load ${row.load})`,
  );
  return row;
}

function compare(model: string, photo: string, ref: Image, half: Image, range: number | null): ErrorRow {
  const scale = range ? 255 / range : 1;
  let max = 0;
  let sum = 0;
  let changed = 0;
  const byte = (v: number) => Math.min(255, Math.max(0, Math.round(v)));
  for (let i = 0; i < ref.data.length; i++) {
    const d = Math.abs(half.data[i] - ref.data[i]) * scale;
    max = Math.max(max, d);
    sum += d;
    if (!range && byte(half.data[i]) !== byte(ref.data[i])) changed++;
  }
  const row: ErrorRow = {
    model,
    photo,
    size: `${ref.width}×${ref.height}`,
    max,
    mean: sum / ref.data.length,
    changed: range ? NaN : changed / ref.data.length,
    units: range ? 'levels of the f32 output range' : 'levels (0..255)',
  };
  console.log(`${model.padEnd(31)} ${photo.padEnd(22)} ${row.size.padEnd(9)} max ${max.toFixed(3).padStart(7)}  mean ${row.mean.toFixed(4)}  ${range ? '(range-scaled)' : `8-bit changed ${(100 * row.changed).toFixed(2)}%`}`);
  return row;
}

async function main(): Promise<void> {
  const gpu = await Gpu.create();
  const adapter = `${gpu.adapterInfo.description || gpu.adapterInfo.device} (shader-f16: ${gpu.features.has('shader-f16')})`;
  console.log(`adapter: ${adapter}; load average ${load()}`);
  const photos = readdirSync(CONTENT).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort();
  const style = await loadModel(gpu, fileURLToPath(DEFAULT_MODEL.url));
  const rng = new Rng(1);
  const pe = new TransformerNet(gpu, { variant: 'pytorch-examples', width: 16, rand: () => rng.next() }).eval();
  const calib = fitPhoto(await readImage(join(CONTENT, photos[0])), SR_SIZE, true);
  const sr = a['sr-model'] ? loadSRNet(gpu, await readFileBytes(a['sr-model']), { file: a['sr-model'] }).eval() : calibratedSR(gpu, calib);
  const srName = a['sr-model'] ? `SR ×${sr.scale} (${a['sr-model']})` : `SR ×4 w64 (random, calibrated)`;
  const styleName = `${DEFAULT_MODEL.name}`;
  const speedRows: SpeedRow[] = [];
  const errorRows: ErrorRow[] = [];
  try {
    if (!a.skip!.includes('speed')) {
      console.log(`\nspeed: median (minimum) of ${RUNS} alternating runs after a warm-up, upload + forward between gpu.sync()`);
      const first = await readImage(join(CONTENT, photos[0]));
      for (const s of SIZES) {
        const sq = square(first, s);
        speedRows.push(await speed(gpu, styleName, `${s}²`, (x) => style.forward(x), sq));
        speedRows.push(await speed(gpu, 'pytorch-examples w16 (random)', `${s}²`, (x) => pe.forward(x), sq));
      }
      speedRows.push(await speed(gpu, srName, `${SR_SIZE}² LR`, (x) => sr.forward(x), square(first, SR_SIZE)));
    }
    if (!a.skip!.includes('error')) {
      console.log(`\nerror f16 vs f32 on shared/data/content (style: longer side ${SIDE} px; SR: LR longer side ${SIDE / 4} px)`);
      for (const f of photos) {
        const photo = await readImage(join(CONTENT, f));
        const img = fitPhoto(photo, SIDE);
        const [s32, s16] = [await stylizeImage(gpu, style, img, { precision: 'f32' }), await stylizeImage(gpu, style, img, { precision: 'f16' })];
        errorRows.push(compare(styleName, f, s32, s16, null));
        const [p32, p16] = [await runImageNetwork(gpu, pe, img, { precision: 'f32' }), await runImageNetwork(gpu, pe, img, { precision: 'f16' })];
        let [lo, hi] = [Infinity, -Infinity];
        for (const v of p32.data) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
        errorRows.push(compare('pytorch-examples w16 (random)', f, p32, p16, hi - lo));
        const lr = fitPhoto(photo, SIDE / 4, true);
        const [u32, u16] = [await upscaleImage(sr, lr, { precision: 'f32' }), await upscaleImage(sr, lr, { precision: 'f16' })];
        errorRows.push(compare(srName, f, u32, u16, null));
      }
      const models = [...new Set(errorRows.map((r) => r.model))];
      console.log('\nper model, over the photos: largest max, mean of means');
      for (const m of models) {
        const rs = errorRows.filter((r) => r.model === m);
        console.log(`${m.padEnd(31)} max ${Math.max(...rs.map((r) => r.max)).toFixed(3)}  mean ${(rs.reduce((s, r) => s + r.mean, 0) / rs.length).toFixed(4)}`);
      }
    }
  } finally {
    style.dispose();
    pe.dispose();
    sr.dispose();
  }
  const out = a.json ?? join(fileURLToPath(new URL('./results/', import.meta.url)), `precision-lavapipe-${new Date().toISOString().slice(0, 10)}.json`);
  mkdirSync(join(out, '..'), { recursive: true });
  const machine = '2 CPU cores shared with other jobs (a training run in the background), no GPU: Dawn on Mesa lavapipe';
  writeFileSync(out, JSON.stringify({ adapter, machine, runs: RUNS, speed: speedRows, error: errorRows }, null, 2) + '\n');
  console.log(`\nwrote ${out}`);
  gpu.destroy();
}

await main();
