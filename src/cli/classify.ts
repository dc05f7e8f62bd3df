// `perceptual classify [--json] [--weights FILE] IMAGE...`: the top-5 ImageNet classes of each image with
// SqueezeNet 1.1. A quick end-to-end check that the weights, the image decoding and the engine are right.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tidyAsync } from '../autograd/tensor.js';
import { Gpu } from '../gpu/index.js';
import { defaultCacheDir } from '../io/fetch.js';
import { imageToTensor } from '../io/image.js';
import { readImage } from '../io/image-node.js';
import { IMAGENET_LABELS } from '../io/imagenet-labels.js';
import { resizeAndCenterCrop } from '../io/resize.js';
import { loadLossNetwork } from '../nets/loss-network-node.js';
import { command } from './command.js';
import { checkWeightFile } from './weight-files.js';

const NET = 'squeezenet1_1';

export interface ClassScore {
  index: number;
  label: string;
  probability: number;
}

export interface Classification {
  file: string;
  top5: ClassScore[];
}

function formatText(r: Classification): string {
  const rows = r.top5.map((c, k) => `  ${k + 1}. ${c.label.padEnd(28)} ${(100 * c.probability).toFixed(2).padStart(6)}%  (class ${c.index})`);
  return `${r.file}\n${rows.join('\n')}`;
}

export const classify = command({
  name: 'classify',
  summary: 'top-5 ImageNet classes of images (SqueezeNet 1.1)',
  description: `Prints the 5 most probable ImageNet-1k classes of each image (index, label, probability) with SqueezeNet 1.1.
Each image is resized (shorter side to 256, bilinear, antialiased) and centre-cropped to 224x224.`,
  positionals: { name: 'IMAGE' },
  options: {
    weights: {
      type: 'string',
      arg: 'FILE',
      help: `SqueezeNet 1.1 weights (.safetensors or .pth); default <cache>/${NET}.safetensors, where <cache>
is $PERCEPTUAL_CACHE_DIR, else $XDG_CACHE_HOME/perceptual-webgpu, else ~/.cache/perceptual-webgpu`,
    },
    json: { type: 'boolean', help: 'print [{ file, top5: [{ index, label, probability }] }] instead of text' },
  },
  epilog: 'Images that cannot be read are reported on stderr; the others are still classified, and the exit code is 1.',
  run: (values, files) => classifyFiles(values, files),
});

async function classifyFiles(values: { weights?: string; json?: boolean }, files: string[]): Promise<number> {
  const weights = values.weights ?? join(defaultCacheDir(), `${NET}.safetensors`);
  if (values.weights !== undefined) await checkWeightFile(values.weights, '--weights');
  else if (!existsSync(weights)) {
    console.error(`perceptual classify: no ${NET} weights in the cache (${weights}); run 'perceptual weights fetch ${NET}' or pass --weights FILE`);
    return 1;
  }

  const gpu = await Gpu.create();
  let failed = 0;
  const results: Classification[] = [];
  try {
    let net;
    try {
      net = await loadLossNetwork(gpu, NET, weights);
    } catch (e) {
      console.error(`perceptual classify: cannot load ${NET} weights from '${weights}': ${(e as Error).message}`);
      return 1;
    }
    try {
      for (const file of files) {
        let img;
        try {
          img = resizeAndCenterCrop(await readImage(file), 256, 224);
        } catch (e) {
          failed++;
          console.error(`perceptual classify: ${(e as Error).message}`);
          continue;
        }
        const [top] = await tidyAsync(async () => net.classify(imageToTensor(gpu, img), { k: 5 }));
        const r: Classification = {
          file,
          top5: top.map(({ index, probability }) => ({ index, label: IMAGENET_LABELS[index], probability })),
        };
        results.push(r);
        if (!values.json) console.log(`${results.length > 1 ? '\n' : ''}${formatText(r)}`);
      }
    } finally {
      net.dispose();
    }
  } finally {
    gpu.destroy();
  }
  if (values.json) console.log(JSON.stringify(results, null, 2));
  if (failed) console.error(`perceptual classify: ${failed} of ${files.length} image${files.length > 1 ? 's' : ''} could not be read`);
  return failed ? 1 : 0;
}
