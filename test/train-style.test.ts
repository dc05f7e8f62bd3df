// Style training end to end on tiny settings: the CLI trains and writes a model that stylizes; a run
// interrupted and resumed ends with exactly the weights of an uninterrupted one. The loss networks are generated
// (random weights with the real shapes), so nothing here needs ../shared.
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { styles } from '../src/cli/styles.js';
import { trainStyle } from '../src/api/train-style.js';
import { trainStyleCli } from '../src/cli/train-style.js';
import { stylize } from '../src/cli/stylize.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { readImage, writeImage } from '../src/io/image-node.js';
import { createImage } from '../src/io/image.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { loadModel } from '../src/api/model-node.js';
import { stylizeImage } from '../src/api/stylize.js';
import { useGpu } from './helpers/gpu.js';
import { randomVgg } from './helpers/random-vgg.js';
import { rng } from './helpers/rand.js';
import { randomWeightFile } from './helpers/shared.js';

const SQUEEZENET = randomWeightFile('squeezenet1_1', 3);
const gpu = useGpu();

async function folder(n: number, seed: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'pw-style-'));
  const r = rng(seed);
  for (let i = 0; i < n; i++) {
    const w = 20 + Math.floor(r() * 20);
    const h = 20 + Math.floor(r() * 20);
    await writeImage(join(dir, `img${i}.png`), createImage(w, h, Float32Array.from({ length: 3 * w * h }, () => 255 * r())));
  }
  return dir;
}

const tiny = { arch: 'paper' as const, norm: 'instance' as const, width: 4, size: 24, batchSize: 2, lossNet: 'squeezenet1_1' as const, lossWeights: SQUEEZENET };

