// Tiled inference equals one-piece inference: the halo covers the receptive field and instance norm uses
// whole-image statistics gathered over the tiles.
import { describe, expect, it } from 'vitest';
import type { Tensor } from '../src/autograd/tensor.js';
import { runImageNetwork, padReflect, type TileProgress } from '../src/api/tiled.js';
import { Conv2d, ConvTranspose2d } from '../src/layers/conv.js';
import { Module } from '../src/layers/module.js';
import { InstanceNorm2d } from '../src/layers/norm.js';
import { reflectionPad2d } from '../src/layers/spatial.js';
import { createImage } from '../src/io/image.js';
import { isInference, relu, runRows, type Op, type Row } from '../src/nets/blocks.js';
import type { Gpu } from '../src/gpu/index.js';
import { useGpu } from './helpers/gpu.js';
import { expectClose } from './helpers/opcheck.js';
import { rng } from './helpers/rand.js';

const gpu = useGpu();

/** A small encoder-decoder like TransformerNet, written as rows: pad-conv-IN-relu, stride 2 down, transposed conv up. */
class Small extends Module {
  c1; n1; c2; n2; up; n3; out;
  private rows: Row[];
  constructor(g: Gpu, r: () => number) {
    super(g);
    this.c1 = this.child('c1', new Conv2d(g, 3, 6, 3, { rand: r }));
    this.n1 = this.child('n1', new InstanceNorm2d(g, 6));
    this.c2 = this.child('c2', new Conv2d(g, 6, 8, 3, { stride: 2, padding: 1, rand: r }));
    this.n2 = this.child('n2', new InstanceNorm2d(g, 8));
    this.up = this.child('up', new ConvTranspose2d(g, 8, 6, 3, { stride: 2, padding: 1, outputPadding: 1, rand: r }));
    this.n3 = this.child('n3', new InstanceNorm2d(g, 6, { affine: false }));
    this.out = this.child('out', new Conv2d(g, 6, 3, 1, { rand: r }));
    const pad: Op = { op: 'pad', apply: (x) => reflectionPad2d(x, 1) };
    this.rows = [['all', [pad, this.c1, this.n1, relu, this.c2, this.n2, relu, this.up, this.n3, relu, this.out]]];
  }
  plan() {
    return { rows: this.rows, ctx: {} };
  }
  forward(x: Tensor): Tensor {
    return runRows(this.rows, x, {}, isInference(this, x));
  }
}

describe('tiled inference', () => {
  it('tiles (with whole-image instance-norm statistics) reproduce the one-piece result', async () => {
    const g = gpu();
    const r = rng(11);
    const net = new Small(g, r);
    // Instance norm with non-trivial affine parameters.
    for (const n of [net.n1, net.n2]) n.weight!.assign(g.upload(Array.from({ length: n.numFeatures }, () => 0.5 + r()), [n.numFeatures]));
    const img = createImage(50, 38, Float32Array.from({ length: 3 * 50 * 38 }, (_, i) => 128 + 100 * Math.sin(i * 0.37) * r()));
    const whole = await runImageNetwork(g, net, img);
    let calls = 0;
    const tiled = await runImageNetwork(g, net, img, { tile: 16, halo: 12, onTile: () => calls++ });
    expect([tiled.width, tiled.height]).toEqual([50, 38]);
    // 4×3 tiles (52×40 padded), 3 statistics passes + the last pass.
    expect(calls).toBe(12 * 4);
    expectClose(tiled.data, whole.data, 2e-5, 'tiled vs whole');
    net.dispose();
  });

  it('pads to a multiple of 4 by reflection', () => {
    const img = createImage(3, 2, Float32Array.from([1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]));
    const p = padReflect(img, 1, 2);
    expect([p.width, p.height]).toEqual([4, 4]);
    expect([...p.data.subarray(0, 16)]).toEqual([1, 2, 3, 2, 4, 5, 6, 5, 1, 2, 3, 2, 4, 5, 6, 5]);
    expect([...padReflect(createImage(1, 1, Float32Array.of(7, 8, 9)), 3, 3).data.subarray(0, 16)]).toEqual(new Array(16).fill(7));
  });
});

