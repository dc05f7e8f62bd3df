// `npx tsx scripts/make-previews.ts`: the demo page's first look. For each models/*.safetensors, the example image
// (examples/village.png) stylized at the page's default size (longer side 256) with the library in Node, written to
// web/previews/<model>.png. The page shows it the moment it loads, while it runs the same image live (which takes
// half a minute on a CPU adapter), and the manifest (scripts/build-web.ts) lists it. Rerun after changing a model.
import { readFile, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { loadModel } from '../src/api/model-node.js';
import { stylizeImage } from '../src/api/stylize.js';
import { Gpu } from '../src/gpu/index.js';
import { readImage, writeImage } from '../src/io/image-node.js';
import { resize } from '../src/io/resize.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { ROOT } from './build-web.js';

/** The page's default largest side (web/index.html's size select). */
export const PREVIEW_SIZE = 256;

const gpu = await Gpu.create();
try {
  const img = await readImage(join(ROOT, 'examples/village.png'));
  const s = PREVIEW_SIZE / Math.max(img.width, img.height);
  // The page draws the RGB it decoded; the preview is opaque like the page's canvas.
  const small = resize({ width: img.width, height: img.height, data: img.data }, Math.round(img.width * s), Math.round(img.height * s));
  for (const f of (await readdir(join(ROOT, 'models'))).filter((f) => f.endsWith('.safetensors')).sort()) {
    const bytes = new Uint8Array(await readFile(join(ROOT, 'models', f)));
    if (readSafetensors(bytes, f).metadata.arch !== 'transformer-net') continue; // the SR model
    const net = await loadModel(gpu, bytes);
    try {
      const out = join(ROOT, 'web/previews', `${basename(f, '.safetensors')}.png`);
      await writeImage(out, await stylizeImage(gpu, net, small));
      console.log(`${f} → ${out} (${small.width}×${small.height})`);
    } finally {
      net.dispose();
    }
  }
} finally {
  gpu.destroy();
}
