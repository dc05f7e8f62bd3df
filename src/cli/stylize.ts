// `perceptual stylize [--model FILE] IN... --out DIR`: files and folders, any size; bad inputs are reported
// by name and the rest still processed.
import { readdir, mkdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../api/model-node.js';
import { stylizeImage } from '../api/stylize.js';
import { Gpu } from '../gpu/index.js';
import { readImage, writeImage } from '../io/image-node.js';
import { DEFAULT_MODEL } from '../api/default-model.js';
import { styleOf } from '../api/styles.js';
import { command } from './command.js';
import { expandInputs, forEachImage } from './images.js';

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif']);

async function listFolder(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((f) => IMAGE_EXT.has(extname(f).toLowerCase())).sort();
  return names.map((f) => join(dir, f));
}

export const stylize = command({
  name: 'stylize',
  summary: 'stylize images with a trained model (default: the embedded one)',
  description: `Stylizes images (files, or folders of JPEG/PNG files) with a style model: a safetensors file written by
'perceptual train-style', or a pytorch/examples fast_neural_style checkpoint (.pth). Without --model, the
embedded default model is used. Any image size: images beyond the device's limits run in tiles, with
instance-norm statistics over the whole image.`,
  positionals: { name: 'IN' },
  options: {
    out: { type: 'string', arg: 'DIR', required: true, help: 'output folder (created); outputs are named after the inputs' },
    model: { type: 'string', arg: 'FILE', help: `style model (default: the embedded ${DEFAULT_MODEL.name})` },
    style: { type: 'string', arg: 'NAME[:W,...]', help: "a style of a multi-style model, or a blend such as\nstarry_night:0.7,the_scream:0.3 (see 'perceptual styles')" },
    arch: { type: 'string', choices: ['paper', 'pytorch-examples'], help: 'architecture for files that do not record one' },
    'preserve-color': { type: 'boolean', help: "keep the content's colours (luminance-only transfer)" },
    strength: { type: 'number', arg: 'S', default: 1, help: '0..1, blend with the content' },
    tile: { type: 'int', arg: 'PX', min: 4, help: 'force tiles of PX pixels (a multiple of 4)' },
    format: { type: 'string', choices: ['png', 'jpg', 'jpeg'], default: 'png', help: 'output format' },
  },
  async run(o, inputs) {
    const format = o.format === 'jpeg' ? 'jpg' : o.format;
    const files = await expandInputs(inputs, listFolder);
    await mkdir(o.out, { recursive: true });
    const gpu = await Gpu.create();
    try {
      const net = await loadModel(gpu, o.model ?? fileURLToPath(DEFAULT_MODEL.url), { arch: o.arch, file: o.model ?? DEFAULT_MODEL.name });
      try {
        const style = o.style === undefined ? undefined : styleOf(net, o.style);
        return await forEachImage('stylize', files, async (f) => {
          const t0 = performance.now();
          const img = await readImage(f);
          const out = await stylizeImage(gpu, net, img, { preserveColor: o['preserve-color'], strength: o.strength, tile: o.tile, style });
          const dest = join(o.out, `${basename(f, extname(f))}.${format}`);
          await writeImage(dest, out);
          return `${f} → ${dest} (${img.width}×${img.height}, ${((performance.now() - t0) / 1000).toFixed(2)} s)`;
        });
      } finally {
        net.dispose();
      }
    } finally {
      gpu.destroy();
    }
  },
});
