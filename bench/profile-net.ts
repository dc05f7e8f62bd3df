// Where the time goes: GPU time of every kernel of the style network's forward pass and of one style training
// step (network forward, loss network, backward, Adam), from timestamp queries (Gpu.startProfile), as a table
// sorted by time with GFLOP/s for the convolutions and GB/s (bytes of the tensors bound) for the rest.
//
//   npx tsx bench/profile-net.ts [--size 256] [--train-size 256] [--batch 4] [--width 32] [--skip forward|train|sr]
//                                [--sr-size 288] [--sr-loss feat|pixel] [--top 30] [--json FILE]
//
// While profiling, every dispatch runs in a compute pass of its own (the timestamps bracket passes), so the sum
// is a little above an unprofiled run; the wall time of unprofiled runs is printed alongside. The training step
// uses the paper's loss network, VGG-16 to relu4_3 (content relu2_2; style relu1_2, relu2_2, relu3_3, relu4_3)
// with random weights: the time does not depend on their values. Rows name the network stage that ran the
// kernel (forward) or the phase (train: net / loss / backward / adam); backward rows of a convolution also name
// the forward layer with the same input and output shapes.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Tensor, noGrad, tidy } from '../src/autograd/tensor.js';
import { Gpu, numel } from '../src/gpu/index.js';
import type { ProfileRecord } from '../src/gpu/profiler.js';
import { lossNetworkFromTensors } from '../src/nets/loss-network.js';
import { TransformerNet } from '../src/nets/transformer-net.js';
import { SRNet } from '../src/nets/sr-net.js';
import { makeLowRes } from '../src/api/train-sr.js';
import { add, mulScalar } from '../src/layers/elementwise.js';
import { mseLoss, totalVariation } from '../src/layers/loss.js';
import { featureLoss, targetFeatures } from '../src/train/perceptual-loss.js';
import { Adam } from '../src/train/adam.js';
import { StyleTransferLoss } from '../src/train/perceptual-loss.js';
import { Rng } from '../src/train/rng.js';

const { values: a } = parseArgs({
  options: {
    size: { type: 'string', default: '256' },
    'train-size': { type: 'string', default: '256' },
    batch: { type: 'string', default: '4' },
    width: { type: 'string', default: '32' },
    skip: { type: 'string', multiple: true, default: [] },
    'sr-size': { type: 'string', default: '288' },
    'sr-loss': { type: 'string', default: 'feat' },
    top: { type: 'string', default: '30' },
    json: { type: 'string' },
  },
});
const size = Number(a.size);
const trainSize = Number(a['train-size']);
const batch = Number(a.batch);
const top = Number(a.top);

/** Useful FLOPs of a convolution kernel from its bound shapes and uniforms; null for other kernels. */
export function convFlops(r: ProfileRecord): number | null {
  const s = r.shapes;
  const u = r.uniforms as Record<string, number>;
  if (/^conv(2d|Transpose2d)\.backward_weight$/.test(r.kernel)) return 2 * u.N * u.Ha * u.Wa * u.total;
  if (/^conv(2d|Transpose2d)\.forward/.test(r.kernel) && s.x && s.y && s.wt) {
    const [N, C, H, W] = s.x;
    const taps = s.wt[0] / C; // the repacked weight is [C·kH·kW, channels]
    // A transposed conv scatters every input pixel through every tap; a conv gathers every tap per output pixel.
    return r.kernel.startsWith('convTranspose2d') ? 2 * N * H * W * C * taps * s.y[1] : 2 * numel(s.y) * C * taps;
  }
  return null;
}

interface Row {
  phase: string;
  where: string;
  kernel: string;
  shapes: string;
  calls: number;
  ms: number;
  flops: number | null;
  bytes: number;
}

const fmtShapes = (s: Record<string, readonly number[]>) => Object.entries(s).map(([k, v]) => `${k}[${v.join(',')}]`).join(' ');

