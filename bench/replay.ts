// What recording a training step saves: the JS time per step (building the graph, checking shapes, allocating,
// encoding: the time until the step's commands are submitted) and the wall time per step, eager (optimizationStep)
// against recorded and replayed (RecordedStep), on the style training step (paper net, VGG-16 to relu4_3 with
// random weights, content / style / TV losses, Adam). Both runs start from the same weights and data and must end
// bitwise equal. On a CPU adapter the GPU time dwarfs the JS time; on a GPU the JS time is what a step costs.
//
//   npx tsx bench/replay.ts [--size 64] [--batch 2] [--width 32] [--steps 6] [--json FILE]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Tensor } from '../src/autograd/tensor.js';
import { Gpu } from '../src/gpu/index.js';
import { lossNetworkFromTensors } from '../src/nets/loss-network.js';
import { TransformerNet } from '../src/nets/transformer-net.js';
import { Adam } from '../src/train/adam.js';
import { StyleTransferLoss } from '../src/train/perceptual-loss.js';
import { Rng } from '../src/train/rng.js';
import { optimizationStep, RecordedStep } from '../src/train/step.js';

const { values: a } = parseArgs({
  options: {
    size: { type: 'string', default: '64' },
    batch: { type: 'string', default: '2' },
    width: { type: 'string', default: '32' },
    steps: { type: 'string', default: '6' },
    json: { type: 'string' },
  },
});
const [size, batch, width, steps] = [a.size, a.batch, a.width, a.steps].map(Number);

const gpu = await Gpu.create();
console.log(`adapter: ${gpu.adapterInfo.description || gpu.adapterInfo.device} (${gpu.adapterInfo.architecture})`);
const r = new Rng(1);
const noise = (n: number) => Float32Array.from({ length: n }, () => 255 * r.next());
const tensors = new Map<string, { data: Float32Array; shape: number[]; dtype: string }>();
const chans = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512];
[0, 2, 5, 7, 10, 12, 14, 17, 19, 21].forEach((idx, k) => {
  const [cin, cout] = [chans[k], chans[k + 1]];
  tensors.set(`features.${idx}.weight`, { data: Float32Array.from({ length: cout * cin * 9 }, () => r.normal(0, Math.sqrt(2 / (9 * cin)))), shape: [cout, cin, 3, 3], dtype: 'F32' });
  tensors.set(`features.${idx}.bias`, { data: new Float32Array(cout), shape: [cout], dtype: 'F32' });
});
(globalThis as any).__log?.('vgg tensors made');
const vgg = lossNetworkFromTensors(gpu, 'vgg16', { tensors, metadata: {} }, { file: 'random VGG-16' });
const style = Tensor.from(gpu, noise(3 * size * size), [1, 3, size, size]);
(globalThis as any).__log?.('vgg');
const loss = new StyleTransferLoss(vgg, style);
(globalThis as any).__log?.('loss');
style.dispose();
const batches = Array.from({ length: steps }, () => noise(batch * 3 * size * size));
const shape: [number, number, number, number] = [batch, 3, size, size];
const initNet = new TransformerNet(gpu, { variant: 'paper', norm: 'instance', width, rand: () => r.next() });
const initData = await Promise.all([...initNet.stateDict()].map(async ([k, t]) => [k, { data: await t.data(), shape: [...t.shape] }] as const));
initNet.dispose();

interface Run {
  mode: string;
  js_ms: number[];
  wall_ms: number[];
  weights: Uint32Array[];
  dispatches: number;
}

async function run(mode: 'eager' | 'recorded'): Promise<Run> {
  const net = new TransformerNet(gpu, { variant: 'paper', norm: 'instance', width });
  net.loadStateDict(new Map(initData));
  net.train();
  const opt = new Adam(net.parameters());
  const rec = mode === 'recorded' ? new RecordedStep(opt) : null;
  const out: Run = { mode, js_ms: [], wall_ms: [], weights: [], dispatches: 0 };
  for (let s = 0; s < steps; s++) {
    await gpu.sync();
    const t0 = performance.now();
    let submitted = 0;
    // The JS part ends when the step waits for its loss values (the one readback of a step).
    const nextBatch = async () => ({ data: batches[s], shape });
    const lossFn = async (b: () => Promise<Tensor>) => {
      const x = await b();
      const t = loss.compute(net.forward(x), x);
      return { total: t.total, content: t.content, style: t.style, tv: t.tv };
    };
    const read = gpu.read.bind(gpu);
    gpu.read = (t) => ((submitted = performance.now()), read(t));
    try {
      if (rec) await rec.run(lossFn, nextBatch);
      else await optimizationStep(opt, () => lossFn(async () => Tensor.from(gpu, batches[s], shape)));
    } finally {
      gpu.read = read;
    }
    await gpu.sync();
    out.js_ms.push(submitted - t0);
    out.wall_ms.push(performance.now() - t0);
    (globalThis as any).__log?.(`${mode} step ${s}`);
  }
  out.dispatches = rec?.dispatches ?? 0;
  out.weights = await Promise.all(net.parameters().map(async (p) => new Uint32Array((await p.data()).buffer)));
  rec?.dispose();
  opt.dispose();
  net.dispose();
  return out;
}

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[xs.length >> 1];
(globalThis as any).__log?.('runs');
const eager = await run('eager');
(globalThis as any).__log?.('eager done');
const recorded = await run('recorded');
const same = eager.weights.every((w, i) => w.length === recorded.weights[i].length && w.every((v, j) => v === recorded.weights[i][j]));
if (!same) throw new Error('replay: the recorded run does not end bitwise equal to the eager one');
// Step 1 of the recorded run is the capture (eager work plus recording); the replays are steps 2.. .
const rows = [
  { mode: 'eager', js_ms: median(eager.js_ms.slice(1)), wall_ms: median(eager.wall_ms.slice(1)) },
  { mode: 'recorded: capture (step 1)', js_ms: recorded.js_ms[0], wall_ms: recorded.wall_ms[0] },
  { mode: `recorded: replay (${recorded.dispatches} dispatches)`, js_ms: median(recorded.js_ms.slice(1)), wall_ms: median(recorded.wall_ms.slice(1)) },
];
console.log(`\nstyle training step, batch ${batch} at ${size}×${size}, width ${width}, ${steps} steps each; medians over steps 2..${steps}; weights bitwise equal: ${same}`);
console.log('| mode | JS ms per step | wall ms per step |\n|---|---:|---:|');
for (const row of rows) console.log(`| ${row.mode} | ${row.js_ms.toFixed(2)} | ${row.wall_ms.toFixed(1)} |`);
console.log(`JS time per step: ${(rows[0].js_ms / rows[2].js_ms).toFixed(1)}× less when replayed`);
if (a.json) writeFileSync(a.json, JSON.stringify({ size, batch, width, steps, rows }, null, 1));
vgg.dispose();
loss.dispose();
gpu.destroy();
