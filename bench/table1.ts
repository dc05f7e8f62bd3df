// Johnson et al. Table 1 on the adapter at hand: seconds for Gatys et al.'s optimisation (L-BFGS, 100 / 300 / 500
// iterations) and for one forward pass of the style transfer network, per image size, and the speed-ups.
//
//   npx tsx bench/table1.ts [--sizes 256,512,1024] [--iters 100,300,500] [--runs 3] [--measure-iters K]
//                           [--warmup W] [--loss-net vgg16|squeezenet1_1] [--weights FILE] [--full] [--json FILE]
//
// How Gatys is timed. An L-BFGS iteration costs one loss evaluation (forward + backward through the loss network,
// e0) plus the two-loop recursion, 2 dots + 2 axpys per stored pair (p per pair); the history grows by one pair
// per iteration up to 100, so iteration k costs e0 + p·min(k − 1, 100). We time K iterations after W warm-up
// iterations of a real run (`await gpu.sync()` at both ends; median of --runs runs), time the two-loop alone on
// random pairs of the image's size to get p, and sum the model over 100 / 300 / 500 iterations (extrapolated).
// --full instead times complete runs of each length (slow; for fast GPUs). On a CPU adapter (llvmpipe,
// SwiftShader) the defaults are K = 3, W = 2; the output says what was measured and what was extrapolated.
//
// The loss network: --weights FILE, else <cache>/<net>.safetensors; for VGG-16 a file without relu4_3 (the
// paper's deepest style layer) is replaced by random weights of the full network up to relu4_3 (the time does
// not depend on the values), and the output says so. The feed-forward network is TransformerNet
// ({ variant: 'paper', norm: 'instance', width: 32 }) with random weights, in eval mode without gradients.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { noGrad, tidy, Tensor } from '../src/autograd/tensor.js';
import { Gpu, type RawTensor } from '../src/gpu/index.js';
import { defaultCacheDir } from '../src/io/fetch.js';
import { createImage } from '../src/io/image.js';
import { LOSS_NETWORK_NAMES, lossNetworkFromTensors, type LossNetwork, type LossNetworkName } from '../src/nets/loss-network.js';
import { loadLossNetwork } from '../src/nets/loss-network-node.js';
import { TransformerNet } from '../src/nets/transformer-net.js';
import { gatys } from '../src/train/gatys.js';
import { twoLoop } from '../src/train/lbfgs.js';
import { Rng } from '../src/train/rng.js';