function table(title: string, recs: ProfileRecord[], where: (r: ProfileRecord) => string, wallMs: number): Row[] {
  const rows = new Map<string, Row>();
  for (const r of recs) {
    const [phase, w] = [r.label.split(':')[0], where(r)];
    const shapes = fmtShapes(r.shapes);
    const key = `${phase}|${w}|${r.kernel}|${shapes}`;
    const row = rows.get(key) ?? { phase, where: w, kernel: r.kernel, shapes, calls: 0, ms: 0, flops: convFlops(r) === null ? null : 0, bytes: 0 };
    row.calls++;
    row.ms += r.ms;
    if (row.flops !== null) row.flops += convFlops(r)!;
    row.bytes += Object.values(r.shapes).reduce((t, sh) => t + 4 * numel(sh), 0);
    rows.set(key, row);
  }
  const list = [...rows.values()].sort((x, y) => y.ms - x.ms);
  const total = list.reduce((t, r) => t + r.ms, 0);
  console.log(`\n## ${title}: ${recs.length} dispatches, ${total.toFixed(0)} ms GPU time profiled, ${wallMs.toFixed(0)} ms wall unprofiled (median)`);
  const byPhase = new Map<string, number>();
  for (const r of list) byPhase.set(r.phase, (byPhase.get(r.phase) ?? 0) + r.ms);
  console.log([...byPhase].map(([p, ms]) => `${p} ${ms.toFixed(0)} ms (${((100 * ms) / total).toFixed(0)}%)`).join(', '));
  console.log('| ms | % | rate | phase | layer | kernel | calls | shapes |\n|---:|---:|---:|---|---|---|---:|---|');
  for (const r of list.slice(0, top)) {
    const rate = r.flops !== null ? `${(r.flops / r.ms / 1e6).toFixed(2)} GFLOP/s` : `${(r.bytes / r.ms / 1e6).toFixed(2)} GB/s`;
    console.log(`| ${r.ms.toFixed(1)} | ${((100 * r.ms) / total).toFixed(1)} | ${rate} | ${r.phase} | ${r.where} | ${r.kernel} | ${r.calls} | ${r.shapes} |`);
  }
  const convMs = list.filter((r) => r.flops !== null).reduce((t, r) => t + r.ms, 0);
  const convFl = list.reduce((t, r) => t + (r.flops ?? 0), 0);
  console.log(`convolutions: ${convMs.toFixed(0)} ms (${((100 * convMs) / total).toFixed(0)}%), ${(convFl / convMs / 1e6).toFixed(2)} GFLOP/s overall`);
  return list;
}

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[xs.length >> 1];

async function wall(gpu: Gpu, runs: number, f: () => void): Promise<number> {
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) {
    await gpu.sync();
    const t0 = performance.now();
    f();
    await gpu.sync();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

function noise(gpu: Gpu, shape: number[], seed: number): Tensor {
  const r = new Rng(seed);
  return Tensor.from(gpu, Float32Array.from({ length: numel(shape) }, () => 255 * r.next()), shape);
}

/** VGG-16 to relu4_3 with He-initialised random weights. */
function randomVgg16(gpu: Gpu) {
  const r = new Rng(1);
  const chans = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512];
  const idx = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21];
  const tensors = new Map();
  idx.forEach((i, k) => {
    const [cin, cout] = [chans[k], chans[k + 1]];
    const std = Math.sqrt(2 / (9 * cin));
    tensors.set(`features.${i}.weight`, { data: Float32Array.from({ length: cout * cin * 9 }, () => r.normal(0, std)), shape: [cout, cin, 3, 3], dtype: 'F32' });
    tensors.set(`features.${i}.bias`, { data: new Float32Array(cout), shape: [cout], dtype: 'F32' });
  });
  return lossNetworkFromTensors(gpu, 'vgg16', { tensors, metadata: {} }, { file: 'random VGG-16' });
}

