// The stability term of style training (issue #18, Wang et al. 2020): training with --stability-weight runs, logs
// the term every step, and lowers the warp-consistency of the network it trains; --init fine-tunes a model file.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { noGrad, tidy } from '../src/autograd/tensor.js';
import { loadModel } from '../src/api/model-node.js';
import { trainStyle } from '../src/api/train-style.js';
import { trainStyleCli } from '../src/cli/train-style.js';
import { readImage, writeImage } from '../src/io/image-node.js';
import { createImage, imageToTensor } from '../src/io/image.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { affineAbout, affineWarp, warpConsistency, type Affine } from '../src/layers/warp.js';
import { saveTransformerNet } from '../src/nets/model-file.js';
import { TransformerNet } from '../src/nets/transformer-net.js';
import { Rng } from '../src/train/rng.js';
import { useGpu } from './helpers/gpu.js';
import { randomVgg } from './helpers/random-vgg.js';
import { rng } from './helpers/rand.js';

const gpu = useGpu();

/** Smooth random images (a few blobs), so that small warps of them are meaningful. */
async function folder(n: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'pw-stab-'));
  const r = rng(3);
  for (let i = 0; i < n; i++) {
    const S = 28;
    const c = Array.from({ length: 9 }, () => r());
    const data = Float32Array.from({ length: 3 * S * S }, (_, k) => {
      const [ch, y, x] = [Math.floor(k / (S * S)), Math.floor(k / S) % S, k % S];
      return 128 + 100 * Math.sin(x * (0.2 + 0.3 * c[ch]) + y * (0.1 + 0.3 * c[ch + 3]) + 6 * c[ch + 6]);
    });
    await writeImage(join(dir, `img${i}.png`), createImage(S, S, data));
  }
  return dir;
}

/** Warp-consistency of a network on fixed images and fixed small motions (no noise). */
async function consistency(net: TransformerNet, dir: string): Promise<number> {
  const imgs = await Promise.all([0, 1].map((i) => readImage(join(dir, `img${i}.png`))));
  const maps: Affine[] = [affineAbout(13.5, 13.5, { dx: 1.3, dy: -0.7 }), affineAbout(13.5, 13.5, { angle: 0.015, scale: 1.015 })];
  const l = noGrad(() =>
    tidy(() => {
      const x = imageToTensor(gpu(), imgs);
      return warpConsistency(net.forward(affineWarp(x, maps, { padding: 'border' })), net.forward(x), maps);
    }),
  );
  const v = (await l.data())[0];
  l.dispose();
  return v;
}

describe('style training with the stability term', () => {
  it('runs, logs the term, lowers the consistency error; --init starts from a model file', async () => {
    const data = await folder(4);
    const tmp = mkdtempSync(join(tmpdir(), 'pw-stab-run-'));
    const weights = join(tmp, 'vgg19.safetensors');
    writeFileSync(weights, writeSafetensors(randomVgg(4, 6, 'vgg19'), { arch: 'vgg19' }));
    // The starting point: a network as trainStyle would initialise it, saved as a model file for --init.
    const seeded = new Rng(5);
    const net0 = new TransformerNet(gpu(), { variant: 'paper', norm: 'instance', width: 3, rand: () => seeded.next() });
    const init = join(tmp, 'init.safetensors');
    writeFileSync(init, await saveTransformerNet(net0));
    const before = await consistency(net0, data);
    net0.dispose();

    const o = {
      data, style: join(data, 'img0.png'), arch: 'paper' as const, norm: 'instance' as const, size: 28, batchSize: 2, seed: 1,
      lossNet: 'vgg19' as const, lossWeights: weights, styleLayers: ['relu1_1'], contentLayers: ['relu2_2'],
    };
    // Only the stability term drives the weights, so its effect is what changes.
    const out = join(tmp, 'run');
    const r = await trainStyle(gpu(), { ...o, width: 3, outDir: out, steps: 8, lr: 3e-3, contentWeight: 0, styleWeight: 0, stabilityWeight: 1, init });
    expect(r.status).toBe('completed');
    const log = readFileSync(join(out, 'loss.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    for (const l of log) expect(Number.isFinite(l.stability) && l.stability >= 0).toBe(true);
    const trained = await loadModel(gpu(), join(out, 'model.safetensors'));
    const after = await consistency(trained, data);
    trained.dispose();
    console.log(`warp-consistency on fixed motions: ${before.toFixed(3)} at the start, ${after.toFixed(3)} after 8 steps; logged ${log[0].stability.toFixed(3)} → ${log[7].stability.toFixed(3)}`);
    expect(after).toBeLessThan(0.7 * before);
    expect(JSON.parse(readSafetensors(readFileSync(join(out, 'model.safetensors'))).metadata.training)).toMatchObject({ stabilityWeight: 1, init: 'init.safetensors' });

    // --init with another width is refused in one line naming the file and the flags to match.
    const code = await trainStyleCli(['--style', o.style, '--data', data, '--out', join(tmp, 'bad'), '--width', '4', '--size', '28', '--steps', '1', '--loss-net', 'vgg19', '--loss-weights', weights, '--init', init, '--stability-weight', '0.5']);
    expect(code).toBe(1);
  });
});
