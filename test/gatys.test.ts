// Gatys et al.'s optimisation: the one-pass objective equals StyleTransferLoss (value and gradient); the loss
// falls with L-BFGS and Adam on a tiny random loss network; the CLI end to end with the real SqueezeNet weights.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Tensor, tidy } from '../src/autograd/tensor.js';
import type { LossNetwork } from '../src/nets/loss-network.js';
import { StyleTransferLoss } from '../src/train/perceptual-loss.js';
import { GatysObjective, gatys, initialImage, styleImageFor, type GatysLosses } from '../src/train/gatys.js';
import { gatys as gatysCli, iterationPath } from '../src/cli/gatys.js';
import { readImage } from '../src/io/image-node.js';
import { createImage, type Image } from '../src/io/image.js';
import type { Gpu } from '../src/gpu/index.js';
import { useGpu } from './helpers/gpu.js';
import { tinyLossNet } from './helpers/tiny-loss-net.js';
import { expectClose } from './helpers/opcheck.js';
import { randn, rng, uniform } from './helpers/rand.js';
import { randomWeightFile, writePictures } from './helpers/shared.js';

const gpu = useGpu();

/** Tiny loss network; the first conv's weights are scaled for 0..255 inputs. */
function tinyNet(g: Gpu): LossNetwork {
  const r = rng(2024);
  return tinyLossNet(g, { w1: randn(4 * 27, r, 0.3 / 255), b1: randn(4, r, 0.1), w2: randn(5 * 36, r, 0.3), b2: randn(5, r, 0.1) });
}

const img = (w: number, h: number, seed: number): Image => createImage(w, h, Float32Array.from(uniform(3 * w * h, rng(seed), 0, 255)));

describe('Gatys objective', () => {
  it('equals StyleTransferLoss.compute (value of each term and gradient) with one loss-network pass', async () => {
    const g = gpu();
    const net = tinyNet(g);
    const [H, W] = [9, 11];
    const opts = { contentLayers: { b: 1.5 }, styleLayers: { a: 0.7, b: 1.3 }, contentWeight: 2, styleWeight: 3, tvWeight: 1e-3 };
    const content = Tensor.from(g, Float32Array.from(uniform(3 * H * W, rng(1), 0, 255)), [1, 3, H, W]);
    const style = Tensor.from(g, Float32Array.from(uniform(3 * H * W, rng(2), 0, 255)), [1, 3, H, W]);
    const x0 = Float32Array.from(uniform(3 * H * W, rng(3), 0, 255));
    const run = async (f: (x: Tensor) => { total: Tensor; content: Tensor; style: Tensor; tv: Tensor }) => {
      const x = Tensor.param(g, x0, [1, 3, H, W]);
      const vals = await tidy(() => {
        const t = f(x);
        t.total.backward();
        return [t.total, t.content, t.style, t.tv];
      }).reduce(async (acc, t) => [...(await acc), (await t.data())[0]], Promise.resolve([] as number[]));
      const grad = await x.grad!.data();
      x.dispose();
      return { vals, grad };
    };
    const ref = new StyleTransferLoss(net, style, opts);
    const obj = new GatysObjective(net, content, style, opts);
    const a = await run((x) => ref.compute(x, content));
    const b = await run((x) => obj.compute(x));
    for (let k = 0; k < 4; k++) expect(Math.abs(b.vals[k] - a.vals[k]) / Math.abs(a.vals[k]), `term ${k}`).toBeLessThan(1e-5);
    expectClose(b.grad, a.grad, 1e-5, 'gradient of the total');
    expect(() => new GatysObjective(net, content, style, { styleLayers: ['relu3_3'] })).toThrow(/StyleTransferLoss: vgg16 has no layer relu3_3; it offers a, b/);
    ref.dispose();
    obj.dispose();
    content.dispose();
    style.dispose();
    net.dispose();
  });

  it('initial images and style sizes', () => {
    const c = img(6, 4, 1);
    expect(initialImage(c, 'content').data).toEqual(c.data);
    const n1 = initialImage(c, 'noise', 7);
    expect(initialImage(c, 'noise', 7).data).toEqual(n1.data);
    expect(initialImage(c, 'noise', 8).data).not.toEqual(n1.data);
    expect(Math.min(...n1.data)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...n1.data)).toBeLessThan(255);
    const s = img(20, 10, 2);
    expect([styleImageFor(s, c).width, styleImageFor(s, c).height]).toEqual([6, 4]);
    expect([styleImageFor(s, c, 8).width, styleImageFor(s, c, 8).height]).toEqual([8, 4]);
    expect(iterationPath('/a/b.c/out.png', 20)).toBe('/a/b.c/out_iter20.png');
    expect(iterationPath('out', 3)).toBe('out_iter3');
  });
});

