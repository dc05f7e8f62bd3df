// `perceptual upscale --model FILE IN... --out DIR [--hist-match] [--tile PX]`: super-resolves files and folders of
// any size with an SR model (large images run in tiles); unreadable inputs are reported by name and the rest still
// processed (exit 1 at the end if any failed). Outputs are PNG files named after the inputs.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { listImages } from '../eval/sr-eval.js';
import { matchHistogram } from '../eval/metrics.js';
import { Gpu } from '../gpu/index.js';
import { readFileBytes } from '../io/files.js';
import { readImage, writeImage } from '../io/image-node.js';
import { loadSRNet, upscaleImage, type SRNet } from '../nets/sr-net.js';
import { command } from './command.js';
import { expandInputs, forEachImage } from './images.js';

export const upscale = command({
  name: 'upscale',
  summary: 'super-resolve images with a trained SR model',
  description: `Super-resolves images (files, or folders of image files) by the model's scale (x4 or x8) with an SR network
written by 'perceptual train-sr'. Any image size: large images run in overlapping tiles.`,
  positionals: { name: 'IN' },
  options: {
    model: { type: 'string', arg: 'FILE', required: true, help: 'the SR network (.safetensors, arch sr-net)' },
    out: { type: 'string', arg: 'DIR', required: true, help: 'output folder (created); outputs are PNG files named after the inputs' },
    'hist-match': { type: 'boolean', help: "match each output's histogram to its input's, per channel (the paper's post-processing)" },
    tile: { type: 'int', arg: 'PX', min: 1, help: "LR tile size (default: whole images when they fit the GPU's buffer limits)" },
  },
  async run(o, inputs) {
    if (!existsSync(o.model)) throw new Error(`model file '${o.model}' not found`);
    const files = await expandInputs(inputs, listImages);
    await mkdir(o.out, { recursive: true });
    const gpu = await Gpu.create();
    let net: SRNet | null = null;
    try {
      try {
        net = loadSRNet(gpu, await readFileBytes(o.model), { file: o.model }).eval();
      } catch (e) {
        throw new Error(`cannot load the model: ${(e as Error).message}`);
      }
      const sr = net;
      const written = new Map<string, string>();
      return await forEachImage('upscale', files, async (f) => {
        const t0 = performance.now();
        const dest = join(o.out, `${basename(f, extname(f))}.png`);
        const before = written.get(dest);
        if (before !== undefined) throw new Error(`its output ${dest} would overwrite that of ${before}; rename one of them`);
        const img = await readImage(f);
        let up = await upscaleImage(sr, img, { tile: o.tile });
        if (o['hist-match']) up = matchHistogram(up, img);
        await writeImage(dest, up);
        written.set(dest, f);
        const secs = ((performance.now() - t0) / 1000).toFixed(2);
        return `${f} → ${dest} (${img.width}×${img.height} → ${up.width}×${up.height}, ${secs} s)`;
      });
    } finally {
      net?.dispose();
      gpu.destroy();
    }
  },
});
