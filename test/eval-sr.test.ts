// `perceptual eval-sr` and the folder evaluation: the bicubic ×4 baselines of Set5, Set14 and BSD100 that the
// protocol must reproduce (../shared/PAPER.md), a model run (random weights) against the library functions,
// greyscale files, histogram matching, and usage errors.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { evalSr } from '../src/cli/eval-sr.js';
import { imresize } from '../src/io/bicubic.js';
import { createImage } from '../src/io/image.js';
import { writeImage } from '../src/io/image-node.js';
import { matchHistogram, srMetrics } from '../src/eval/metrics.js';
import { cropToMultiple, evaluateSrFolder, toUint8Values } from '../src/eval/sr-eval.js';
import { SRNet, saveSRNet, upscaleImage } from '../src/nets/sr-net.js';
import { useGpu } from './helpers/gpu.js';
import { rng, uniform } from './helpers/rand.js';
import { SHARED_TAG } from './helpers/shared.js';

const gpu = useGpu();

const SR = fileURLToPath(new URL('../../shared/data/sr', import.meta.url));
const HAVE_SR = ['Set5', 'Set14', 'BSD100'].every((s) => existsSync(join(SR, s)));

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const code = await evalSr(argv);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
    stderr.mockRestore();
  }
}

describe.skipIf(!HAVE_SR)(`bicubic ×4 baselines (PSNR / SSIM on Y, 4 px shaved) ${SHARED_TAG}`, () => {
  it('Set5: 28.430 dB / 0.8111, through the CLI (--json and text)', async () => {
    const r = await run(['--bicubic', '--scale', '4', '--json', join(SR, 'Set5')]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.images.map((i: { file: string }) => i.file)).toEqual(['baby.png', 'bird.png', 'butterfly.png', 'head.png', 'woman.png']);
    expect(Object.keys(j.images[0])).toEqual(['file', 'psnr', 'ssim']);
    expect(Math.abs(j.mean.psnr - 28.43)).toBeLessThan(0.005);
    expect(Math.abs(j.mean.ssim - 0.8111)).toBeLessThan(0.0005);
    const t = await run(['--bicubic', '--scale', '4', join(SR, 'Set5')]);
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/baby\.png\s+512x512\s+\d+\.\d{4}\s+0\.\d{4}/);
    expect(t.out).toMatch(/mean of 5\s+28\.430\d\s+0\.811\d/);
  });

  it('Set14: 25.997 dB / 0.7029 (bridge.png is greyscale, evaluated on its grey values)', async () => {
    const r = await evaluateSrFolder(join(SR, 'Set14'), { scale: 4 });
    expect(r.images.length).toBe(14);
    expect(r.images.filter((i) => i.grey).map((i) => i.file)).toEqual(['bridge.png']);
    expect(r.images.find((i) => i.file === 'comic.png')).toMatchObject({ width: 248, height: 360 });
    expect(Math.abs(r.mean.psnr - 25.997)).toBeLessThan(0.005);
    expect(Math.abs(r.mean.ssim - 0.7029)).toBeLessThan(0.0005);
  });

  it('BSD100: 25.962 dB / 0.6681', async () => {
    const r = await evaluateSrFolder(join(SR, 'BSD100'), { scale: 4 });
    expect(r.images.length).toBe(100);
    expect(Math.abs(r.mean.psnr - 25.962)).toBeLessThan(0.005);
    expect(Math.abs(r.mean.ssim - 0.6681)).toBeLessThan(0.0005);
  }, 90_000);
});