describe('gatys() on a 1×3×24×24 pair with a tiny loss network', () => {
  for (const optimizer of ['lbfgs', 'adam'] as const) {
    it(`${optimizer}: the loss falls over 10 iterations and the image leaves its initialisation`, async () => {
      const g = gpu();
      const net = tinyNet(g);
      const content = img(24, 24, 10);
      const style = img(24, 24, 11);
      const losses: GatysLosses[] = [];
      const out = await gatys({
        gpu: g,
        net,
        content,
        style,
        iters: 10,
        optimizer,
        styleWeight: 50,
        onIter: (i, l, x) => {
          expect(i).toBe(losses.length + 1);
          expect(x.shape).toEqual([1, 3, 24, 24]);
          losses.push(l);
        },
      });
      expect(losses.length).toBe(10);
      for (const l of losses) expect(l.total).toBeCloseTo(l.content + 50 * l.style + 1e-6 * l.tv, 3);
      expect(losses[0].content).toBe(0); // starts at the content image
      expect(losses[9].total).toBeLessThan(0.8 * losses[0].total);
      expect(out.width).toBe(24);
      let diff = 0;
      for (let i = 0; i < out.data.length; i++) diff += Math.abs(out.data[i] - content.data[i]);
      expect(diff / out.data.length).toBeGreaterThan(0.5);
      expect(Math.min(...out.data)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...out.data)).toBeLessThanOrEqual(255);
      net.dispose();
    });
  }

  it('noise init, abort signal, invalid options, strong Wolfe; no GPU buffer leaks', async () => {
    const g = gpu();
    const net = tinyNet(g);
    const base = { gpu: g, net, content: img(12, 12, 1), style: img(12, 12, 2) };
    await g.sync();
    const before = g.stats().inUseBuffers;
    const seen: number[] = [];
    await gatys({ ...base, iters: 3, init: 'noise', seed: 3, onIter: (i, l) => void seen.push(l.content) });
    expect(seen[0]).toBeGreaterThan(0);
    const ac = new AbortController();
    await expect(gatys({ ...base, iters: 5, signal: ac.signal, onIter: (i) => (i === 2 ? ac.abort() : undefined) })).rejects.toThrow(/abort/i);
    await expect(gatys({ ...base, iters: 1.5 })).rejects.toThrow(/gatys: iters must be a non-negative integer/);
    await expect(gatys({ ...base, iters: 1, optimizer: 'sgd' as 'adam' })).rejects.toThrow(/unknown optimizer 'sgd'/);
    await gatys({ ...base, iters: 4, lineSearch: 'strong_wolfe' });
    await g.sync();
    expect(g.stats().inUseBuffers, 'GPU buffers leaked').toBe(before);
    net.dispose();
  });
});

describe('perceptual gatys (in process; a generated SqueezeNet 1.1 and generated pictures)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatys-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const SQUEEZE = randomWeightFile('squeezenet1_1', 5);
  let CONTENT = '';
  let STYLE = '';
  beforeAll(async () => {
    [CONTENT, STYLE] = await writePictures(dir, [[48, 36], [40, 40]], 8, (i) => (i ? 'style.png' : 'content.png'));
  });

  it('writes the output (and intermediate images) with SqueezeNet at --size 32 --iters 3', async () => {
    const out = join(dir, 'out.png');
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const code = await gatysCli(['--content', CONTENT, '--style', STYLE, '--out', out, '--weights', SQUEEZE, '--loss-net', 'squeezenet1_1', '--size', '32', '--iters', '3', '--save-every', '2', '--print-every', '1']);
      expect(code, err.mock.calls.join('\n')).toBe(0);
      expect(log.mock.calls.flat()).toContain(out);
      const lines = write.mock.calls.map((c) => String(c[0])).join('');
      expect(lines).toMatch(/iter 3\/3 .*loss .*content .*style .*tv/);
    } finally {
      err.mockRestore();
      log.mockRestore();
      write.mockRestore();
    }
    const im = await readImage(out);
    expect(Math.max(im.width, im.height)).toBe(32);
    expect(readdirSync(dir).filter((f) => f.startsWith('out')).sort()).toEqual(['out.png', 'out_iter2.png']);
  });

  it('missing weights: a clear error naming the fix; usage errors exit 2', async () => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    const prev = process.env.PERCEPTUAL_CACHE_DIR;
    process.env.PERCEPTUAL_CACHE_DIR = join(dir, 'empty-cache');
    try {
      const args = ['--content', CONTENT, '--style', STYLE, '--out', join(dir, 'x.png')];
      expect(await gatysCli([...args, '--loss-net', 'squeezenet1_1'])).toBe(1);
      expect(String(err.mock.calls.at(-1)![0])).toMatch(/no squeezenet1_1 weights in the cache .*empty-cache.*run 'perceptual weights fetch squeezenet1_1' or pass --weights FILE/);
      expect(await gatysCli([...args, '--weights', join(dir, 'nope.safetensors')])).toBe(1);
      expect(String(err.mock.calls.at(-1)![0])).toMatch(/--weights '.*nope\.safetensors': no such file/);
      expect(await gatysCli(['--content', CONTENT, '--out', 'x.png'])).toBe(2);
      expect(String(err.mock.calls.at(-1)![0])).toMatch(/--style is required/);
      expect(await gatysCli([...args, '--iters', '-3'])).toBe(2);
      expect(await gatysCli([...args, '--optimizer', 'sgd'])).toBe(2);
      expect(readdirSync(dir)).not.toContain('x.png');
    } finally {
      if (prev === undefined) delete process.env.PERCEPTUAL_CACHE_DIR;
      else process.env.PERCEPTUAL_CACHE_DIR = prev;
      err.mockRestore();
    }
  });
});