describe('tiled inference with TransformerNet', () => {
  const small = useGpu({ maxTensorBytes: 1 << 20 });

  it('instance norm (paper variant): forced tiles match the one-piece result', async () => {
    const { TransformerNet } = await import('../src/nets/transformer-net.js');
    const r = rng(5);
    // Wide enough that middle tiles are cut on both sides (core 48 + halo 64 each way < 232).
    const img = createImage(232, 60, Float32Array.from({ length: 3 * 232 * 60 }, () => 255 * r()));
    const net = new TransformerNet(gpu(), { variant: 'paper', norm: 'instance', width: 2, rand: rng(9) });
    net.eval();
    const whole = await runImageNetwork(gpu(), net, img);
    const tiled = await runImageNetwork(gpu(), net, img, { tile: 48 });
    expectClose(tiled.data, whole.data, 1e-4, 'tiled TransformerNet (instance norm) vs one piece');
    net.dispose();
  });

  it('multi-style pytorch-examples net, a style blend, every waiting tile in host memory: equals one piece; one pass per stage', async () => {
    const { TransformerNet } = await import('../src/nets/transformer-net.js');
    const r = rng(7);
    const img = createImage(150, 90, Float32Array.from({ length: 3 * 150 * 90 }, () => 255 * r()));
    const net = new TransformerNet(gpu(), { variant: 'pytorch-examples', norm: 'conditional-instance', styles: 2, width: 2, rand: rng(8) }).eval();
    for (const [, t] of net.stateDict()) if (t.shape.length === 2) t.assign(gpu().upload(Array.from({ length: t.size }, () => 0.5 + r()), t.shape));
    const style = [0.3, 0.7];
    const whole = await runImageNetwork(gpu(), net, img, { style });
    const seen: TileProgress[] = [];
    const tiled = await runImageNetwork(gpu(), net, img, { tile: 32, style, memoryBudget: 1, onTile: (p) => seen.push(p) });
    expectClose(tiled.data, whole.data, 1e-4, 'tiled multi-style net (host-stored tiles) vs one piece');
    // 152×92 padded: 5×3 tiles; 15 instance norms, so 16 stages, each tile once per stage.
    expect(seen.length).toBe(15 * 16);
    expect(seen.at(-1)).toEqual({ done: 240, total: 240, stage: 16, stages: 16, tile: 15, tiles: 15 });
    expect(await runImageNetwork(gpu(), net, img, { tile: 32, style: 1 }).then((t) => t.data)).not.toEqual(tiled.data);
    net.dispose();
  });

  it('an image beyond the buffer limit is tiled automatically (batch norm, eval) and matches', async () => {
    const { TransformerNet } = await import('../src/nets/transformer-net.js');
    const r = rng(6);
    const img = createImage(296, 232, Float32Array.from({ length: 3 * 296 * 232 }, () => 255 * r()));
    const big = new TransformerNet(gpu(), { variant: 'paper', norm: 'batch', width: 2, rand: rng(9) });
    big.eval();
    const whole = await runImageNetwork(gpu(), big, img);
    // The same weights with 1 MiB tensors at most: the padded input [1,3,376,312] does not fit.
    const net = new TransformerNet(small(), { variant: 'paper', norm: 'batch', width: 2, rand: rng(9) });
    net.eval();
    let tiles = 0;
    const tiled = await runImageNetwork(small(), net, img, { onTile: () => tiles++ });
    expect(tiles).toBeGreaterThan(1);
    expect([tiled.width, tiled.height]).toEqual([296, 232]);
    expectClose(tiled.data, whole.data, 1e-4, 'auto-tiled TransformerNet vs one piece');
    big.dispose();
    net.dispose();
  });
});
