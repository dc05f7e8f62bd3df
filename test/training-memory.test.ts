// 100 training steps of a small network built from every op family: the loss falls and GPU memory in use
// stays flat (measured through the pool's statistics), so intermediates are returned after each step.
import { describe, expect, it } from 'vitest';
import { Tensor, tidy } from '../src/autograd/tensor.js';
import { Conv2d, ConvTranspose2d } from '../src/layers/conv.js';
import { add, mulScalar, relu, scaledTanh } from '../src/layers/elementwise.js';
import { gram } from '../src/layers/gram.js';
import { mseLoss, totalVariation } from '../src/layers/loss.js';
import { Module } from '../src/layers/module.js';
import { BatchNorm2d, InstanceNorm2d } from '../src/layers/norm.js';
import { centerCrop2d, concat, maxPool2d, reflectionPad2d, upsampleNearest2d } from '../src/layers/spatial.js';
import { Adam } from '../src/train/adam.js';
import type { Gpu } from '../src/gpu/index.js';
import { useGpu } from './helpers/gpu.js';
import { rng, uniform } from './helpers/rand.js';

const gpu = useGpu();

class TinyNet extends Module {
  c1; b1; c2; n2; up; c3; c4;
  constructor(gpu: Gpu, rand: () => number) {
    super(gpu);
    this.c1 = this.child('c1', new Conv2d(gpu, 3, 8, 3, { rand }));
    this.b1 = this.child('b1', new BatchNorm2d(gpu, 8));
    this.c2 = this.child('c2', new Conv2d(gpu, 8, 8, 3, { stride: 2, padding: 1, rand }));
    this.n2 = this.child('n2', new InstanceNorm2d(gpu, 8));
    this.up = this.child('up', new ConvTranspose2d(gpu, 8, 4, 3, { stride: 2, padding: 1, outputPadding: 1, rand }));
    this.c3 = this.child('c3', new Conv2d(gpu, 8, 4, 3, { padding: 1, rand }));
    this.c4 = this.child('c4', new Conv2d(gpu, 8, 3, 1, { rand }));
  }
  forward(x: Tensor): Tensor {
    const h = relu(this.b1.forward(this.c1.forward(reflectionPad2d(x, 1)))); // 8×12×12
    const d = relu(this.n2.forward(this.c2.forward(h))); // 8×6×6
    const r = add(d, centerCrop2d(reflectionPad2d(d, 2), 2)); // residual through pad + crop
    const a = relu(this.up.forward(r)); // 4×12×12
    const b = relu(this.c3.forward(upsampleNearest2d(r))); // 4×12×12
    return scaledTanh(this.c4.forward(concat([a, b])), 1, 0); // 3×12×12
  }
}

describe('training loop memory', () => {
  it('100 steps: the loss falls and memory in use is flat', async () => {
    const g = gpu();
    const r = rng(42);
    const net = new TinyNet(g, r);
    const opt = new Adam(net.parameters(), { lr: 1e-2 });
    const x = Tensor.from(g, Float32Array.from(uniform(2 * 3 * 12 * 12, r)), [2, 3, 12, 12]);
    const target = Tensor.from(g, Float32Array.from(uniform(2 * 3 * 12 * 12, r, -0.5, 0.5)), [2, 3, 12, 12]);
    const targetGram = tidy(() => gram(maxPool2d(target, { kernelSize: 3, stride: 2, ceilMode: true })));

    const losses: number[] = [];
    const snapshots: ReturnType<Gpu['stats']>[] = [];
    for (let step = 1; step <= 100; step++) {
      const loss = tidy(() => {
        const y = net.forward(x);
        const total = add(
          add(mseLoss(y, target), mseLoss(gram(maxPool2d(y, { kernelSize: 3, stride: 2, ceilMode: true })), targetGram)),
          mulScalar(totalVariation(y), 1e-4),
        );
        total.backward();
        opt.step();
        net.zeroGrad();
        return total;
      });
      if (step === 1 || step % 10 === 0) losses.push((await loss.data())[0]);
      loss.dispose();
      await g.sync();
      if (step === 5 || step === 100) snapshots.push(g.stats());
    }
    const [early, late] = snapshots;
    console.log(`loss every 10 steps: ${losses.map((l) => l.toFixed(4)).join(" ")}; in use ${early.inUseBytes} B, pool ${late.totalBytes} B`);
    expect(late.inUseBytes).toBe(early.inUseBytes);
    expect(late.totalBytes).toBe(early.totalBytes);
    expect(late.created).toBe(early.created);
    expect(losses.at(-1)!).toBeLessThan(losses[0] * 0.5);
    net.dispose();
    opt.dispose();
    for (const t of [x, target, targetGram]) t.dispose();
  });
});
