// `perceptual eval-sr (--model FILE | --bicubic) --scale 4|8 [--json] [--hist-match] [--tile N] DIR`: PSNR and
// SSIM (Y channel) of super-resolution on a folder of HR images, with the SR literature's protocol (eval/sr-eval.ts).
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Gpu } from '../gpu/index.js';
import { readFileBytes } from '../io/files.js';
import { evaluateSrFolder, type SrImageResult } from '../eval/sr-eval.js';
import { SR_SCALES, loadSRNet, type SRNet } from '../nets/sr-net.js';
import { Progress } from './progress.js';

const USAGE = `usage: perceptual eval-sr (--model FILE | --bicubic) [--scale 4|8] [--json] [--hist-match] [--tile N] DIR

Super-resolution PSNR / SSIM on the Y channel for every HR image in DIR (e.g. shared/data/sr/Set5):
each image is cropped to a multiple of the scale (top-left), downscaled with MATLAB-exact bicubic imresize (uint8),
upscaled by the model (or bicubic), and compared on Y = 16 + 65.481 R + 128.553 G + 24.966 B with a border of
'scale' pixels shaved; SSIM of Wang et al. (11x11 Gaussian window, sigma 1.5). Prints each image and the mean.

options:
  --model FILE    an SR network (.safetensors written by this tool, arch sr-net)
  --bicubic       bicubic upscaling instead of a model (the baseline)
  --scale N       4 or 8; required with --bicubic, defaults to the model's scale
  --hist-match    match each output's histogram to its LR input (per channel) before measuring
  --tile N        LR tile size for the model (default: whole images when they fit the GPU's buffer limits)
  --json          print { mean: { psnr, ssim }, images: [{ file, psnr, ssim }] }
  -h, --help      this help`;

function usageError(msg: string): number {
  console.error(`perceptual eval-sr: ${msg}\n\n${USAGE}`);
  return 2;
}

const row = (file: string, size: string, psnr: string, ssim: string) => `${file.padEnd(24)} ${size.padStart(9)}  ${psnr.padStart(9)}  ${ssim.padStart(6)}`;
const fmt = (r: { psnr: number; ssim: number }) => [r.psnr.toFixed(4), r.ssim.toFixed(4)] as const;

export async function evalSr(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        model: { type: 'string' },
        bicubic: { type: 'boolean' },
        scale: { type: 'string' },
        json: { type: 'boolean' },
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
  if (!v.model === !v.bicubic) return usageError('give exactly one of --model FILE and --bicubic');
  if (positionals.length !== 1) return usageError(positionals.length ? 'give one folder' : 'no folder given');
  const dir = positionals[0];
  let scale: number | undefined;
  if (v.scale !== undefined) {
    scale = Number(v.scale);
    if (!SR_SCALES.includes(scale as 4 | 8)) return usageError(`--scale must be ${SR_SCALES.join(' or ')}, got '${v.scale}'`);
  } else if (v.bicubic) return usageError('--bicubic needs --scale 4 or --scale 8');
  let tile: number | undefined;
  if (v.tile !== undefined) {
    tile = Number(v.tile);
    if (!(Number.isInteger(tile) && tile >= 1)) return usageError(`--tile must be a positive integer, got '${v.tile}'`);
  }
  if (!existsSync(dir)) {
    console.error(`perceptual eval-sr: folder '${dir}' not found`);
    return 1;
  }

  let gpu: Gpu | null = null;
  let model: SRNet | undefined;
  try {
    if (v.model) {
      if (!existsSync(v.model)) {
        console.error(`perceptual eval-sr: model file '${v.model}' not found`);
        return 1;
      }
      gpu = await Gpu.create();
      try {
        model = loadSRNet(gpu, await readFileBytes(v.model), { file: v.model }).eval();
      } catch (e) {
        console.error(`perceptual eval-sr: cannot load the model: ${(e as Error).message}`);
        return 1;
      }
      if (scale !== undefined && model.scale !== scale) {
        console.error(`perceptual eval-sr: the model '${v.model}' upscales ×${model.scale}, not ×${scale} (--scale)`);
        return 1;
      }
      scale = model.scale;
    }
    const method = model ? `${model} from ${v.model}` : 'bicubic';
    const progress = v.json ? new Progress({ label: 'eval-sr', unit: 'steps' }) : null;
    if (!v.json) {
      console.log(`×${scale} ${method}${v['hist-match'] ? ', histogram-matched to the LR input' : ''} on ${dir} (Y channel, ${scale} px border shaved)`);
      console.log(row('image', 'size', 'PSNR (dB)', 'SSIM'));
    }
    let result;
    try {
      result = await evaluateSrFolder(dir, {
        scale: scale!,
        model,
        histMatch: v['hist-match'],
        tile,
        onImage: (r: SrImageResult, i, n) => {
          if (progress) progress.update(i + 1, n);
          else console.log(row(r.file, `${r.width}x${r.height}`, ...fmt(r)));
        },
      });
      progress?.finish();
    } catch (e) {
      progress?.fail();
      console.error(`perceptual eval-sr: ${(e as Error).message}`);
      return 1;
    }
    if (v.json) {
      const out = { mean: { psnr: result.mean.psnr, ssim: result.mean.ssim }, images: result.images.map(({ file, psnr, ssim }) => ({ file, psnr, ssim })) };
      console.log(JSON.stringify(out, null, 2));
    } else {
      console.log(row(`mean of ${result.images.length}`, '', ...fmt(result.mean)));
    }
    return 0;
  } finally {
    model?.dispose();
    gpu?.destroy();
  }
}
