// Super-resolution training end to end on tiny settings: the LR pipeline equals the CPU reference (blur + MATLAB
// bicubic), the CLI trains and writes a model that `upscale` uses on any size, a run interrupted and resumed ends
// with exactly the weights of an uninterrupted one, and the feature loss runs on a partial VGG-16 (the real one from
// ../shared when present, else a generated one with the real shapes).
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tidy } from '../src/autograd/tensor.js';
import { makeLowRes, trainSR } from '../src/api/train-sr.js';
import { trainSrCli } from '../src/cli/train-sr.js';
import { upscale } from '../src/cli/upscale.js';
import { gaussianBlur, imresize } from '../src/io/bicubic.js';
import { readImage, writeImage } from '../src/io/image-node.js';
import { createImage, imageToTensor, type Image } from '../src/io/image.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { loadSRNet } from '../src/nets/sr-net.js';
import { useGpu } from './helpers/gpu.js';
import { rng } from './helpers/rand.js';
import { haveShared, randomWeightFile, shared } from './helpers/shared.js';

const REAL_VGG = 'weights/vgg16_partial_relu2_2.safetensors';
/** Up to relu2_2, as the real partial file. */
const VGG = haveShared(REAL_VGG) ? shared(REAL_VGG) : randomWeightFile('vgg16', 7, 4);
const gpu = useGpu();

/** A smooth random image with integer values (like a decoded file). */
function smoothImage(w: number, h: number, r: () => number): Image {
  const f = Array.from({ length: 9 }, () => r());
  const data = new Float32Array(3 * w * h);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = 127.5 + 60 * Math.sin(x * (0.2 + f[c]) + y * f[c + 3] + 6 * f[c + 6]) + 60 * (r() - 0.5);
        data[c * w * h + y * w + x] = Math.round(Math.min(255, Math.max(0, v)));
      }
    }
  }
  return createImage(w, h, data);
}

async function folder(n: number, seed: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'pw-sr-'));
  const r = rng(seed);
  for (let i = 0; i < n; i++) {
    // Sizes around the patch: some images are smaller than it (resized up), some larger (random crops).
    await writeImage(join(dir, `img${i}.png`), smoothImage(12 + Math.floor(r() * 20), 12 + Math.floor(r() * 20), r));
  }
  return dir;
}

const tiny = { width: 4, blocks: 1, size: 16, batchSize: 2 };

describe('makeLowRes', () => {
  it.each([
    [4, 32, 24],
    [8, 64, 40],
  ])('×%i of a %ix%i HR batch equals imresize(gaussianBlur(hr), 1/scale) in uint8 on the CPU', async (scale, w, h) => {
    const r = rng(10 + scale);
    const hr = [smoothImage(w, h, r), smoothImage(w, h, r)];
    const got = await tidy(() => makeLowRes(gpu(), imageToTensor(gpu(), hr), scale)).data();
    expect(got.length).toBe(2 * 3 * (w / scale) * (h / scale));
    let differ = 0;
    hr.forEach((img, i) => {
      const want = imresize(gaussianBlur(img, 1), { scale: 1 / scale }, { uint8: true });
      expect([want.width, want.height]).toEqual([w / scale, h / scale]);
      const n = want.data.length;
      for (let k = 0; k < n; k++) {
        const g = got[i * n + k];
        expect(Number.isInteger(g) && g >= 0 && g <= 255).toBe(true);
        // The float blur differs from the float64 one in the last bits, which may flip a rounding at .5.
        expect(Math.abs(g - want.data[k])).toBeLessThanOrEqual(1);
        if (g !== want.data[k]) differ++;
      }
    });
    expect(differ).toBeLessThanOrEqual(1);
    // The single-image form gives the same values.
    const one = await tidy(() => makeLowRes(gpu(), hr[1], scale)).data();
    expect(one).toEqual(got.subarray(got.length / 2));
    expect(() => tidy(() => makeLowRes(gpu(), smoothImage(w + 1, h, r), scale))).toThrow(/multiple of the scale/);
  });
});

