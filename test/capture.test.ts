// Recorded command sequences (gpu.capture.start / end / replay): a replay recomputes from the inputs written
// before it, constants uploaded during the capture come back in order, the capture's buffers are never handed to
// anyone else while it lives (and come back when it is disposed), and misuse is a clear error.
import { describe, expect, it } from 'vitest';
import { keep, noGrad, Tensor, tidy } from '../src/autograd/tensor.js';
import { add, mul, mulScalar, relu } from '../src/layers/elementwise.js';
import { lossNetworkFromTensors } from '../src/nets/loss-network.js';
import { TransformerNet } from '../src/nets/transformer-net.js';
import { Adam } from '../src/train/adam.js';
import { StyleTransferLoss } from '../src/train/perceptual-loss.js';
import { optimizationStep, RecordedStep } from '../src/train/step.js';
import { useGpu } from './helpers/gpu.js';
import { rng } from './helpers/rand.js';
import { randomVgg } from './helpers/random-vgg.js';

const gpu = useGpu();
const N = 37;
const data = (seed: number) => Float32Array.from({ length: N }, (_, i) => Math.sin(seed * 13 + i * 0.7) * 3);
/** What the captured function computes, in float64. */
const expected = (x: Float32Array) => [...x].map((v, i) => Math.fround(Math.fround(Math.max(v, 0) * (i % 5)) + Math.fround(v * 2)));

describe('captured command sequences', () => {
  it('a replay recomputes from the input written before it, constants uploaded inside included', async () => {
    const g = gpu();
    const x = Tensor.from(g, data(1), [N]);
    g.capture.start();
    const y = tidy(() =>
      noGrad(() => {
        // An upload inside the capture (a constant), zeros (a clear) and dispatches; intermediates are freed.
        const c = Tensor.from(g, Float32Array.from({ length: N }, (_, i) => i % 5), [N]);
        const z = add(Tensor.zeros(g, [N]), mul(relu(x), c));
        return keep(add(z, mulScalar(x, 2)));
      }),
    );
    const cap = g.capture.end();
    expect(cap.dispatches).toBeGreaterThan(3);
    expect([...(await y.data())]).toEqual(expected(data(1)));
    for (const seed of [2, 3, 4]) {
      g.write(x.raw, data(seed));
      g.capture.replay(cap);
      expect([...(await y.data())]).toEqual(expected(data(seed)));
    }
    cap.dispose();
    y.dispose();
    x.dispose();
  });

  it("keeps its buffers from everyone else while it lives, creates none per replay, and gives them back when disposed", async () => {
    const g = gpu();
    const x = Tensor.from(g, data(1), [N]);
    g.capture.start();
    const y = tidy(() => noGrad(() => keep(add(mulScalar(relu(mulScalar(x, 3)), 0.5), x))));
    const cap = g.capture.end();
    await g.sync();
    expect(g.stats().heldBytes).toBeGreaterThan(0); // the intermediates, released but the capture's
    // Tensors of the same size made now must get other buffers: a replay would overwrite them otherwise.
    const others = Array.from({ length: 6 }, (_, k) => Tensor.from(g, new Float32Array(N).fill(k + 1), [N]));
    const created = g.stats().created;
    for (let r = 0; r < 5; r++) {
      g.write(x.raw, data(r));
      g.capture.replay(cap);
    }
    await g.sync();
    expect(g.stats().created).toBe(created);
    for (const [k, t] of others.entries()) expect([...(await t.data())]).toEqual(new Array(N).fill(k + 1));
    expect([...(await y.data())]).toEqual([...data(4)].map((v) => Math.fround(Math.fround(Math.max(Math.fround(v * 3), 0) * 0.5) + v)));
    cap.dispose();
    expect(g.stats().heldBytes).toBe(0);
    y.dispose();
    for (const t of [x, ...others]) t.dispose();
  });

  it('misuse is a clear error: reads and writes while capturing, nesting, replaying a disposed capture', async () => {
    const g = gpu();
    const x = Tensor.from(g, data(1), [N]);
    g.capture.start();
    expect(() => g.capture.start()).toThrow('gpu.capture.start: already capturing');
    await expect(x.data()).rejects.toThrow('Gpu.read: not while capturing');
    expect(() => g.write(x.raw, data(2))).toThrow('Gpu.write: not while capturing');
    const cap = g.capture.end();
    expect(() => g.capture.replay(cap)).not.toThrow();
    cap.dispose();
    expect(() => g.capture.replay(cap)).toThrow('gpu.capture.replay: the capture was disposed');
    expect(() => g.capture.end()).toThrow('gpu.capture.end: not capturing');
    expect(() => g.write(x.raw, [1, 2])).toThrow('Gpu.write: 2 values for shape [37] (37 elements)');
    x.dispose();
  });

  it('style training steps replayed (reflection pad, instance norm, VGG preprocessing, Grams) are bitwise the eager ones, also after new parameter storage', async () => {
    const g = gpu();
    const r = rng(5);
    const img = (n: number) => Float32Array.from({ length: n }, () => 255 * r());
    const tensors = new Map([...randomVgg(4, 2)].map(([k, v]) => [k, { ...v, dtype: 'F32' }]));
    const vgg = lossNetworkFromTensors(g, 'vgg16', { tensors, metadata: {} }, { file: 'random VGG-16 to relu2_2' });
    const style = Tensor.from(g, img(3 * 16 * 16), [1, 3, 16, 16]);
    const loss = new StyleTransferLoss(vgg, style, { contentLayers: ['relu2_2'], styleLayers: ['relu1_2', 'relu2_2'] });
    style.dispose();
    const shape: [number, number, number, number] = [2, 3, 16, 16];
    const batches = [0, 1, 2, 3].map(() => img(2 * 3 * 16 * 16));
    const init = new TransformerNet(g, { variant: 'paper', norm: 'instance', width: 4, rand: rng(9) });
    const state = new Map(await Promise.all([...init.stateDict()].map(async ([k, t]) => [k, { data: await t.data(), shape: t.shape }] as const)));
    init.dispose();
    const run = async (recorded: boolean) => {
      const net = new TransformerNet(g, { variant: 'paper', norm: 'instance', width: 4 });
      net.loadStateDict(state);
      const opt = new Adam(net.parameters());
      const rec = recorded ? new RecordedStep(opt) : null;
      const losses: number[] = [];
      for (const [i, data] of batches.entries()) {
        // New storage for every parameter (loadStateDict assigns): the recorded step must record again.
        if (i === 2) net.loadStateDict(state);
        const terms = async (batch: () => Promise<Tensor>) => {
          const x = await batch();
          const t = loss.compute(net.forward(x), x);
          return { total: t.total, content: t.content, style: t.style, tv: t.tv };
        };
        const v = rec
          ? await rec.run(terms, async () => ({ data, shape }))
          : await optimizationStep(opt, () => terms(async () => Tensor.from(g, data, shape)));
        losses.push(v.total);
      }
      const w = await Promise.all(net.parameters().map(async (p) => [...new Uint32Array((await p.data()).buffer)]));
      if (rec) expect(rec.dispatches).toBeGreaterThan(100);
      rec?.dispose();
      opt.dispose();
      net.dispose();
      return { losses, w };
    };
    const eager = await run(false);
    const replayed = await run(true);
    expect(replayed.losses).toEqual(eager.losses);
    expect(replayed.w).toEqual(eager.w);
    expect(g.stats().heldBytes).toBe(0);
    loss.dispose();
    vgg.dispose();
  });
});