describe('eval-sr with a model, greyscale files, usage', () => {
  let dir = '';
  let modelFile = '';
  let net: SRNet;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'eval-sr-'));
    const r = rng(1);
    // A smooth colour image 70x45 (cropped to 68x44) and a greyscale 24x24 one.
    const w = 70, h = 45;
    const d = new Float32Array(3 * w * h);
    for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) d[c * w * h + y * w + x] = Math.round(127 + 100 * Math.sin(x / (5 + c) + y / 7) + 20 * r());
    await writeImage(join(dir, 'a.png'), createImage(w, h, d));
    const g = Uint8Array.from(uniform(24 * 24, r, 0, 255).map(Math.floor));
    await sharp(g, { raw: { width: 24, height: 24, channels: 1 } }).toColourspace('b-w').png().toFile(join(dir, 'b.png'));
    await writeFile(join(dir, 'notes.txt'), 'not an image');
    net = new SRNet(gpu(), { scale: 4, width: 4, blocks: 1, rand: rng(2) });
    modelFile = join(dir, 'sr.safetensors');
    await writeFile(modelFile, await saveSRNet(net));
    net.eval();
  });
  afterAll(async () => {
    net?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('--model: the metrics of the rounded model output on the exact bicubic LR; --hist-match', async () => {
    const img = await import('../src/io/image-node.js').then((m) => m.readImage(join(dir, 'a.png')));
    const hr = cropToMultiple(img, 4);
    const lr = imresize(hr, { scale: 0.25 }, { uint8: true });
    const out = await upscaleImage(net, lr);
    const want = srMetrics(toUint8Values(out), hr, { shave: 4 });
    const wantHm = srMetrics(toUint8Values(matchHistogram(out, lr)), hr, { shave: 4 });

    const r = await run(['--model', modelFile, '--json', dir]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.images.map((i: { file: string }) => i.file)).toEqual(['a.png', 'b.png']);
    expect(j.images[0].psnr).toBeCloseTo(want.psnr, 3);
    expect(j.images[0].ssim).toBeCloseTo(want.ssim, 4);
    expect(j.mean.psnr).toBeCloseTo((j.images[0].psnr + j.images[1].psnr) / 2, 10);

    const hm = await run(['--model', modelFile, '--scale', '4', '--hist-match', '--tile', '5', '--json', dir]);
    expect(hm.code).toBe(0);
    expect(JSON.parse(hm.out).images[0].psnr).toBeCloseTo(wantHm.psnr, 3);
  });

  it("--outputs scores another tool's SR images: bicubic outputs written to files give bicubic's figures exactly", async () => {
    const outs = await mkdtemp(join(tmpdir(), 'eval-sr-outs-'));
    const { readImage } = await import('../src/io/image-node.js');
    for (const [name, ext] of [['a', 'png'], ['b', 'webp']] as const) {
      const hr = cropToMultiple(await readImage(join(dir, `${name}.png`)), 4);
      const sr = imresize(imresize(hr, { scale: 0.25 }, { uint8: true }), { scale: 4 }, { uint8: true });
      // Lossless, so the file holds exactly the bicubic image (webp: a second extension is found too).
      if (ext === 'png') await writeImage(join(outs, `${name}.png`), sr);
      else await sharp(Buffer.from(toRGB8(sr)), { raw: { width: sr.width, height: sr.height, channels: 3 } }).webp({ lossless: true }).toFile(join(outs, 'b.webp'));
    }
    const want = JSON.parse((await run(['--bicubic', '--scale', '4', '--json', dir])).out);
    const r = await run(['--outputs', outs, '--scale', '4', '--json', dir]);
    expect([r.code, r.err]).toEqual([0, '']);
    expect(JSON.parse(r.out)).toEqual(want);
    expect((await run(['--outputs', outs, dir])).code).toBe(2); // needs --scale
    expect((await run(['--outputs', outs, '--scale', '4', '--hist-match', dir])).code).toBe(2);
    await writeImage(join(outs, 'a.png'), createImage(8, 8));
    let e = await run(['--outputs', outs, '--scale', '4', dir]);
    expect([e.code, e.err]).toEqual([1, `perceptual eval-sr: output '${join(outs, 'a.png')}' is 8x8, but the HR image cropped to the scale is 68x44`]);
    await rm(join(outs, 'a.png'));
    e = await run(['--outputs', outs, '--scale', '4', dir]);
    expect(e.code).toBe(1);
    expect(e.err).toContain(`no output for 'a.png' in '${outs}'`);
    await rm(outs, { recursive: true, force: true });
  });

  it('a greyscale file is measured on its grey values', async () => {
    const r = await evaluateSrFolder(dir, { scale: 4 });
    expect(r.images.map((i) => [i.file, i.grey, i.width, i.height])).toEqual([['a.png', false, 68, 44], ['b.png', true, 24, 24]]);
  });

  it('usage errors exit 2, missing files and mismatches exit 1', async () => {
    for (const argv of [[dir], ['--bicubic', '--model', modelFile, dir], ['--bicubic', dir], ['--bicubic', '--scale', '3', dir], ['--bicubic', '--scale', '4'], ['--bicubic', '--scale', '4', '--tile', '0', dir], ['--frob']]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err).toContain('usage: perceptual eval-sr');
    }
    let r = await run(['--bicubic', '--scale', '4', join(dir, 'missing')]);
    expect([r.code, r.err]).toEqual([1, `perceptual eval-sr: folder '${join(dir, 'missing')}' not found`]);
    r = await run(['--model', join(dir, 'none.safetensors'), dir]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('not found');
    r = await run(['--model', modelFile, '--scale', '8', dir]);
    expect([r.code, r.err]).toEqual([1, `perceptual eval-sr: the model '${modelFile}' upscales ×4, not ×8 (--scale)`]);
    r = await run(['--model', join(dir, 'notes.txt'), dir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/cannot load the model: .*notes\.txt/);
    r = await run(['--bicubic', '--scale', '8', dir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/b\.png' \(24x24\) is too small for ×8 evaluation/);
    expect((await run(['--help'])).code).toBe(0);
  });
});

/** Interleaved 8-bit RGB of a planar image of integer values. */
function toRGB8(img: { width: number; height: number; data: Float32Array }): Uint8Array {
  const n = img.width * img.height;
  const out = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) out[3 * i + c] = img.data[c * n + i];
  return out;
}