/** The paper's Table 1 (seconds on a GTX Titan X). */
const PAPER: Record<number, { gatys: Record<number, number>; ff: number }> = {
  256: { gatys: { 100: 3.17, 300: 9.52, 500: 15.86 }, ff: 0.015 },
  512: { gatys: { 100: 10.97, 300: 32.91, 500: 54.85 }, ff: 0.05 },
  1024: { gatys: { 100: 42.89, 300: 128.66, 500: 214.44 }, ff: 0.21 },
};
const HISTORY = 100;
const VGG_CONVS: [number, number, number][] = [
  [0, 3, 64], [2, 64, 64], [5, 64, 128], [7, 128, 128], [10, 128, 256], [12, 256, 256], [14, 256, 256], [17, 256, 512], [19, 512, 512], [21, 512, 512],
];

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const ints = (v: string, name: string) =>
  v.split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: '${s}' is not a positive integer`);
    return n;
  });

function randomVgg(gpu: Gpu): LossNetwork {
  const rng = new Rng(1);
  const tensors = new Map();
  for (const [i, cin, cout] of VGG_CONVS) {
    const std = Math.sqrt(2 / (cin * 9));
    tensors.set(`features.${i}.weight`, { data: Float32Array.from({ length: cout * cin * 9 }, () => rng.normal(0, std)), shape: [cout, cin, 3, 3], dtype: 'F32' });
    tensors.set(`features.${i}.bias`, { data: new Float32Array(cout), shape: [cout], dtype: 'F32' });
  }
  return lossNetworkFromTensors(gpu, 'vgg16', { tensors, metadata: {} }, { file: 'random VGG-16 weights' });
}

async function lossNetwork(gpu: Gpu, name: LossNetworkName, weights: string | undefined): Promise<{ net: LossNetwork; source: string }> {
  const file = weights ?? join(defaultCacheDir(), `${name}.safetensors`);
  if (existsSync(file)) {
    const net = await loadLossNetwork(gpu, name, file);
    if (name !== 'vgg16' || net.taps.includes('relu4_3')) return { net, source: file };
    net.dispose();
    return { net: randomVgg(gpu), source: `random weights, full depth to relu4_3 (${file} stops at ${net.taps.at(-1)})` };
  }
  if (weights) throw new Error(`weight file '${weights}' not found`);
  if (name === 'vgg16') return { net: randomVgg(gpu), source: 'random weights, full depth to relu4_3 (no VGG-16 file in the cache)' };
  throw new Error(`no ${name} weights (${file}); run 'perceptual weights fetch ${name}' or pass --weights FILE`);
}

const noiseImage = (size: number, seed: number) => {
  const rng = new Rng(seed);
  return createImage(size, size, Float32Array.from({ length: 3 * size * size }, () => 255 * rng.next()));
};

/** Seconds per iteration over iterations warmup+1 .. warmup+k of one Gatys run. */
async function gatysPerIter(gpu: Gpu, net: LossNetwork, size: number, warmup: number, k: number): Promise<number> {
  let t0 = 0;
  let t1 = 0;
  await gatys({
    gpu,
    net,
    content: noiseImage(size, 1),
    style: noiseImage(size, 2),
    iters: warmup + k,
    onIter: async (i) => {
      if (i === warmup) {
        await gpu.sync();
        t0 = performance.now();
      }
      if (i === warmup + k) {
        await gpu.sync();
        t1 = performance.now();
      }
    },
  });
  return (t1 - t0) / 1000 / k;
}

/** Seconds per stored pair of the L-BFGS two-loop recursion on vectors of n floats (pairs random). */
async function twoLoopPerPair(gpu: Gpu, n: number, pairs: number, runs: number): Promise<number> {
  const rng = new Rng(3);
  const vec = () => gpu.upload(Float32Array.from({ length: n }, () => rng.normal()), [n], 'bench vector');
  const dirs = Array.from({ length: pairs }, vec);
  const stps = Array.from({ length: pairs }, vec);
  const ro = Array.from({ length: pairs }, () => 1e-3);
  const g = vec();
  const times: number[] = [];
  for (let r = 0; r <= runs; r++) {
    await gpu.sync();
    const t0 = performance.now();
    const d: RawTensor = twoLoop(gpu, g, dirs, stps, ro, 1);
    await gpu.sync();
    if (r > 0) times.push((performance.now() - t0) / 1000);
    gpu.release(d);
  }
  for (const t of [...dirs, ...stps, g]) gpu.release(t);
  return median(times) / pairs;
}

async function feedForward(gpu: Gpu, size: number, runs: number): Promise<number> {
  const net = new TransformerNet(gpu, { variant: 'paper', norm: 'instance', width: 32 });
  net.eval();
  const x = Tensor.from(gpu, noiseImage(size, 4).data, [1, 3, size, size]);
  const times: number[] = [];
  try {
    for (let r = 0; r <= runs; r++) {
      await gpu.sync();
      const t0 = performance.now();
      tidy(() => noGrad(() => void net.forward(x)));
      await gpu.sync();
      if (r > 0) times.push((performance.now() - t0) / 1000);
    }
  } finally {
    x.dispose();
    net.dispose();
  }
  return median(times);
}

/** Σ_{k=1..N} (e0 + p·min(k − 1, m)). */
function modelTotal(N: number, e0: number, p: number, m = HISTORY): number {
  let pairs = 0;
  for (let k = 1; k <= N; k++) pairs += Math.min(k - 1, m);
  return N * e0 + p * pairs;
}

const s = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v >= 0.01 ? v.toFixed(3) : v.toExponential(2));

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '256,512,1024' },
      iters: { type: 'string', default: '100,300,500' },
      runs: { type: 'string', default: '3' },
      'measure-iters': { type: 'string' },
      warmup: { type: 'string' },
      'loss-net': { type: 'string', default: 'vgg16' },
      weights: { type: 'string' },
      full: { type: 'boolean', default: false },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log('usage: npx tsx bench/table1.ts [--sizes 256,512,1024] [--iters 100,300,500] [--runs 3] [--measure-iters K] [--warmup W] [--loss-net vgg16|squeezenet1_1] [--weights FILE] [--full] [--json FILE]');
    return;
  }
  const sizes = ints(values.sizes!, 'sizes');
  const iterCounts = ints(values.iters!, 'iters');
  const runs = ints(values.runs!, 'runs')[0];
  const netName = values['loss-net'] as LossNetworkName;
  if (!LOSS_NETWORK_NAMES.includes(netName)) throw new Error(`--loss-net must be ${LOSS_NETWORK_NAMES.join(' or ')}`);

  const gpu = await Gpu.create();
  try {
    const ai = gpu.adapterInfo;
    const adapter = [ai.vendor, ai.architecture, ai.device, ai.description].filter(Boolean).join(' / ');
    const cpu = /llvmpipe|lavapipe|swiftshader|software/i.test(`${ai.architecture} ${ai.description} ${ai.device}`);
    const K = values['measure-iters'] ? ints(values['measure-iters'], 'measure-iters')[0] : cpu ? 3 : 20;
    const W = values.warmup ? ints(values.warmup, 'warmup')[0] : cpu ? 2 : 10;
    const full = values.full === true;
    const { net, source } = await lossNetwork(gpu, netName, values.weights);
    console.log(`adapter: ${adapter}${cpu ? ' (a CPU implementation of WebGPU)' : ''}`);
    console.log(`loss network: ${net.name} (${source}); content ${net.defaultContentLayers.join(', ')}; style ${net.defaultStyleLayers.join(', ')}`);
    console.log(
      full
        ? `Gatys: complete runs of ${iterCounts.join(' / ')} L-BFGS iterations timed, median of ${runs}`
        : `Gatys: ${K} L-BFGS iterations timed after ${W} warm-up ones (median of ${runs} runs) plus the two-loop cost per ` +
            `history pair; the ${iterCounts.join(' / ')}-iteration times are EXTRAPOLATED from them (e0 + p·min(k−1, ${HISTORY}) per iteration k)`,
    );
    console.log(`feed-forward: TransformerNet paper / instance norm / width 32, one image, median of ${runs} after a warm-up\n`);

    const rows = [];
    for (const size of sizes) {
      const n = 3 * size * size;
      const ff = await feedForward(gpu, size, runs);
      const totals: Record<number, number> = {};
      let perIter: number;
      let e0 = NaN;
      let pPair = NaN;
      if (full) {
        for (const N of iterCounts) {
          const ts: number[] = [];
          for (let r = 0; r < runs; r++) {
            await gpu.sync();
            const t0 = performance.now();
            await gatys({ gpu, net, content: noiseImage(size, 1), style: noiseImage(size, 2), iters: N });
            await gpu.sync();
            ts.push((performance.now() - t0) / 1000);
          }
          totals[N] = median(ts);
        }
        perIter = totals[iterCounts[0]] / iterCounts[0];
      } else {
        const per: number[] = [];
        for (let r = 0; r < runs; r++) per.push(await gatysPerIter(gpu, net, size, W, K));
        perIter = median(per);
        const pairs = Math.min(16, HISTORY);
        pPair = await twoLoopPerPair(gpu, n, pairs, runs);
        // iterations W+1..W+K used min(k − 1, 100) pairs each
        let hMean = 0;
        for (let k = W + 1; k <= W + K; k++) hMean += Math.min(k - 1, HISTORY) / K;
        e0 = Math.max(perIter - pPair * hMean, 0);
        for (const N of iterCounts) totals[N] = modelTotal(N, e0, pPair);
      }
      const speedup = Object.fromEntries(iterCounts.map((N) => [N, totals[N] / ff]));
      const row = {
        size,
        gatys_s_per_iter: perIter,
        gatys_eval_s: e0,
        lbfgs_pair_s: pPair,
        gatys_s: totals,
        feedforward_s: ff,
        speedup,
        extrapolated: !full,
        measured_iters: full ? null : K,
        warmup_iters: full ? null : W,
        runs,
        paper: PAPER[size] ?? null,
        adapter,
        loss_net: `${net.name} (${source})`,
      };
      rows.push(row);
      const paper = PAPER[size];
      console.log(
        `${size}x${size}: Gatys ${s(perIter)} s/it measured${full ? '' : ` (eval ${s(e0)} s + ${s(pPair)} s per history pair)`}; ` +
          `${iterCounts.map((N) => `${N} it ${s(totals[N])} s`).join(', ')}; feed-forward ${s(ff)} s`,
      );
      if (paper) console.log(`  paper (Titan X): ${iterCounts.map((N) => `${N} it ${paper.gatys[N] ?? '-'} s`).join(', ')}; feed-forward ${paper.ff} s`);
    }

    // The table in the paper's layout, ours beside the paper's.
    const head = `| size | ${iterCounts.map((N) => `Gatys ${N} it`).join(' | ')} | feed-forward | speed-up (${iterCounts.join('/')}) |`;
    console.log(`\n${full ? '' : 'Gatys columns extrapolated from the measured per-iteration cost (see above).\n'}${head}`);
    console.log(`|${'---|'.repeat(iterCounts.length + 3)}`);
    for (const r of rows) {
      const p = r.paper;
      const cell = (ours: number, theirs: number | undefined) => `${s(ours)}${theirs !== undefined ? ` (${theirs})` : ''}`;
      console.log(
        `| ${r.size}×${r.size} | ${iterCounts.map((N) => cell(r.gatys_s[N], p?.gatys[N])).join(' | ')} | ${cell(r.feedforward_s, p?.ff)} | ` +
          `${iterCounts.map((N) => `${s(r.speedup[N])}×`).join(' / ')}${p ? ` (${iterCounts.map((N) => (p.gatys[N] ? `${Math.round(p.gatys[N] / p.ff)}×` : '-')).join(' / ')})` : ''} |`,
      );
    }
    console.log('(seconds; the paper\'s GTX Titan X numbers in parentheses)');
    if (values.json) {
      writeFileSync(values.json, JSON.stringify(rows, null, 2) + '\n');
      console.log(`wrote ${values.json}`);
    }
    net.dispose();
  } finally {
    gpu.destroy();
  }
}

main().catch((e: unknown) => {
  console.error(`table1: ${(e as Error).message}`);
  process.exitCode = 1;
});
