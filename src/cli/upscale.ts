// `perceptual upscale --model FILE IN... --out DIR [--hist-match] [--tile PX]`: super-resolves files and folders of
// any size with an SR model (large images run in tiles); unreadable inputs are reported by name and the rest still
// processed (exit 1 at the end if any failed). Outputs are PNG files named after the inputs.
import { existsSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { listImages } from '../eval/sr-eval.js';
import { matchHistogram } from '../eval/metrics.js';
import { Gpu } from '../gpu/index.js';
import { readFileBytes } from '../io/files.js';
import { readImage, writeImage } from '../io/image-node.js';
import { loadSRNet, upscaleImage, type SRNet } from '../nets/sr-net.js';

const USAGE = `usage: perceptual upscale --model FILE IN... --out DIR [--hist-match] [--tile PX]

Super-resolves images (files, or folders of image files) by the model's scale (x4 or x8) with an SR network
written by 'perceptual train-sr'. Any image size: large images run in overlapping tiles.

  --model FILE    the SR network (.safetensors, arch sr-net)
  --out DIR       output folder (created); outputs are PNG files named after the inputs
  --hist-match    match each output's histogram to its input's, per channel (the paper's post-processing)
  --tile PX       LR tile size (default: whole images when they fit the GPU's buffer limits)
  -h, --help      this help`;

function usageError(msg: string): number {
  console.error(`perceptual upscale: ${msg}\n\n${USAGE}`);
  return 2;
}

/** Files as given; folders replaced by their image files (sorted). */
async function expand(inputs: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const p of inputs) {
    const s = await stat(p).catch(() => null);
    if (s?.isDirectory()) files.push(...listImages(p));
    else files.push(p);
  }
  return files;
}

export async function upscale(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        model: { type: 'string' },
        out: { type: 'string' },
        'hist-match': { type: 'boolean' },
        tile: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    return usageError((e as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  if (!v.model) return usageError('--model FILE is required');
  if (!v.out) return usageError('--out DIR is required');
  if (positionals.length === 0) return usageError('at least one input is required');
  let tile: number | undefined;
  if (v.tile !== undefined) {
    tile = Number(v.tile);
    if (!(Number.isInteger(tile) && tile >= 1)) return usageError(`--tile must be a positive integer, got '${v.tile}'`);
  }
  if (!existsSync(v.model)) {
    console.error(`perceptual upscale: model file '${v.model}' not found`);
    return 1;
  }
  const files = await expand(positionals);
  await mkdir(v.out, { recursive: true });
  const gpu = await Gpu.create();
  let net: SRNet | null = null;
  let failed = 0;
  try {
    try {
      net = loadSRNet(gpu, await readFileBytes(v.model), { file: v.model }).eval();
    } catch (e) {
      console.error(`perceptual upscale: cannot load the model: ${(e as Error).message}`);
      return 1;
    }
    const written = new Map<string, string>();
    for (const f of files) {
      const t0 = performance.now();
      try {
        const dest = join(v.out, `${basename(f, extname(f))}.png`);
        const before = written.get(dest);
        if (before !== undefined) throw new Error(`its output ${dest} would overwrite that of ${before}; rename one of them`);
        const img = await readImage(f);
        let sr = await upscaleImage(net, img, { tile });
        if (v['hist-match']) sr = matchHistogram(sr, img);
        await writeImage(dest, sr);
        written.set(dest, f);
        const secs = ((performance.now() - t0) / 1000).toFixed(2);
        console.log(`${f} → ${dest} (${img.width}×${img.height} → ${sr.width}×${sr.height}, ${secs} s)`);
      } catch (e) {
        failed++;
        console.error(`perceptual upscale: ${f}: ${(e as Error).message}`);
      }
    }
  } finally {
    net?.dispose();
    gpu.destroy();
  }
  if (failed) console.error(`perceptual upscale: ${failed} of ${files.length} image(s) failed`);
  return failed ? 1 : 0;
}
