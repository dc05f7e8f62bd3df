// `perceptual eval-sr (--model FILE | --bicubic) --scale 4|8 [--json] [--hist-match] [--tile N] DIR`: PSNR and
// SSIM (Y channel) of super-resolution on a folder of HR images, with the SR literature's protocol (eval/sr-eval.ts).
import { existsSync } from 'node:fs';
import { Gpu } from '../gpu/index.js';
import { readFileBytes } from '../io/files.js';
import { evaluateSrFolder, type SrImageResult } from '../eval/sr-eval.js';
import { SR_SCALES, loadSRNet, type SRNet } from '../nets/sr-net.js';
import { UsageError, command } from './command.js';
import { Progress } from './progress.js';

const row = (file: string, size: string, psnr: string, ssim: string) => `${file.padEnd(24)} ${size.padStart(9)}  ${psnr.padStart(9)}  ${ssim.padStart(6)}`;
const fmt = (r: { psnr: number; ssim: number }) => [r.psnr.toFixed(4), r.ssim.toFixed(4)] as const;

export const evalSr = command({
  name: 'eval-sr',
  summary: 'PSNR/SSIM (Y) of super-resolution, a model or bicubic, on a folder of HR images',
  synopsis: ['(--model FILE | --bicubic | --outputs DIR) [--scale 4|8] [--json] [--hist-match] [--tile N] DIR'],
  description: `Super-resolution PSNR / SSIM on the Y channel for every HR image in DIR (e.g. shared/data/sr/Set5):
each image is cropped to a multiple of the scale (top-left), downscaled with MATLAB-exact bicubic imresize (uint8),
upscaled by the model (or bicubic), and compared on Y = 16 + 65.481 R + 128.553 G + 24.966 B with a border of
'scale' pixels shaved; SSIM of Wang et al. (11x11 Gaussian window, sigma 1.5). Prints each image and the mean.`,
  positionals: { name: 'DIR', max: 1 },
  options: {
    model: { type: 'string', arg: 'FILE', help: 'an SR network (.safetensors written by this tool, arch sr-net)' },
    bicubic: { type: 'boolean', help: 'bicubic upscaling instead of a model (the baseline)' },
    outputs: { type: 'string', arg: 'DIR', help: "another tool's SR images, one per HR image (same base name, HR size)" },
    scale: { type: 'string', choices: SR_SCALES.map(String), help: "required with --bicubic, defaults to the model's scale" },
    'hist-match': { type: 'boolean', help: 'match each output\'s histogram to its LR input (per channel) before measuring' },
    tile: { type: 'int', min: 1, help: "LR tile size for the model (default: whole images when they fit the GPU's buffer limits)" },
    json: { type: 'boolean', help: 'print { mean: { psnr, ssim }, images: [{ file, psnr, ssim }] }' },
  },
  async run(o, [dir]) {
    if ([o.model, o.bicubic, o.outputs].filter(Boolean).length !== 1) throw new UsageError('give exactly one of --model FILE, --bicubic and --outputs DIR');
    let scale = o.scale === undefined ? undefined : Number(o.scale);
    if ((o.bicubic || o.outputs) && scale === undefined) throw new UsageError(`${o.bicubic ? '--bicubic' : '--outputs'} needs --scale 4 or --scale 8`);
    if (o.outputs && o['hist-match']) throw new UsageError('--hist-match needs the LR input: not with --outputs');
    if (o.outputs && !existsSync(o.outputs)) throw new Error(`folder '${o.outputs}' not found (--outputs)`);
    if (!existsSync(dir)) throw new Error(`folder '${dir}' not found`);

    let gpu: Gpu | null = null;
    let model: SRNet | undefined;
    try {
      if (o.model) {
        if (!existsSync(o.model)) throw new Error(`model file '${o.model}' not found`);
        gpu = await Gpu.create();
        try {
          model = loadSRNet(gpu, await readFileBytes(o.model), { file: o.model }).eval();
        } catch (e) {
          throw new Error(`cannot load the model: ${(e as Error).message}`);
        }
        if (scale !== undefined && model.scale !== scale) throw new Error(`the model '${o.model}' upscales ×${model.scale}, not ×${scale} (--scale)`);
        scale = model.scale;
      }
      const method = model ? `${model} from ${o.model}` : o.outputs ? `the images in ${o.outputs}` : 'bicubic';
      // The progress line is on stderr; stdout holds the rows (or, with --json, the report alone).
      const progress = new Progress({ label: 'eval-sr', unit: 'steps' });
      if (!o.json) {
        console.log(`×${scale} ${method}${o['hist-match'] ? ', histogram-matched to the LR input' : ''} on ${dir} (Y channel, ${scale} px border shaved)`);
        console.log(row('image', 'size', 'PSNR (dB)', 'SSIM'));
      }
      let result;
      try {
        result = await evaluateSrFolder(dir, {
          scale: scale!,
          model,
          histMatch: o['hist-match'],
          outputs: o.outputs,
          tile: o.tile,
          onImage: (r: SrImageResult, i, n) => {
            if (!o.json) progress.interrupt(() => console.log(row(r.file, `${r.width}x${r.height}`, ...fmt(r))));
            progress.update(i + 1, n);
          },
        });
        progress.finish();
      } catch (e) {
        progress.fail();
        throw e;
      }
      if (o.json) {
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
  },
});