describe('train-sr', () => {
  it('the CLI trains with l_pixel (finite terms, samples, model file); upscale handles odd sizes and bad inputs', async () => {
    const data = await folder(3, 1);
    const out = mkdtempSync(join(tmpdir(), 'pw-sr-cli-'));
    const sample = join(data, 'img0.png');
    const code = await trainSrCli([
      '--scale', '8', '--data', data, '--loss', 'pixel', '--out', out, '--width', '4', '--blocks', '1', '--size', '16',
      '--batch', '2', '--steps', '2', '--sample', sample, '--sample-every', '2',
    ]);
    expect(code).toBe(0);
    const log = readFileSync(join(out, 'loss.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log.map((l) => l.step)).toEqual([1, 2]);
    for (const k of ['total', 'pixel', 'tv']) expect(Number.isFinite(log[1][k]) && log[1][k] > 0, k).toBe(true);
    expect(readFileSync(join(out, 'loss.svg'), 'utf8')).toContain('<svg');
    expect(readdirSync(join(out, 'samples')).sort()).toEqual(['img0-lr.png', 'img0-step2.png']);
    const bytes = readFileSync(join(out, 'model.safetensors'));
    const meta = readSafetensors(bytes).metadata;
    expect(meta).toMatchObject({ arch: 'sr-net', scale: '8', width: '4', blocks: '1', norm: 'batch' });
    expect(JSON.parse(meta.training)).toMatchObject({ kind: 'sr', loss: 'pixel', steps: 2, size: 16, tvWeight: 1e-8 });
    const net = loadSRNet(gpu(), bytes);
    expect(net.scale).toBe(8);
    net.dispose();

    const inputs = mkdtempSync(join(tmpdir(), 'pw-sr-in-'));
    const odd = join(inputs, 'odd.jpg');
    await writeImage(odd, smoothImage(7, 5, rng(3)));
    writeFileSync(join(inputs, 'broken.png'), 'not a png');
    const up = mkdtempSync(join(tmpdir(), 'pw-sr-up-'));
    const errors: string[] = [];
    const orig = console.error;
    console.error = (...a: unknown[]) => errors.push(a.join(' '));
    let uc: number;
    try {
      uc = await upscale(['--model', join(out, 'model.safetensors'), inputs, '--out', up, '--tile', '3']);
    } finally {
      console.error = orig;
    }
    expect(uc).toBe(1); // one input was not an image; the other was still processed
    expect(errors.join('\n')).toContain('broken.png');
    expect(readdirSync(up)).toEqual(['odd.png']);
    const o = await readImage(join(up, 'odd.png'));
    expect([o.width, o.height]).toEqual([56, 40]);

    // --hist-match: the output takes the input's histogram, so its values stay within the input's range.
    const hm = mkdtempSync(join(tmpdir(), 'pw-sr-hm-'));
    expect(await upscale(['--model', join(out, 'model.safetensors'), odd, '--out', hm, '--hist-match'])).toBe(0);
    const src = await readImage(odd);
    const m = await readImage(join(hm, 'odd.png'));
    expect([m.width, m.height]).toEqual([56, 40]);
    for (let c = 0; c < 3; c++) {
      const plane = (img: Image) => img.data.subarray(c * img.width * img.height, (c + 1) * img.width * img.height);
      const [lo, hi] = [Math.min(...plane(src)), Math.max(...plane(src))];
      for (const v of plane(m)) expect(v >= lo && v <= hi).toBe(true);
    }
  });

  it('resume after an interruption gives exactly the weights of the uninterrupted run', async () => {
    const data = await folder(3, 2);
    const a = mkdtempSync(join(tmpdir(), 'pw-sr-a-'));
    const b = mkdtempSync(join(tmpdir(), 'pw-sr-b-'));
    const opts = { ...tiny, data, scale: 4 as const, loss: 'pixel' as const, steps: 4, seed: 5 };
    const full = await trainSR(gpu(), { ...opts, outDir: a });
    expect(full.status).toBe('completed');
    expect(Number.isFinite(full.losses!.total)).toBe(true);
    const ctl = new AbortController();
    const first = await trainSR(gpu(), { ...opts, outDir: b, signal: ctl.signal, onProgress: (p) => p.step === 2 && ctl.abort() });
    expect(first.status).toBe('aborted');
    expect(first.step).toBe(2);
    const second = await trainSR(gpu(), { ...opts, outDir: b, resume: true });
    expect(second.resumedFrom).toBe(2);
    expect(second.step).toBe(4);
    const wa = readSafetensors(readFileSync(join(a, 'model.safetensors'))).tensors;
    const wb = readSafetensors(readFileSync(join(b, 'model.safetensors'))).tensors;
    expect([...wb.keys()]).toEqual([...wa.keys()]);
    for (const [k, t] of wa) expect(wb.get(k)!.data, k).toEqual(t.data);
    // A different architecture cannot resume this checkpoint.
    await expect(trainSR(gpu(), { ...opts, width: 5, outDir: b, steps: 5, resume: true })).rejects.toThrow();
  });

  it('rejects a patch size that is not a multiple of the scale', async () => {
    const data = await folder(1, 3);
    await expect(trainSR(gpu(), { ...tiny, size: 18, data, outDir: mkdtempSync(join(tmpdir(), 'pw-sr-x-')), scale: 4, loss: 'pixel', steps: 1 })).rejects.toThrow(
      /patch size 18 must be a multiple of the scale 4/,
    );
  });
});

describe(`train-sr with l_feat (${haveShared(REAL_VGG) ? 'the real partial VGG-16' : 'a generated partial VGG-16'})`, () => {
  it('trains on relu2_2 of a VGG-16 with finite feature and TV terms', async () => {
    const data = await folder(2, 4);
    const out = mkdtempSync(join(tmpdir(), 'pw-sr-feat-'));
    const r = await trainSR(gpu(), { ...tiny, batchSize: 1, data, outDir: out, scale: 4, loss: 'feat', lossWeights: VGG, steps: 2 });
    expect(r.step).toBe(2);
    expect(Object.keys(r.losses!).sort()).toEqual(['feat', 'total', 'tv']);
    for (const v of Object.values(r.losses!)) expect(Number.isFinite(v) && v > 0).toBe(true);
    const meta = readSafetensors(readFileSync(r.model)).metadata;
    expect(JSON.parse(meta.training)).toMatchObject({ loss: 'feat', lossNet: 'vgg16', featLayer: 'relu2_2', tvWeight: 1e-6 });
  });

  it('names the layers on offer when the feature layer is missing', async () => {
    const data = await folder(1, 5);
    await expect(
      trainSR(gpu(), { ...tiny, data, outDir: mkdtempSync(join(tmpdir(), 'pw-sr-y-')), scale: 4, loss: 'feat', lossWeights: VGG, featLayer: 'relu3_3', steps: 1 }),
    ).rejects.toThrow(/no layer relu3_3; it offers .*relu2_2/);
  });
});
