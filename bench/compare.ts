// Our engine against TF.js's WebGPU backend, side by side in one process on one GPUDevice (issue #7).
//
//   npx tsx bench/compare.ts [--quick] [--runs N] [--only SUBSTRING] [--json FILE]
//
// Workloads (same math, shapes and random inputs in both engines; TF.js in NHWC, its native layout):
//   op   conv 3×3 128→128 @64², conv 9×9 3→32 @256², conv 9×9 32→3 @256² (bias, zero padding, batch 1),
//        transposed conv 3×3 stride 2 128→64 64²→128² (the style net's), affine instance norm 128 ch @64²;
//   net  the style net forward (TransformerNet paper / instance norm / width 32) at 256² and 512², and a full
//        style-training step at batch 4, 256²: net forward + VGG-16 to relu4_3 (random weights: the time does
//        not depend on them) + content (relu2_2) / style (relu1_2, 2_2, 3_3, 4_3) / TV losses + backward + Adam.
//        --quick: nets at 128², the training step at 64² batch 2 (minutes on lavapipe, not hours).
// Each workload: one warm-up run of each engine (pipeline compilation), then N runs alternating ours / TF.js,
// each between two device synchronisations (ours: gpu.sync(); TF.js: submit + queue.onSubmittedWorkDone), inputs
// and weights uploaded before; medians reported. Before timing, each workload checks that both engines compute the
// same thing: relative L2 of the outputs (the training step: of the loss and of all parameter gradients); a
// mismatch above 1e-3 stops the bench. Memory: every TF.js tensor is disposed (counted), and our buffer pool must
// create no buffer in the last run and hold no more than before the workload.
// GFLOP/s count convolution multiply-adds ×2 only. Ratio = TF.js ms / our ms (> 1: we are faster).
import { loadavg } from 'node:os';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { noGrad, tidy, tidyAsync, Tensor } from '../src/autograd/tensor.js';
import { Gpu } from '../src/gpu/index.js';
import { conv2d, convTranspose2d } from '../src/layers/conv.js';
import { instanceNorm2d } from '../src/layers/norm.js';
import { lossNetworkFromTensors, preprocessParams } from '../src/nets/loss-network.js';
import { TransformerNet } from '../src/nets/transformer-net.js';
import { Adam } from '../src/train/adam.js';
import { StyleTransferLoss } from '../src/train/perceptual-loss.js';
import { Rng } from '../src/train/rng.js';
import { convFilter, convTransposeFilter, loadGradients, nchwData, nhwcTensor, relL2, startPeer, tf, type Peer } from './tfjs-peer.js';
import { convFlops, convSpec, instanceNorm, ourLayout, paperConvs, tfGram, tfParams, tfStyleLoss, tfStyleNet, TfVgg16, type ConvSpec } from './tfjs-style-net.js';

const TOLERANCE = 1e-3;
/** The TF.js side, started once in main (the workload builders upload to it). */
let peer: Peer;

interface Row {
  workload: string;
  level: 'op' | 'net';
  size: string;
  ours_ms: number;
  peer_ms: number;
  ratio: number;
  gflops: number | null;
  peer_gflops: number | null;
  rel_l2: number;
  runs: number;
  ours_runs_ms: number[];
  peer_runs_ms: number[];
  adapter: string;
  layers?: { name: string; shape: string; ms: number; gflops: number }[];
}

/** Both engines' versions of one workload, built with identical data. */
interface Pair {
  /** Records one run on our engine (synchronised by the caller). */
  ours(): void;
  /** Records one run on TF.js (synchronised by the caller). */
  peer(): void;
  /** Relative L2 between the engines' results (before any timed run). */
  check(): Promise<{ relL2: number; what: string }>;
  dispose(): void;
}