describe('train-style (a generated SqueezeNet 1.1 as the loss network)', () => {
  it('resume after an interruption gives exactly the weights of the uninterrupted run', async () => {
    const data = await folder(3, 1);
    const style = join(data, 'img0.png');
    const a = mkdtempSync(join(tmpdir(), 'pw-a-'));
    const b = mkdtempSync(join(tmpdir(), 'pw-b-'));
    await trainStyle(gpu(), { ...tiny, style, data, outDir: a, steps: 4 });
    const ctl = new AbortController();
    const first = await trainStyle(gpu(), { ...tiny, style, data, outDir: b, steps: 4, signal: ctl.signal, onProgress: (p) => p.step === 2 && ctl.abort() });
    expect(first.status).toBe('aborted');
    expect(first.step).toBe(2);
    const second = await trainStyle(gpu(), { ...tiny, style, data, outDir: b, steps: 4, resume: true });
    expect(second.resumedFrom).toBe(2);
    const wa = readSafetensors(readFileSync(join(a, 'model.safetensors'))).tensors;
    const wb = readSafetensors(readFileSync(join(b, 'model.safetensors'))).tensors;
    expect([...wb.keys()]).toEqual([...wa.keys()]);
    for (const [k, t] of wa) expect(wb.get(k)!.data, k).toEqual(t.data);
  });

  it('the CLI trains, logs every term, and its model stylizes an image of any size', async () => {
    const data = await folder(3, 2);
    const out = mkdtempSync(join(tmpdir(), 'pw-cli-'));
    const code = await trainStyleCli([
      '--style', join(data, 'img1.png'), '--data', data, '--out', out, '--width', '4', '--size', '24', '--batch', '1', '--steps', '3',
      '--loss-net', 'squeezenet1_1', '--loss-weights', SQUEEZENET, '--checkpoint-every', '2',
    ]);
    expect(code).toBe(0);
    const log = readFileSync(join(out, 'loss.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log.map((l) => l.step)).toEqual([1, 2, 3]);
    for (const k of ['total', 'content', 'style', 'tv']) expect(Number.isFinite(log[2][k])).toBe(true);
    expect(readFileSync(join(out, 'loss.svg'), 'utf8')).toContain('<svg');
    const meta = readSafetensors(readFileSync(join(out, 'model.safetensors'))).metadata;
    expect(meta).toMatchObject({ arch: 'transformer-net', variant: 'paper', norm: 'instance', width: '4' });
    expect(JSON.parse(meta.training)).toMatchObject({ steps: 3, lossNet: 'squeezenet1_1', size: 24 });

    const img = join(data, 'odd.png');
    await writeImage(img, createImage(23, 17, new Float32Array(3 * 23 * 17).fill(90)));
    const bad = join(data, 'broken.png');
    writeFileSync(bad, 'not a png');
    const styled = mkdtempSync(join(tmpdir(), 'pw-out-'));
    const sc = await stylize(['--model', join(out, 'model.safetensors'), img, bad, '--out', styled]);
    expect(sc).toBe(1); // one input was not an image; the other was still processed
    expect(readdirSync(styled)).toEqual(['odd.png']);
    const o = await readImage(join(styled, 'odd.png'));
    expect([o.width, o.height]).toEqual([23, 17]);
  });
});


describe('multi-style training (a generated VGG-19 up to conv2_2 as the loss network)', () => {
  it('one network for two styles: alternating steps, both styles in the file, exact resume, styles differ', async () => {
    const data = await folder(3, 5);
    const weights = join(mkdtempSync(join(tmpdir(), 'pw-vgg-')), 'vgg19.safetensors');
    writeFileSync(weights, writeSafetensors(randomVgg(4, 6, 'vgg19'), { arch: 'vgg19' }));
    const o = {
      arch: 'pytorch-examples' as const, width: 2, size: 24, batchSize: 1, lossNet: 'vgg19' as const, lossWeights: weights, data, steps: 4,
      style: [join(data, 'img0.png'), { image: join(data, 'img1.png'), name: 'second', info: { licence: 'test' } }],
      styleLayers: ['relu1_1', 'relu2_1'], contentLayers: ['relu2_2'],
    };
    const a = mkdtempSync(join(tmpdir(), 'pw-ms-a-'));
    const b = mkdtempSync(join(tmpdir(), 'pw-ms-b-'));
    await trainStyle(gpu(), { ...o, outDir: a });
    const ctl = new AbortController();
    const first = await trainStyle(gpu(), { ...o, outDir: b, signal: ctl.signal, onProgress: (p) => p.step === 3 && ctl.abort() });
    expect(first.step).toBe(3);
    await trainStyle(gpu(), { ...o, outDir: b, resume: true });
    const fa = readSafetensors(readFileSync(join(a, 'model.safetensors')));
    const fb = readSafetensors(readFileSync(join(b, 'model.safetensors')));
    for (const [k, t] of fa.tensors) expect(fb.tensors.get(k)!.data, k).toEqual(t.data);
    expect(fa.metadata).toMatchObject({ variant: 'pytorch-examples', norm: 'conditional-instance', styles: '2', width: '2' });
    expect(JSON.parse(fa.metadata.style_info)).toEqual([{ name: 'img0' }, { name: 'second', licence: 'test' }]);
    expect(JSON.parse(fa.metadata.training)).toMatchObject({ style: ['img0', 'second'], lossNet: 'vgg19', steps: 4 });
    expect(fa.tensors.get('in1.weight')!.shape).toEqual([2, 2]);
    const log = readFileSync(join(a, 'loss.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log.map((l) => l.step)).toEqual([1, 2, 3, 4]);

    // The CLI lists the styles and picks or blends them by name.
    const said: string[] = [];
    const out = vi.spyOn(console, 'log').mockImplementation((...m: unknown[]) => void said.push(m.join(' ')));
    const err = vi.spyOn(console, 'error').mockImplementation((...m: unknown[]) => void said.push(m.join(' ')));
    try {
      expect(await styles(['--model', join(a, 'model.safetensors'), '--json'])).toBe(0);
      expect(JSON.parse(said.join('\n'))).toEqual([{ name: 'img0' }, { name: 'second', licence: 'test' }]);
      const outDir = mkdtempSync(join(tmpdir(), 'pw-ms-out-'));
      expect(await stylize(['--model', join(a, 'model.safetensors'), '--style', 'img0:0.5,second:0.5', join(data, 'img2.png'), '--out', outDir])).toBe(0);
      expect(readdirSync(outDir)).toEqual(['img2.png']);
      said.length = 0;
      expect(await stylize(['--model', join(a, 'model.safetensors'), '--style', 'third', join(data, 'img2.png'), '--out', outDir])).toBe(1);
      expect(said.join('\n')).toContain("unknown style 'third' (the model's styles: img0, second)");
    } finally {
      out.mockRestore();
      err.mockRestore();
    }

    const net = await loadModel(gpu(), join(a, 'model.safetensors'));
    try {
      const img = await readImage(join(data, 'img2.png'));
      const [s0, s1, mid] = [await stylizeImage(gpu(), net, img, { style: 0 }), await stylizeImage(gpu(), net, img, { style: 1 }), await stylizeImage(gpu(), net, img, { style: [1, 1] })];
      expect(s0.data).not.toEqual(s1.data);
      expect(mid.data).not.toEqual(s0.data);
    } finally {
      net.dispose();
    }
  });
});
