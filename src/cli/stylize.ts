// `perceptual stylize --model FILE IN... --out DIR`: files and folders, any size; bad inputs are reported
// by name and the rest still processed.
import { readdir, stat, mkdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../api/model-node.js';
import { stylizeImage } from '../api/stylize.js';
import { Gpu } from '../gpu/index.js';
import { readImage, writeImage } from '../io/image-node.js';
import { DEFAULT_MODEL } from '../api/default-model.js';

const USAGE = `usage: perceptual stylize [--model FILE] [--arch paper|pytorch-examples] IN... --out DIR
                          [--preserve-color] [--strength S] [--tile PX] [--format png|jpg]

Stylizes images (files, or folders of JPEG/PNG files) with a style model: a safetensors file written by
'perceptual train-style', or a pytorch/examples fast_neural_style checkpoint (.pth). Without --model, the
embedded default model is used. Any image size: images beyond the device's limits run in tiles, with
instance-norm statistics over the whole image.

  --model FILE        style model (default: the embedded ${DEFAULT_MODEL.name})
  --arch A            architecture for files that do not record one (paper | pytorch-examples)
  --out DIR           output folder (created); outputs are named after the inputs
  --preserve-color    keep the content's colours (luminance-only transfer)
  --strength S        0..1, blend with the content (default 1)
  --tile PX           force tiles of PX pixels (a multiple of 4)
  --format F          png (default) or jpg`;

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif']);

async function expand(inputs: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const p of inputs) {
    const s = await stat(p).catch(() => null);
    if (s?.isDirectory()) {
      const names = (await readdir(p)).filter((f) => IMAGE_EXT.has(extname(f).toLowerCase())).sort();
      files.push(...names.map((f) => join(p, f)));
    } else files.push(p);
  }
  return files;
}

export async function stylize(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      arch: { type: 'string' },
      out: { type: 'string' },
      'preserve-color': { type: 'boolean' },
      strength: { type: 'string' },
      tile: { type: 'string' },
      format: { type: 'string', default: 'png' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.out || positionals.length === 0) {
    console.error(`perceptual stylize: ${!values.out ? '--out DIR' : 'at least one input'} is required\n\n${USAGE}`);
    return 2;
  }
  if (values.arch && values.arch !== 'paper' && values.arch !== 'pytorch-examples') {
    console.error(`perceptual stylize: --arch must be paper or pytorch-examples, got ${values.arch}`);
    return 2;
  }
  const format = values.format === 'jpeg' ? 'jpg' : values.format!;
  if (format !== 'png' && format !== 'jpg') {
    console.error(`perceptual stylize: --format must be png or jpg, got ${values.format}`);
    return 2;
  }
  const strength = values.strength === undefined ? 1 : Number(values.strength);
  const tile = values.tile === undefined ? undefined : Number(values.tile);
  const files = await expand(positionals);
  await mkdir(values.out, { recursive: true });
  const gpu = await Gpu.create();
  let failed = 0;
  try {
    const { fileURLToPath } = await import('node:url');
    const source = values.model ?? fileURLToPath(DEFAULT_MODEL.url);
    const net = await loadModel(gpu, source, { arch: values.arch as 'paper' | 'pytorch-examples' | undefined, file: values.model ?? DEFAULT_MODEL.name });
    for (const f of files) {
      const t0 = performance.now();
      try {
        const img = await readImage(f);
        const out = await stylizeImage(gpu, net, img, { preserveColor: values['preserve-color'], strength, tile });
        const dest = join(values.out, `${basename(f, extname(f))}.${format}`);
        await writeImage(dest, out);
        console.log(`${f} → ${dest} (${img.width}×${img.height}, ${((performance.now() - t0) / 1000).toFixed(2)} s)`);
      } catch (e) {
        failed++;
        console.error(`perceptual stylize: ${f}: ${(e as Error).message}`);
      }
    }
    net.dispose();
  } finally {
    gpu.destroy();
  }
  if (failed) console.error(`perceptual stylize: ${failed} of ${files.length} image(s) failed`);
  return failed ? 1 : 0;
}
