// `perceptual stylize [--model FILE] IN... --out DIR`: files and folders, any size. Options, the model file, the
// style, every input's header and the outputs are checked before the GPU starts (images.ts); bad inputs are
// reported by name and the rest still processed.
import { DEFAULT_MODEL } from '../api/default-model.js';
import { loadModel } from '../api/model-node.js';
import { parseStyle } from '../api/styles.js';
import { stylizeImage } from '../api/stylize.js';
import { Gpu } from '../gpu/index.js';
import { readImage, writeImage } from '../io/image-node.js';
import { readWeightBytes } from '../io/weight-file.js';
import { styleInfoOf } from '../nets/model-file.js';
import { command } from './command.js';
import { READS, formatNotes, imageOptions, outputFolder, planImages, runImages } from './images.js';
import { modelOption, readWeightFile } from './weight-files.js';

export const stylize = command({
  name: 'stylize',
  summary: 'stylize images with a trained model (default: the embedded one)',
  description: `Stylizes images (files, or folders of image files) with a style model: a safetensors file written by
'perceptual train-style', or a pytorch/examples fast_neural_style checkpoint (.pth). Without --model, the
embedded default model is used. Any image size: images beyond the device's limits run in tiles, with
instance-norm statistics over the whole image; images under 5 px are mirrored up to it and cropped back.
${READS}
A transparent image keeps its alpha channel (PNG output); 16-bit images are read at full precision and written
with 8 bits. No output may overwrite an input, and no two inputs may share an output name.`,
  positionals: { name: 'IN' },
  options: {
    out: { type: 'string', arg: 'DIR', required: true, help: 'output folder (created when the first image is written);\noutputs are named after the inputs' },
    model: { type: 'string', arg: 'FILE', help: `style model (default: the embedded ${DEFAULT_MODEL.name})` },
    style: { type: 'string', arg: 'NAME[:W,...]', help: "a style of a multi-style model, or a blend such as\nstarry_night:0.7,the_scream:0.3 (see 'perceptual styles')" },
    arch: { type: 'string', choices: ['paper', 'pytorch-examples'], help: 'architecture for files that do not record one' },
    'preserve-color': { type: 'boolean', help: "keep the content's colours (luminance-only transfer)" },
    strength: { type: 'number', arg: 'S', min: 0, max: 1, default: 1, help: '0..1, blend with the content' },
    tile: { type: 'int', arg: 'PX', min: 4, multipleOf: 4, help: 'force tiles of PX pixels (a multiple of 4)' },
    format: { type: 'string', choices: ['png', 'jpg', 'jpeg'], default: 'png', help: 'output format' },
    precision: { type: 'string', choices: ['auto', 'f32', 'f16'], default: 'auto', help: "storage of activations and weights: f16 halves memory\n(computed in f32); auto: f16 on a GPU, f32 on a CPU adapter" },
    ...imageOptions,
  },
  async run(o, inputs) {
    const format = o.format === 'jpeg' ? 'jpg' : o.format;
    // Everything that can fail without the GPU fails first: the model file, the style, the inputs, the outputs.
    const { path, name: file } = modelOption(o.model, DEFAULT_MODEL);
    const bytes = await readWeightFile(path, '--model');
    const { metadata } = readWeightBytes(bytes, file);
    const names = styleInfoOf(metadata, Number(metadata.styles ?? 1)).map((s) => s.name);
    let style;
    try {
      style = o.style === undefined ? undefined : parseStyle(o.style, names);
    } catch (e) {
      throw new Error(`--style: ${(e as Error).message}`);
    }
    const plan = await planImages(inputs, { out: o.out, ext: format, recursive: o.recursive, maxPixels: o['max-pixels'] }, (m) => console.error(`perceptual stylize: ${m}`));
    if (!plan.jobs.length) return runImages('stylize', plan, async () => '');

    const gpu = await Gpu.create();
    try {
      const net = await loadModel(gpu, bytes, { arch: o.arch, file });
      try {
        return await runImages(
          'stylize',
          plan,
          async (job, progress) => {
            const t0 = performance.now();
            const img = await readImage(job.input, { maxPixels: o['max-pixels'] });
            const out = await stylizeImage(gpu, net, img, {
              preserveColor: o['preserve-color'],
              strength: o.strength,
              tile: o.tile,
              precision: o.precision,
              style,
              onProgress: (p) => progress({ done: p.done, total: p.total, detail: p.tiles > 1 ? `tile ${p.tile}/${p.tiles} stage ${p.stage}/${p.stages}` : undefined }),
            });
            await outputFolder(job.output);
            await writeImage(job.output, out);
            return `${job.input} → ${job.output} (${img.width}×${img.height}, ${((performance.now() - t0) / 1000).toFixed(2)} s${formatNotes(job.header, format)})`;
          },
          { quiet: o.quiet },
        );
      } finally {
        net.dispose();
      }
    } finally {
      gpu.destroy();
    }
  },
});
