// The shipped ×4 super-resolution model: `perceptual upscale` uses it without --model, and it beats bicubic
// upsampling on Set5 under the paper's protocol (Y channel, 4 px shaved), PSNR and SSIM.
import { existsSync, mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SR_MODEL } from '../src/api/default-model.js';
import { upscale } from '../src/cli/upscale.js';
import { evaluateSrFolder } from '../src/eval/sr-eval.js';
import { readImage, writeImage } from '../src/io/image-node.js';
import { resize } from '../src/io/resize.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { loadSRNet } from '../src/nets/sr-net.js';
import { useGpu } from './helpers/gpu.js';
import { SHARED, SHARED_TAG } from './helpers/shared.js';

const gpu = useGpu();
const path = fileURLToPath(DEFAULT_SR_MODEL.url);
const SET5 = join(SHARED, 'data/sr/Set5');

describe('shipped ×4 SR model', () => {
  it('ships in the repository and records what it is and how it was trained', async () => {
    expect(existsSync(path), `${path} is missing`).toBe(true);
    const { metadata } = readSafetensors(new Uint8Array(await readFile(path)));
    expect(metadata.arch).toBe('sr-net');
    expect(metadata.scale).toBe('4');
    expect(metadata.residual).toBe('bicubic');
    expect(JSON.parse(metadata.training).steps).toBeGreaterThan(0);
  });

  it('upscale without --model uses it: ×4 the size', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-sr-default-'));
    const small = join(dir, 'village-128.png');
    await writeImage(small, resize(await readImage('examples/village.png'), 128, 96));
    expect(await upscale([small, '--out', join(dir, 'out'), '--quiet'])).toBe(0);
    const b = await readImage(join(dir, 'out', 'village-128.png'));
    expect([b.width, b.height]).toEqual([512, 384]);
  });
});

describe.skipIf(!existsSync(SET5))(`shipped ×4 SR model on Set5 ${SHARED_TAG}`, () => {
  it('beats bicubic in PSNR and SSIM', async () => {
    const net = loadSRNet(gpu(), new Uint8Array(await readFile(path))).eval();
    try {
      const ours = await evaluateSrFolder(SET5, { scale: 4, model: net });
      const bicubic = await evaluateSrFolder(SET5, { scale: 4 });
      console.log(`Set5 ×4: ${DEFAULT_SR_MODEL.name} ${ours.mean.psnr.toFixed(2)} dB / ${ours.mean.ssim.toFixed(4)}, bicubic ${bicubic.mean.psnr.toFixed(2)} dB / ${bicubic.mean.ssim.toFixed(4)}`);
      expect(ours.mean.psnr).toBeGreaterThan(bicubic.mean.psnr + 0.3);
      expect(ours.mean.ssim).toBeGreaterThan(bicubic.mean.ssim);
    } finally {
      net.dispose();
    }
  });
});