interface Workload {
  name: string;
  level: 'op' | 'net';
  size: string;
  flops: number | null;
  build(): Promise<Pair>;
  /** Extra per-layer timing of our engine after the comparison (the net forward). */
  layers?: () => Promise<Row['layers']>;
}

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const t0 = performance.now();
const log = (msg: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${msg}`);
const fmt = (v: number | null, d = 1) => (v === null ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(d));

const rng = new Rng(7);
const uniform = (n: number, lo: number, hi: number) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rng.next());
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** One synchronised run of fn; returns milliseconds. */
async function timed(sync: () => Promise<void>, fn: () => void): Promise<number> {
  await sync();
  const start = performance.now();
  fn();
  await sync();
  return performance.now() - start;
}

/** Checks agreement, then times one warm-up and `runs` alternating runs of each engine. */
async function measure(gpu: Gpu, w: Workload, p: Pair, runs: number): Promise<{ err: number; ours: number[]; theirs: number[] }> {
  const { relL2: err, what } = await p.check();
  log(`${w.name} ${w.size}: ${what} relative L2 ours vs TF.js = ${err.toExponential(2)}`);
  if (!(err <= TOLERANCE)) throw new Error(`${w.name} ${w.size}: the engines disagree (${what} relative L2 ${err.toExponential(2)} > ${TOLERANCE})`);
  const ours: number[] = [];
  const theirs: number[] = [];
  let created = 0;
  for (let r = 0; r <= runs; r++) {
    // The first runs may still grow the pool (Adam's moments, the first recycling); the last one must not.
    if (r === runs) created = gpu.stats().created;
    const a = await timed(() => gpu.sync(), () => p.ours());
    const live = tf.memory().numTensors;
    const b = await timed(() => peer.sync(), () => p.peer());
    // The warm-up may create state that lives on (Adam's moments), later runs nothing.
    if (r > 0 && tf.memory().numTensors !== live) throw new Error(`${w.name}: a TF.js run leaked ${tf.memory().numTensors - live} tensors`);
    if (r > 0) {
      ours.push(a);
      theirs.push(b);
    }
    log(`${w.name} ${w.size}: ${r === 0 ? 'warm-up' : `run ${r}/${runs}`}: ours ${fmt(a)} ms, TF.js ${fmt(b)} ms`);
  }
  const grew = gpu.stats().created - created;
  if (grew) log(`${w.name}: NOTE our pool created ${grew} buffers in the last run (memory not flat)`);
  return { err, ours, theirs };
}

async function compare(gpu: Gpu, w: Workload, runs: number, adapter: string): Promise<Row> {
  const before = gpu.stats().inUseBytes;
  const tensorsBefore = tf.memory().numTensors;
  log(`${w.name} ${w.size}: building both versions`);
  const p = await w.build();
  let m: Awaited<ReturnType<typeof measure>>;
  let layers: Row['layers'];
  try {
    m = await measure(gpu, w, p, runs);
    layers = await w.layers?.();
  } finally {
    p.dispose();
    await gpu.sync();
    await peer.sync();
  }
  const leakedOurs = gpu.stats().inUseBytes - before;
  const leakedTf = tf.memory().numTensors - tensorsBefore;
  if (leakedOurs || leakedTf) throw new Error(`${w.name}: left ${leakedOurs} bytes of our buffers and ${leakedTf} TF.js tensors behind`);
  const o = median(m.ours);
  const t = median(m.theirs);
  const gf = (ms: number) => (w.flops === null ? null : w.flops / ms / 1e6);
  return {
    workload: w.name,
    level: w.level,
    size: w.size,
    ours_ms: o,
    peer_ms: t,
    ratio: t / o,
    gflops: gf(o),
    peer_gflops: gf(t),
    rel_l2: m.err,
    runs,
    ours_runs_ms: m.ours,
    peer_runs_ms: m.theirs,
    adapter,
    ...(layers ? { layers } : {}),
  };
}

// ---- op workloads ------------------------------------------------------------------------------------

/** Our conv of a spec (bias, zero padding) on x. */
function ourConv(c: ConvSpec, x: Tensor, w: Tensor, b: Tensor): Tensor {
  const opts = { stride: c.stride, padding: c.pad };
  return c.transpose ? convTranspose2d(x, w, b, { ...opts, outputPadding: c.stride - 1 }) : conv2d(x, w, b, opts);
}

function convWorkload(gpu: Gpu, c: ConvSpec): Workload {
  return {
    name: c.name,
    level: 'op',
    size: `${c.inH}x${c.inW}`,
    flops: convFlops(c),
    async build() {
      const xs = [1, c.cin, c.inH, c.inW];
      const ws = c.transpose ? [c.cin, c.cout, c.k, c.k] : [c.cout, c.cin, c.k, c.k];
      const bound = 1 / Math.sqrt(ws[1] * c.k * c.k);
      const [xd, wd, bd] = [uniform(numel(xs), -1, 1), uniform(numel(ws), -bound, bound), uniform(c.cout, -bound, bound)];
      const [x, wt, b] = [Tensor.from(gpu, xd, xs), Tensor.from(gpu, wd, ws), Tensor.from(gpu, bd, [c.cout])];
      const tx = nhwcTensor(xd, xs);
      const tw = c.transpose ? convTransposeFilter(wd, ws) : convFilter(wd, ws);
      const tb = tf.tensor1d(bd);
      peer.upload(tx, tw, tb);
      // TF.js's best public paths: fused conv + bias; 'same' equals padding k/2 at stride 1.
      const theirs = () =>
        c.transpose
          ? tf.add(tf.conv2dTranspose(tx, tw, [1, c.outH, c.outW, c.cout], c.stride, c.pad), tb)
          : tf.fused.conv2d({ x: tx, filter: tw, bias: tb, strides: c.stride, pad: c.stride === 1 && 2 * c.pad === c.k - 1 ? 'same' : c.pad });
      return opPair([x, wt, b], () => ourConv(c, x, wt, b), theirs, [tx, tw, tb]);
    },
  };
}

function instanceNormWorkload(gpu: Gpu, C: number, size: number): Workload {
  return {
    name: `instance norm ${C}ch`,
    level: 'op',
    size: `${size}x${size}`,
    flops: null,
    async build() {
      const xs = [1, C, size, size];
      const [xd, gd, bd] = [uniform(numel(xs), -2, 3), uniform(C, 0.5, 1.5), uniform(C, -0.5, 0.5)];
      const [x, g, b] = [Tensor.from(gpu, xd, xs), Tensor.from(gpu, gd, [C]), Tensor.from(gpu, bd, [C])];
      const [tx, tg, tb] = [nhwcTensor(xd, xs), tf.tensor1d(gd), tf.tensor1d(bd)];
      peer.upload(tx, tg, tb);
      return opPair([x, g, b], () => instanceNorm2d(x, g, b), () => instanceNorm(tx, tg, tb), [tx, tg, tb]);
    },
  };
}

function opPair(ourInputs: Tensor[], ours: () => Tensor, theirs: () => tf.Tensor, tfInputs: tf.Tensor[], offset = 0): Pair {
  return {
    ours: () => tidy(() => noGrad(() => void ours())),
    peer: () => tf.tidy(() => void theirs()),
    async check() {
      const a = tidy(() => noGrad(ours));
      const ad = await a.data();
      const shape = a.shape.join('×');
      a.dispose();
      const b = tf.tidy(theirs);
      const bd = await nchwData(b);
      b.dispose();
      const shift = (d: Float32Array) => (offset ? d.map((v) => v - offset) : d);
      return { relL2: relL2(shift(ad), shift(bd)), what: `output ${shape}` };
    },
    dispose() {
      for (const t of ourInputs) t.dispose();
      tf.dispose(tfInputs);
    },
  };
}

// ---- net workloads -----------------------------------------------------------------------------------

const WIDTH = 32;

/** Our paper / instance-norm / width-32 style net with seeded weights and random (non-trivial) norm affines. */
async function styleNet(gpu: Gpu): Promise<{ net: TransformerNet; state: Map<string, { data: Float32Array; shape: readonly number[] }> }> {
  const net = new TransformerNet(gpu, { variant: 'paper', norm: 'instance', width: WIDTH, rand: () => rng.next() });
  const norms = new Map<string, { data: Float32Array; shape: readonly number[] }>();
  for (const [k, t] of net.stateDict()) {
    if (/norm\d\.weight$/.test(k)) norms.set(k, { data: uniform(t.size, 0.5, 1.5), shape: t.shape });
    if (/norm\d\.bias$/.test(k)) norms.set(k, { data: uniform(t.size, -0.5, 0.5), shape: t.shape });
  }
  net.loadStateDict(norms, false);
  const state = new Map<string, { data: Float32Array; shape: readonly number[] }>();
  for (const [k, t] of net.stateDict()) state.set(k, { data: await t.data(), shape: t.shape });
  return { net, state };
}

function netForwardWorkload(gpu: Gpu, size: number, runs: number): Workload {
  const convs = paperConvs(size, size, WIDTH);
  let layers: Row['layers'];
  return {
    name: 'style net forward',
    level: 'net',
    size: `${size}x${size}`,
    flops: convs.reduce((s, c) => s + convFlops(c), 0),
    async build() {
      const { net, state } = await styleNet(gpu);
      net.eval();
      const xs = [1, 3, size, size];
      const xd = uniform(numel(xs), 0, 255);
      const x = Tensor.from(gpu, xd, xs);
      const params = tfParams(state, false);
      const tx = nhwcTensor(xd, xs);
      peer.upload(tx, ...params.values());
      // Compared without the constant 127.5 of the output map, which would hide differences.
      const pair = opPair([x], () => net.forward(x), () => tfStyleNet(params, tx), [tx, ...params.values()], 127.5);
      const dispose = pair.dispose;
      return {
        ...pair,
        dispose() {
          dispose();
          net.dispose();
        },
      };
    },
    // Each of our convs alone (with the net's shapes), synchronised per run.
    layers: async () => {
      const { net } = await styleNet(gpu);
      const sd = net.stateDict();
      layers = [];
      for (const c of convs) {
        const x = Tensor.from(gpu, uniform(c.cin * c.inH * c.inW, -1, 1), [1, c.cin, c.inH, c.inW]);
        const run = () => tidy(() => noGrad(() => void ourConv(c, x, sd.get(`${c.name}.weight`)!, sd.get(`${c.name}.bias`)!)));
        const ts: number[] = [];
        for (let r = 0; r <= runs; r++) {
          const t = await timed(() => gpu.sync(), run);
          if (r > 0) ts.push(t);
        }
        x.dispose();
        const ms = median(ts);
        layers.push({ name: c.name, shape: `${c.cin}→${c.cout} k${c.k}${c.transpose ? ' s½' : c.stride > 1 ? ' s2' : ''} ${c.inH}²→${c.outH}²`, ms, gflops: convFlops(c) / ms / 1e6 });
      }
      net.dispose();
      return layers;
    },
  };
}

/** VGG-16 convs to conv4_3: [out, in] per conv, He-initialised weights. */
const VGG_BLOCKS: [number, number][] = [[64, 2], [128, 2], [256, 3], [512, 3]];
function randomVgg(): { w: Float32Array; wShape: number[]; b: Float32Array }[] {
  const out: { w: Float32Array; wShape: number[]; b: Float32Array }[] = [];
  let cin = 3;
  for (const [c, n] of VGG_BLOCKS) {
    for (let j = 0; j < n; j++, cin = c) {
      const s = Math.sqrt(6 / (cin * 9)); // uniform with the variance of He's normal init
      out.push({ w: uniform(c * cin * 9, -s, s), wShape: [c, cin, 3, 3], b: uniform(c, -0.1, 0.1) });
    }
  }
  return out;
}

/** Conv FLOPs of VGG-16 on an S×S image up to the last conv of `blocks` (1..4) blocks. */
function vggFlops(S: number, blocks: number): number {
  let f = 0;
  let cin = 3;
  VGG_BLOCKS.slice(0, blocks).forEach(([c, n], b) => {
    for (let j = 0; j < n; j++, cin = c) f += 2 * (S >> b) ** 2 * c * cin * 9;
  });
  return f;
}

function trainingWorkload(gpu: Gpu, size: number, batch: number): Workload {
  // Forward, input gradient and weight gradient of the net; VGG to relu4_3 on ŷ forward and backward (input
  // gradient only: frozen), and to relu2_2 on the content images (targets).
  const net = paperConvs(size, size, WIDTH).reduce((s, c) => s + convFlops(c), 0);
  const flops = batch * (3 * net + 2 * vggFlops(size, 4) + vggFlops(size, 2));
  return {
    name: 'style training step',
    level: 'net',
    size: `b${batch} ${size}x${size}`,
    flops,
    async build() {
      await loadGradients();
      const { net, state } = await styleNet(gpu);
      net.train();
      const convs = randomVgg();
      const idx = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21];
      const tensors = new Map<string, { data: Float32Array; shape: number[]; dtype: string }>();
      convs.forEach((c, i) => {
        tensors.set(`features.${idx[i]}.weight`, { data: c.w, shape: c.wShape, dtype: 'F32' });
        tensors.set(`features.${idx[i]}.bias`, { data: c.b, shape: [c.b.length], dtype: 'F32' });
      });
      const vgg = lossNetworkFromTensors(gpu, 'vgg16', { tensors, metadata: {} }, { preprocess: 'rgb01_imagenet_norm', file: 'random VGG-16' });
      const styleData = uniform(3 * size * size, 0, 255);
      const style = Tensor.from(gpu, styleData, [1, 3, size, size]);
      const loss = new StyleTransferLoss(vgg, style);
      style.dispose();
      const opt = new Adam(net.parameters());
      const xs = [batch, 3, size, size];
      const xd = uniform(numel(xs), 0, 255);
      const x = Tensor.from(gpu, xd, xs);

      const pre = preprocessParams(vgg.preprocess);
      if (pre.perm.some((p, i) => p !== i)) throw new Error(`compare: preprocess ${vgg.preprocess} reorders channels`);
      const tvgg = new TfVgg16(convs, pre.scale, pre.shift);
      const vars = tfParams(state, true);
      const names = net.namedParameters().map(([k]) => k);
      const varList = names.map((k) => vars.get(k) as tf.Variable);
      const tx = nhwcTensor(xd, xs);
      const grams = tf.tidy(() => {
        const f = tvgg.features(nhwcTensor(styleData, [1, 3, size, size]), Object.keys(loss.styleLayers));
        return Object.fromEntries([...f].map(([k, v]) => [k, tfGram(v)]));
      });
      const { contentLayers, styleLayers, contentWeight, styleWeight, tvWeight } = loss;
      const spec = { contentLayers, styleLayers, contentWeight, styleWeight, tvWeight, grams };
      const tloss = () => tfStyleLoss(tvgg, tfStyleNet(vars, tx, true), tx, spec);
      const topt = tf.train.adam(opt.lr, opt.betas[0], opt.betas[1], opt.eps);
      peer.upload(tx);
      return {
        ours: () =>
          tidy(() => {
            loss.compute(net.forward(x), x).total.backward();
            opt.step();
            opt.zeroGrad();
          }),
        peer: () => tf.tidy(() => void topt.minimize(tloss, false, varList)),
        async check() {
          let lo = 0;
          let go: Float32Array[] = [];
          await tidyAsync(async () => {
            const t = loss.compute(net.forward(x), x).total;
            t.backward();
            lo = (await t.data())[0];
            go = await Promise.all(net.namedParameters().map(([, p]) => p.grad!.data()));
          });
          net.zeroGrad();
          const { value, grads } = tf.variableGrads(tloss, varList);
          const lt = (await value.data())[0];
          const gl = names.map((k) => tf.tidy(() => ourLayout(grads[`peer.${k}`]).clone()));
          const gt = await Promise.all(gl.map((g) => g.data()));
          tf.dispose([value, ...Object.values(grads), ...gl]);
          const flat = (a: ArrayLike<number>[]) => Float64Array.from(a.flatMap((v) => Array.from(v)));
          const eg = relL2(flat(go), flat(gt));
          const el = Math.abs(lo - lt) / Math.abs(lt);
          log(`style training step: loss ours ${lo.toPrecision(7)} TF.js ${lt.toPrecision(7)} (rel ${el.toExponential(2)}); all gradients rel L2 ${eg.toExponential(2)}`);
          return { relL2: Math.max(el, eg), what: 'loss and gradients' };
        },
        dispose() {
          x.dispose();
          opt.dispose();
          loss.dispose();
          vgg.dispose();
          net.dispose();
          topt.dispose();
          tvgg.dispose();
          tf.dispose([tx, ...vars.values(), ...Object.values(grams)]);
        },
      };
    },
  };
}

// ---- main --------------------------------------------------------------------------------------------

function printTable(rows: Row[]): void {
  console.log('\n| workload | level | size | ours ms | TF.js ms | ratio (TF.js/ours) | our GFLOP/s | TF.js GFLOP/s | rel L2 |');
  console.log('|---|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(
      `| ${r.workload} | ${r.level} | ${r.size} | ${fmt(r.ours_ms)} | ${fmt(r.peer_ms)} | ${r.ratio.toFixed(2)}× | ${fmt(r.gflops, 2)} | ${fmt(r.peer_gflops, 2)} | ${r.rel_l2.toExponential(1)} |`,
    );
  }
  for (const r of rows.filter((x) => x.layers)) {
    console.log(`\nour convs in the style net forward ${r.size} (each timed alone, synchronised; median of ${r.runs}):`);
    console.log('| layer | shape | ms | GFLOP/s |\n|---|---|---:|---:|');
    for (const l of r.layers!) console.log(`| ${l.name} | ${l.shape} | ${fmt(l.ms)} | ${fmt(l.gflops, 2)} |`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string', default: '3' },
      only: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log('usage: npx tsx bench/compare.ts [--quick] [--runs N] [--only SUBSTRING] [--json FILE]');
    return;
  }
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: '${values.runs}' is not a positive integer`);
  const quick = values.quick === true;
  const gpu = await Gpu.create();
  try {
    const ai = gpu.adapterInfo;
    const adapter = [ai.vendor, ai.architecture, ai.device, ai.description].filter(Boolean).join(' / ');
    peer = await startPeer(gpu);
    const netSizes = quick ? [128] : [256, 512];
    const [trainSize, trainBatch] = quick ? [64, 2] : [256, 4];
    const all: Workload[] = [
      convWorkload(gpu, convSpec('conv3x3 128→128', 128, 128, 3, 1, 1, 64, 64)),
      convWorkload(gpu, convSpec('conv9x9 3→32', 3, 32, 9, 1, 4, 256, 256)),
      convWorkload(gpu, convSpec('conv9x9 32→3', 32, 3, 9, 1, 4, 256, 256)),
      convWorkload(gpu, convSpec('deconv3x3 s2 128→64', 128, 64, 3, 2, 1, 64, 64, true)),
      instanceNormWorkload(gpu, 128, 64),
      ...netSizes.map((s) => netForwardWorkload(gpu, s, runs)),
      trainingWorkload(gpu, trainSize, trainBatch),
    ];
    const chosen = values.only ? all.filter((w) => `${w.name} ${w.size}`.includes(values.only!)) : all;
    if (!chosen.length) throw new Error(`--only '${values.only}' matches no workload (${all.map((w) => w.name).join(', ')})`);
    console.log(`adapter: ${adapter}; one GPUDevice shared by both engines; TF.js ${tf.version_core} webgpu backend`);
    console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} (other processes slow both engines alike: compare ratios)`);
    console.log(`${quick ? 'quick: ' : ''}nets at ${netSizes.map((s) => `${s}²`).join(', ')}; training step batch ${trainBatch} at ${trainSize}²; median of ${runs} runs\n`);
    const rows: Row[] = [];
    for (const w of chosen) rows.push(await compare(gpu, w, runs, adapter));
    printTable(rows);
    if (values.json) {
      writeFileSync(values.json, JSON.stringify(rows, null, 2) + '\n');
      console.log(`\nwrote ${values.json}`);
    }
  } finally {
    peer?.dispose();
    gpu.destroy();
  }
}

main().catch((e: unknown) => {
  console.error(`compare: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
});
