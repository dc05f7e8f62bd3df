// Style training end to end on tiny settings: the CLI trains and writes a model that stylizes; a run
// interrupted and resumed ends with exactly the weights of an uninterrupted one.
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { trainStyle } from '../src/api/train-style.js';
import { trainStyleCli } from '../src/cli/train-style.js';
import { stylize } from '../src/cli/stylize.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { readImage, writeImage } from '../src/io/image-node.js';
import { createImage } from '../src/io/image.js';
import { useGpu } from './helpers/gpu.js';
import { rng } from './helpers/rand.js';

const SHARED = '../shared';
const SQUEEZENET = join(SHARED, 'weights/squeezenet1_1.safetensors');
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

describe.skipIf(!existsSync(SQUEEZENET))('train-style (needs ../shared/weights/squeezenet1_1.safetensors)', () => {
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

