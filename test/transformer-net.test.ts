// The style-transfer network (both variants) against independent float64 references, the paper's activation
// sizes, size matching, gradients, and model files (torch.save checkpoints and safetensors).
import { describe, expect, it } from 'vitest';
import { Tensor, noGrad, tidy } from '../src/autograd/tensor.js';
import { ShapeError } from '../src/gpu/errors.js';
import { WeightFileError, readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { mseLoss } from '../src/layers/loss.js';
import { loadTransformerNet, saveTransformerNet } from '../src/nets/model-file.js';
import { TransformerNet, type TransformerForwardOptions } from '../src/nets/transformer-net.js';
import { Adam } from '../src/train/adam.js';
import { errorOf } from './helpers/errors.js';
import { useGpu } from './helpers/gpu.js';
import { expectClose } from './helpers/opcheck.js';
import { numel, rng, uniform } from './helpers/rand.js';
import { OrderedDict, f32, torchSave, type PyValue } from './helpers/torch-save.js';
import { matchSize, paperRef, pytorchExamplesRef, type A, type NormMode, type State, type Stats } from './reference/transformer-net.js';

const gpu = useGpu();

type Shapes = [string, number[]][];

/** pytorch/examples fast_neural_style TransformerNet().state_dict() names and shapes, in order. */
function pytorchExamplesShapes(): Shapes {
  const s: Shapes = [];
  const conv = (n: string, cin: number, cout: number, k: number) => s.push([`${n}.conv2d.weight`, [cout, cin, k, k]], [`${n}.conv2d.bias`, [cout]]);
  const inorm = (n: string, c: number) => s.push([`${n}.weight`, [c]], [`${n}.bias`, [c]]);
  conv('conv1', 3, 32, 9), inorm('in1', 32);
  conv('conv2', 32, 64, 3), inorm('in2', 64);
  conv('conv3', 64, 128, 3), inorm('in3', 128);
  for (let i = 1; i <= 5; i++) conv(`res${i}.conv1`, 128, 128, 3), inorm(`res${i}.in1`, 128), conv(`res${i}.conv2`, 128, 128, 3), inorm(`res${i}.in2`, 128);
  conv('deconv1', 128, 64, 3), inorm('in4', 64);
  conv('deconv2', 64, 32, 3), inorm('in5', 32);
  conv('deconv3', 32, 3, 9);
  return s;
}

/** The paper variant's state: convs conv1..3, res{i}.conv1/2, deconv1/2 (transposed: [in, out, k, k]), conv4. */
function paperShapes(w: number, norm: 'batch' | 'instance'): Shapes {
  const s: Shapes = [];
  const conv = (n: string, cin: number, cout: number, k: number, transposed = false) =>
    s.push([`${n}.weight`, transposed ? [cin, cout, k, k] : [cout, cin, k, k]], [`${n}.bias`, [cout]]);
  const nrm = (n: string, c: number) => {
    s.push([`${n}.weight`, [c]], [`${n}.bias`, [c]]);
    if (norm === 'batch') s.push([`${n}.running_mean`, [c]], [`${n}.running_var`, [c]], [`${n}.num_batches_tracked`, [1]]);
  };
  conv('conv1', 3, w, 9), nrm('norm1', w);
  conv('conv2', w, 2 * w, 3), nrm('norm2', 2 * w);
  conv('conv3', 2 * w, 4 * w, 3), nrm('norm3', 4 * w);
  for (let i = 1; i <= 5; i++) conv(`res${i}.conv1`, 4 * w, 4 * w, 3), nrm(`res${i}.norm1`, 4 * w), conv(`res${i}.conv2`, 4 * w, 4 * w, 3), nrm(`res${i}.norm2`, 4 * w);
  conv('deconv1', 4 * w, 2 * w, 3, true), nrm('norm4', 2 * w);
  conv('deconv2', 2 * w, w, 3, true), nrm('norm5', w);
  conv('conv4', w, 3, 9);
  return s;
}

/** He-uniform conv weights, small conv biases, norm weights near 1, small norm biases. */
function randomState(shapes: Shapes, seed: number): State {
  const r = rng(seed);
  const u = (n: number, lo: number, hi: number) => Float32Array.from(uniform(n, r, lo, hi));
  const state: State = new Map();
  for (const [name, shape] of shapes) {
    const n = numel(shape);
    let data: Float32Array;
    if (shape.length === 4) {
      const k2 = shape[2] * shape[3];
      const fanIn = /^deconv[12]\.weight$/.test(name) ? (shape[0] * k2) / 4 : shape[1] * k2; // paper's transposed convs
      const b = Math.sqrt(6 / fanIn);
      data = u(n, -b, b);
    } else if (name.endsWith('running_mean')) data = new Float32Array(n);
    else if (name.endsWith('running_var')) data = new Float32Array(n).fill(1);
    else if (name.endsWith('num_batches_tracked')) data = new Float32Array(n);
    else if (shapes.some(([k, s]) => s.length === 4 && k === name.replace(/bias$/, 'weight'))) data = u(n, -0.1, 0.1); // conv bias
    else if (name.endsWith('.weight')) data = u(n, 0.7, 1.3);
    else data = u(n, -0.3, 0.3);
    state.set(name, { data, shape });
  }
  return state;
}

const image = (shape: number[], seed: number): A => ({ data: uniform(numel(shape), rng(seed), 0, 255), shape: shape as A['shape'] });

async function run(net: TransformerNet, x: A, opts?: TransformerForwardOptions): Promise<{ y: Float32Array; shape: number[] }> {
  const out = tidy(() => noGrad(() => net.forward(Tensor.from(gpu(), Float32Array.from(x.data), x.shape), opts)));
  const y = await out.data();
  const shape = [...out.shape];
  out.dispose();
  return { y, shape };
}

async function stateOf(net: TransformerNet): Promise<State> {
  const s: State = new Map();
  for (const [k, t] of net.stateDict()) s.set(k, { data: await t.data(), shape: [...t.shape] });
  return s;
}

/** Name → shape (order-free: a Module lists parameters before buffers). */
const shapesOf = (net: TransformerNet) => Object.fromEntries([...net.stateShapes()].map(([k, s]) => [k, [...s]]));

describe('TransformerNet, paper variant', () => {
  it('has the paper activation sizes for 3×256×256 (supplementary table), every row', () => {
    // Width does not change spatial sizes; width 4 keeps the run short. Channels are the table's × 4/32.
    const table: [string, number[]][] = [
      ['input', [3, 256, 256]],
      ['pad', [3, 336, 336]], // reflection padding 40×40
      ['conv1', [32, 336, 336]], // 32×9×9 conv, stride 1
      ['conv2', [64, 168, 168]], // 64×3×3 conv, stride 2
      ['conv3', [128, 84, 84]], // 128×3×3 conv, stride 2
      ['res1', [128, 80, 80]],
      ['res2', [128, 76, 76]],
      ['res3', [128, 72, 72]],
      ['res4', [128, 68, 68]],
      ['res5', [128, 64, 64]],
      ['deconv1', [64, 128, 128]], // 64×3×3 conv, stride 1/2
      ['deconv2', [32, 256, 256]], // 32×3×3 conv, stride 1/2
      ['conv4', [3, 256, 256]], // 3×9×9 conv, stride 1
      ['output', [3, 256, 256]],
    ];
    const net = new TransformerNet(gpu(), { variant: 'paper', width: 4, rand: rng(1) }).eval();
    const seen: [string, number[]][] = [];
    tidy(() =>
      noGrad(() => {
        const x = Tensor.zeros(gpu(), [1, 3, 256, 256]);
        net.forward(x, { trace: (name, shape) => seen.push([name, [...shape]]) });
      }),
    );
    net.dispose();
    const scaled = table.map(([n, [c, h, w]]): [string, number[]] => [n, [1, c === 3 ? 3 : (c * 4) / 32, h, w]]);
    expect(seen).toEqual(scaled);
    expect(TransformerNet.outputSize('paper', 256, 256)).toEqual([256, 256]);
  });

  it('names and shapes its state as documented, full and half width, batch and instance norm', () => {
    for (const [width, norm] of [[32, 'batch'], [16, 'instance'], [16, 'batch']] as const) {
      const net = new TransformerNet(gpu(), { variant: 'paper', width, norm });
      expect(shapesOf(net)).toEqual(Object.fromEntries(paperShapes(width, norm)));
      net.dispose();
    }
    const pe = new TransformerNet(gpu(), { variant: 'pytorch-examples' });
    expect(shapesOf(pe)).toEqual(Object.fromEntries(pytorchExamplesShapes()));
    expect([...pe.stateShapes().keys()]).toEqual(pytorchExamplesShapes().map(([k]) => k)); // and in upstream order
    pe.dispose();
    const half = new TransformerNet(gpu(), { variant: 'pytorch-examples', width: 16 });
    expect(half.stateShapes().get('res1.conv1.conv2d.weight')).toEqual([64, 64, 3, 3]);
    half.dispose();
    expect(() => new TransformerNet(gpu(), { variant: 'pytorch-examples', norm: 'batch' })).toThrow(/uses instance norm/);
    expect(() => new TransformerNet(gpu(), { variant: 'pytorch-examples', styles: 3 })).toThrow(/3 styles need norm "conditional-instance"/);
    expect(() => new TransformerNet(gpu(), { variant: 'resnet' as never })).toThrow(/unknown variant "resnet"/);
  });

  const modes: [NormMode, number][] = [
    ['batch-train', 2],
    ['batch-eval', 1],
    ['instance', 1],
  ];
  for (const [mode, N] of modes) {
    it(`matches the float64 reference (${mode}, width 2, ${N}×3×12×12: 40 px mirror pad of a 12 px image)`, async () => {
      const norm = mode === 'instance' ? 'instance' : 'batch';
      const state = randomState(paperShapes(2, norm), 10);
      const x = image([N, 3, 12, 12], 11);
      if (mode === 'batch-eval') {
        // Running statistics near the true ones (from a training-mode reference pass), so activations stay O(1).
        const stats: Stats = new Map();
        paperRef(state, x, 'batch-train', [], stats);
        const r = rng(12);
        for (const [k, s] of stats) {
          state.set(`${k}.running_mean`, { data: Float32Array.from(s.mean, (m) => m + 0.1 * (2 * r() - 1) * Math.sqrt(s.var[0] + 1e-5)), shape: [s.mean.length] });
          state.set(`${k}.running_var`, { data: Float32Array.from(s.var, (v) => v * (0.8 + 0.4 * r())), shape: [s.var.length] });
        }
      }
      const net = new TransformerNet(gpu(), { variant: 'paper', width: 2, norm });
      net.loadStateDict(state);
      net.train(mode === 'batch-train');
      const stats: Stats = new Map();
      const ref = paperRef(state, x, mode, [], stats);
      const got = await run(net, x, { matchInputSize: false });
      expect(got.shape).toEqual([N, 3, 12, 12]);
      expect(ref.shape).toEqual([N, 3, 12, 12]);
      expectClose(got.y, ref.data, 1e-4, `paper ${mode} output`);
      if (mode === 'batch-train') {
        // One training forward moved the running statistics by momentum 0.1 (unbiased variance).
        for (const k of ['norm1', 'res5.norm2']) {
          const s = stats.get(k)!;
          const state = net.stateDict();
          const rm = await state.get(`${k}.running_mean`)!.data();
          const rv = await state.get(`${k}.running_var`)!.data();
          const m = s.mean.length;
          const per = perChannelCount(k, N);
          expectClose(rm, Array.from({ length: m }, (_, c) => 0.1 * s.mean[c]), 1e-4, `${k}.running_mean`);
          expectClose(rv, Array.from({ length: m }, (_, c) => 0.9 + (0.1 * s.var[c] * per) / (per - 1)), 1e-4, `${k}.running_var`);
        }
      }
      net.dispose();
    });
  }

  it('works from 5×5 inputs; smaller ones are a ShapeError naming the op and the shape', async () => {
    const net = new TransformerNet(gpu(), { variant: 'paper', width: 2, norm: 'instance', rand: rng(3) });
    expect((await run(net, image([1, 3, 5, 7], 4))).shape).toEqual([1, 3, 5, 7]);
    expect((await run(net, image([1, 3, 5, 7], 4), { matchInputSize: false })).shape).toEqual([1, 3, 8, 8]);
    const e = errorOf(() => tidy(() => net.forward(Tensor.zeros(gpu(), [1, 3, 4, 12]))));
    expect(e).toBeInstanceOf(ShapeError);
    expect(e.message).toMatch(/^transformerNet\(paper\): input must be at least 5×5 pixels .*got 4×12; x \[1,3,4,12\]$/);
    const e2 = errorOf(() => tidy(() => net.forward(Tensor.zeros(gpu(), [1, 4, 16, 16]))));
    expect(e2.message).toMatch(/transformerNet\(paper\): input must have 3 channels.*x \[1,4,16,16\]/);
    net.dispose();
  });
});

/** Values per channel of a paper norm's input for a 12×12 input (batch statistics over N·H·W). */
function perChannelCount(norm: string, N: number): number {
  const side: Record<string, number> = { norm1: 92, 'res5.norm2': 3 };
  return N * side[norm] ** 2;
}

describe('TransformerNet, pytorch-examples variant', () => {
  const state = randomState(pytorchExamplesShapes(), 20);
  /** A checkpoint as pytorch/examples' train saves it (torch.save of state_dict()), with the stale instance-norm
   *  statistics that old PyTorch versions wrote. */
  function checkpoint(): Uint8Array {
    const entries: [string, PyValue][] = [];
    for (const [k, t] of state) {
      entries.push([k, f32(t.data, [...t.shape])]);
      if (k === 'in1.bias' || k === 'res2.in1.bias') {
        const p = k.replace(/bias$/, '');
        const c = t.shape[0];
        entries.push([`${p}running_mean`, f32(new Float32Array(c).fill(3), [c])], [`${p}running_var`, f32(new Float32Array(c).fill(7), [c])]);
      }
    }
    return torchSave(new OrderedDict(entries, [['', { version: 1 }]]));
  }

  it('loads a torch.save checkpoint by name and matches the float64 reference (1×3×16×20), also after a safetensors round trip', async () => {
    const x = image([1, 3, 16, 20], 21);
    const ref = pytorchExamplesRef(state, x);
    expect(ref.shape).toEqual([1, 3, 16, 20]);
    const net = loadTransformerNet(gpu(), checkpoint(), { file: 'candy.pth' });
    expect([net.variant, net.norm, net.width]).toEqual(['pytorch-examples', 'instance', 32]);
    const got = await run(net, x, { matchInputSize: false });
    expect(got.shape).toEqual([1, 3, 16, 20]);
    expectClose(got.y, ref.data, 1e-4, 'pytorch-examples output');
    expectClose((await run(net, x)).y, ref.data, 1e-4, 'pytorch-examples output (matchInputSize)');

    const bytes = await saveTransformerNet(net, { style: 'candy', command: 'train --style candy.jpg' });
    net.dispose();
    const st = readSafetensors(bytes);
    expect(st.metadata).toEqual({ arch: 'transformer-net', variant: 'pytorch-examples', norm: 'instance', width: '32', style: 'candy', command: 'train --style candy.jpg' });
    expect([...st.tensors.keys()].sort()).toEqual(pytorchExamplesShapes().map(([k]) => k).sort());
    const again = loadTransformerNet(gpu(), bytes);
    const got2 = await run(again, x, { matchInputSize: false });
    expect(Array.from(got2.y)).toEqual(Array.from(got.y));
    again.dispose();
  });

  it('keeps the upstream output size with matchInputSize off, and matches the reference with it on (1×3×18×22)', async () => {
    const net = loadTransformerNet(gpu(), checkpoint());
    const x = image([1, 3, 18, 22], 22);
    const off = await run(net, x, { matchInputSize: false });
    expect(off.shape).toEqual([1, 3, 20, 24]);
    expect(TransformerNet.outputSize('pytorch-examples', 18, 22)).toEqual([20, 24]);
    expectClose(off.y, pytorchExamplesRef(state, x).data, 1e-4, 'pytorch-examples 18×22, upstream semantics');
    const on = await run(net, x);
    expect(on.shape).toEqual([1, 3, 18, 22]);
    expectClose(on.y, matchSize(x, (p) => pytorchExamplesRef(state, p)).data, 1e-4, 'pytorch-examples 18×22, size matched');
    net.dispose();
  });

  it('load errors: wrong shape (expected vs found), missing and unexpected tensors, unknown architecture', () => {
    const tensors = (edit: (m: Map<string, { data: Float32Array; shape: readonly number[] }>) => void, metadata?: Record<string, string>) => {
      const m = new Map([...state].map(([k, t]) => [k, { data: t.data, shape: t.shape }]));
      edit(m);
      return writeSafetensors(m, metadata);
    };
    const wrong = tensors((m) => m.set('conv2.conv2d.weight', { data: new Float32Array(64 * 32 * 25), shape: [64, 32, 5, 5] }));
    const e1 = errorOf(() => loadTransformerNet(gpu(), wrong, { file: 'bad.safetensors' }));
    expect(e1).toBeInstanceOf(WeightFileError);
    expect(e1.message).toContain('bad.safetensors');
    expect(e1.message).toContain('tensor conv2.conv2d.weight: expected shape [64,32,3,3], found [64,32,5,5]');

    const e2 = errorOf(() => loadTransformerNet(gpu(), tensors((m) => (m.delete('in5.bias'), m.set('extra.weight', { data: new Float32Array(1), shape: [1] })))));
    expect(e2.message).toMatch(/missing tensors: in5\.bias; unexpected: extra\.weight/);

    const e3 = errorOf(() => loadTransformerNet(gpu(), tensors(() => {}), { arch: 'resnet' as never }));
    expect(e3.message).toMatch(/unknown arch "resnet" \(known: paper, pytorch-examples\)/);
    const e4 = errorOf(() => loadTransformerNet(gpu(), tensors(() => {}, { arch: 'vgg16' })));
    expect(e4.message).toMatch(/holds a vgg16 network \(__metadata__\.arch\), not transformer-net/);
    const e5 = errorOf(() => loadTransformerNet(gpu(), tensors(() => {}, { variant: 'cyclegan' })));
    expect(e5.message).toMatch(/unknown variant "cyclegan" in __metadata__\.variant/);
    const e6 = errorOf(() => loadTransformerNet(gpu(), writeSafetensors({ 'features.0.weight': { data: new Float32Array(1), shape: [1] } })));
    expect(e6.message).toMatch(/cannot tell the network's variant.*pass the arch option/);
    // Forcing the other variant names what it expected.
    const e7 = errorOf(() => loadTransformerNet(gpu(), tensors(() => {}), { arch: 'paper' }));
    expect(e7.message).toMatch(/missing tensors: conv1\.weight, conv1\.bias, norm1\.weight.*; unexpected: .*conv1\.conv2d\.weight/);
  });
});

describe('TransformerNet, both variants', () => {
  it('paper: sizes not divisible by 4 give the input size (1×3×18×22), matching the reference', async () => {
    const state = randomState(paperShapes(2, 'instance'), 30);
    const net = new TransformerNet(gpu(), { variant: 'paper', width: 2, norm: 'instance' });
    net.loadStateDict(state);
    const x = image([1, 3, 18, 22], 31);
    const on = await run(net, x);
    expect(on.shape).toEqual([1, 3, 18, 22]);
    expectClose(on.y, matchSize(x, (p) => paperRef(state, p, 'instance')).data, 1e-4, 'paper 18×22 size matched');
    const off = await run(net, x, { matchInputSize: false });
    expect(off.shape).toEqual([1, 3, ...TransformerNet.outputSize('paper', 18, 22)]);
    expect(off.shape).toEqual([1, 3, 20, 24]);
    expectClose(off.y, paperRef(state, x, 'instance').data, 1e-4, 'paper 18×22 unmatched');
    net.dispose();
  });

  for (const variant of ['paper', 'pytorch-examples'] as const) {
    it(`${variant}: gradients reach every parameter and a few Adam steps lower an MSE to a target`, async () => {
      const net = new TransformerNet(gpu(), { variant, width: variant === 'paper' ? 2 : 32, rand: rng(40) });
      const x = Tensor.from(gpu(), Float32Array.from(image([1, 3, 12, 12], 41).data), [1, 3, 12, 12]);
      const target = Tensor.from(gpu(), Float32Array.from(image([1, 3, 12, 12], 42).data), [1, 3, 12, 12]);
      const opt = new Adam(net.parameters(), { lr: 3e-2 });
      const losses: number[] = [];
      for (let it = 0; it < 6; it++) {
        const loss = tidy(() => {
          const l = mseLoss(net.forward(x), target);
          l.backward();
          return l;
        });
        losses.push((await loss.data())[0]);
        loss.dispose();
        if (it === 0) {
          // A conv bias followed by a norm has a zero gradient in exact arithmetic (the norm removes constants).
          const beforeNorm = /^(conv[123]|res\d\.conv[12]|deconv[12])\.(conv2d\.)?bias$/;
          for (const [name, p] of net.namedParameters()) {
            expect(p.grad, `${name} has no gradient`).not.toBeNull();
            const g = await p.grad!.data();
            expect(g.every(Number.isFinite), `${name} gradient is finite`).toBe(true);
            if (!beforeNorm.test(name)) expect(g.reduce((a, v) => a + v * v, 0), `${name} gradient is non-zero`).toBeGreaterThan(0);
          }
        }
        opt.step();
        net.zeroGrad();
      }
      expect(losses.at(-1)!).toBeLessThan(0.9 * losses[0]);
      opt.dispose();
      x.dispose();
      target.dispose();
      net.dispose();
    });
  }
});

describe('paper model files', () => {
  it('safetensors round trip keeps the architecture and outputs; files without metadata are inferred', async () => {
    for (const norm of ['batch', 'instance'] as const) {
      const state = randomState(paperShapes(2, norm), 50);
      if (norm === 'batch') for (const [k, t] of state) if (k.endsWith('running_var')) t.data.fill(4);
      const net = new TransformerNet(gpu(), { variant: 'paper', width: 2, norm });
      net.loadStateDict(state);
      net.eval();
      const x = image([1, 3, 16, 16], 51);
      const want = await run(net, x);
      const bytes = await saveTransformerNet(net, { style: 'mosaic' });
      expect(readSafetensors(bytes).metadata).toEqual({ arch: 'transformer-net', variant: 'paper', norm, width: '2', style: 'mosaic' });
      const back = loadTransformerNet(gpu(), bytes).eval();
      expect([back.variant, back.norm, back.width]).toEqual(['paper', norm, 2]);
      expect(Array.from((await run(back, x)).y)).toEqual(Array.from(want.y));
      back.dispose();

      // No metadata (another writer): variant from the names, width from conv1, norm from the running statistics.
      const bare = writeSafetensors(await stateOf(net));
      const inferred = loadTransformerNet(gpu(), bare).eval();
      expect([inferred.variant, inferred.norm, inferred.width]).toEqual(['paper', norm, 2]);
      expect(Array.from((await run(inferred, x)).y)).toEqual(Array.from(want.y));
      inferred.dispose();
      const e = errorOf(() => loadTransformerNet(gpu(), bare, { width: 4, file: 'w2.safetensors' }));
      expect(e.message).toContain('tensor conv1.weight: expected shape [4,3,9,9], found [2,3,9,9]');
      net.dispose();
    }
    const tiny = new TransformerNet(gpu(), { variant: 'paper', width: 1 });
    await expect(saveTransformerNet(tiny, { arch: 'x' })).rejects.toThrow(/"arch" is set from the network/);
    tiny.dispose();
  });
});
