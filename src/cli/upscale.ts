// `perceptual upscale [--model FILE] IN... --out DIR [--hist-match] [--tile PX]`: super-resolves files and folders of
// any size with an SR model (by default the shipped ×4 one; large images run in tiles). Options, the model file,
// every input's header and the outputs are checked before the GPU starts (images.ts); bad inputs are reported by name and the rest still
// processed (exit 1 at the end if any failed). Outputs are PNG files named after the inputs.
import { DEFAULT_SR_MODEL } from '../api/default-model.js';
import { matchHistogram } from '../eval/metrics.js';
import { Gpu } from '../gpu/index.js';
import { readImage, writeImage } from '../io/image-node.js';
import { resizePlanes } from '../io/resize.js';
import { readWeightBytes } from '../io/weight-file.js';
import { loadSRNet, upscaleImage, type SRNet } from '../nets/sr-net.js';
import { command } from './command.js';
import { READS, formatNotes, imageOptions, outputFolder, planImages, runImages } from './images.js';
import { modelOption, readWeightFile } from './weight-files.js';

export const upscale = command({
  name: 'upscale',
  summary: 'super-resolve images with a trained SR model',
  description: `Super-resolves images (files, or folders of image files) by the model's scale (x4 or x8) with an SR network
written by 'perceptual train-sr', by default the shipped x4 model (${DEFAULT_SR_MODEL.name}). Any image size: large images run in overlapping tiles.
${READS}
A transparent image keeps its alpha channel (upscaled bilinearly); 16-bit images are read at full precision and
written with 8 bits. No output may overwrite an input, and no two inputs may share an output name.`,
  positionals: { name: 'IN' },
  options: {
    model: { type: 'string', arg: 'FILE', help: `the SR network (.safetensors, arch sr-net)\n(default: the shipped ${DEFAULT_SR_MODEL.name})` },
    out: { type: 'string', arg: 'DIR', required: true, help: 'output folder (created when the first image is written);\noutputs are PNG files named after the inputs' },
    'hist-match': { type: 'boolean', help: "match each output's histogram to its input's, per channel (the paper's post-processing)" },
    tile: { type: 'int', arg: 'PX', min: 1, help: "LR tile size (default: whole images when they fit the GPU's buffer limits)" },
    precision: { type: 'string', choices: ['auto', 'f32', 'f16'], default: 'auto', help: "storage of activations and weights: f16 halves memory\n(computed in f32); auto: f16 on a GPU, f32 on a CPU adapter" },
    ...imageOptions,
  },
  async run(o, inputs) {
    const { path, name: file } = modelOption(o.model, DEFAULT_SR_MODEL);
    const bytes = await readWeightFile(path, '--model');
    readWeightBytes(bytes, file); // a malformed file fails here, before the GPU starts
    const plan = await planImages(inputs, { out: o.out, ext: 'png', recursive: o.recursive, maxPixels: o['max-pixels'] }, (m) => console.error(`perceptual upscale: ${m}`));
    if (!plan.jobs.length) return runImages('upscale', plan, async () => '');

    const gpu = await Gpu.create();
    let net: SRNet | null = null;
    try {
      try {
        net = loadSRNet(gpu, bytes, { file }).eval();
      } catch (e) {
        throw new Error(`cannot load the model: ${(e as Error).message}`);
      }
      const sr = net;
      return await runImages(
        'upscale',
        plan,
        async (job, progress) => {
          const t0 = performance.now();
          const img = await readImage(job.input, { maxPixels: o['max-pixels'] });
          let up = await upscaleImage(sr, img, { tile: o.tile, precision: o.precision, onProgress: (p) => progress({ ...p, detail: p.total > 1 ? `tile ${p.done}/${p.total}` : undefined }) });
          if (o['hist-match']) up = matchHistogram(up, img);
          if (img.alpha) up = { ...up, alpha: resizePlanes(img.alpha, 1, img.width, img.height, up.width, up.height) };
          await outputFolder(job.output);
          await writeImage(job.output, up);
          const secs = ((performance.now() - t0) / 1000).toFixed(2);
          return `${job.input} → ${job.output} (${img.width}×${img.height} → ${up.width}×${up.height}, ${secs} s${formatNotes(job.header, 'png')})`;
        },
        { quiet: o.quiet },
      );
    } finally {
      net?.dispose();
      gpu.destroy();
    }
  },
});