/** Profiles one training step (net → loss → backward → Adam) after two unprofiled ones (their median wall time). */
async function profileStep(title: string, opt: Adam, forward: (label: (phase: string) => void) => Tensor, lossOf: (y: Tensor) => Tensor): Promise<Row[]> {
  const step = (label: (phase: string) => void) =>
    tidy(() => {
      label('net');
      const y = forward(label);
      label('loss');
      const total = lossOf(y);
      label('backward');
      total.backward();
      label('adam');
      opt.step();
      opt.zeroGrad();
    });
  const wallMs = await wall(gpu, 2, () => step(() => {}));
  gpu.startProfile();
  step((phase) => (gpu.profileLabel = phase));
  const recs = await gpu.stopProfile();
  const convLayers: { name: string; x: string; y: string }[] = [];
  for (const r of recs) {
    if (r.label === 'net' && /^conv(2d|Transpose2d)\.forward/.test(r.kernel)) convLayers.push({ name: `net conv ${convLayers.length + 1}`, x: String(r.shapes.x), y: String(r.shapes.y) });
  }
  // A backward kernel of a forward conv binds both that conv's input-shaped and output-shaped tensors.
  const where = (r: ProfileRecord) => {
    if (r.label !== 'backward') return '';
    const bound = new Set(Object.values(r.shapes).map(String));
    return convLayers.find((c) => bound.has(c.x) && bound.has(c.y))?.name ?? '';
  };
  return table(title, recs, where, wallMs);
}

const gpu = await Gpu.create();
console.log(`adapter: ${gpu.adapterInfo.description || gpu.adapterInfo.device} (${gpu.adapterInfo.architecture})`);
const wr = new Rng(2);
const net = new TransformerNet(gpu, { variant: 'paper', norm: 'instance', width: Number(a.width), rand: () => wr.next() });
const out: Record<string, Row[]> = {};

if (!a.skip.includes('forward')) {
  net.eval();
  const x = noise(gpu, [1, 3, size, size], 3);
  const run = (trace?: (name: string) => void) => tidy(() => noGrad(() => void net.forward(x, { trace })));
  const wallMs = await wall(gpu, 3, () => run());
  // Dispatches before the trace call that names a stage belong to that stage.
  const stages: string[] = [];
  gpu.startProfile();
  gpu.profileLabel = 'forward:0';
  run((name) => {
    stages.push(name);
    gpu.profileLabel = `forward:${stages.length}`;
  });
  const recs = await gpu.stopProfile();
  out.forward = table(`style net forward ${size}×${size}`, recs, (r) => stages[Number(r.label.split(':')[1])] ?? '?', wallMs);
  x.dispose();
}

if (!a.skip.includes('train')) {
  net.train();
  const vgg = randomVgg16(gpu);
  const styleImg = noise(gpu, [1, 3, trainSize, trainSize], 4);
  const loss = new StyleTransferLoss(vgg, styleImg, { contentLayers: ['relu2_2'], styleLayers: ['relu1_2', 'relu2_2', 'relu3_3', 'relu4_3'] });
  styleImg.dispose();
  const opt = new Adam(net.parameters());
  const x = noise(gpu, [batch, 3, trainSize, trainSize], 5);
  out.train = await profileStep(`style training step, batch ${batch} at ${trainSize}×${trainSize}, VGG-16 loss`, opt, () => net.forward(x), (y) => loss.compute(y, x).total);
  opt.dispose();
  x.dispose();
  loss.dispose();
  vgg.dispose();
}
if (!a.skip.includes('sr')) {
  const hrSize = Number(a['sr-size']);
  const sr = new SRNet(gpu, { scale: 4, rand: () => wr.next() });
  sr.train();
  const vgg = a['sr-loss'] === 'feat' ? randomVgg16(gpu) : null;
  const opt = new Adam(sr.parameters());
  const hr = noise(gpu, [batch, 3, hrSize, hrSize], 6);
  out.sr = await profileStep(
    `SR ×4 training step, batch ${batch} at ${hrSize}×${hrSize}, ${vgg ? 'l_feat (VGG-16 relu2_2)' : 'l_pixel'}`,
    opt,
    (label) => {
      label('lowres');
      const lr = makeLowRes(gpu, hr, 4);
      label('net');
      return sr.forward(lr);
    },
    (y) => {
      const feat = vgg ? featureLoss(vgg, y, targetFeatures(vgg, hr, ['relu2_2']), ['relu2_2']) : mseLoss(y, hr);
      return add(feat, mulScalar(totalVariation(y), 1e-6));
    },
  );
  hr.dispose();
  opt.dispose();
  vgg?.dispose();
  sr.dispose();
}
if (a.json) writeFileSync(a.json, JSON.stringify(out, null, 1));
net.dispose();
gpu.destroy();
