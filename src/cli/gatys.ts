// `perceptual gatys --content IMG --style IMG --out FILE`: the optimisation-based style transfer of Gatys et al.,
// the baseline of Johnson et al.'s Table 1 (train/gatys.ts): the output's pixels are optimised with L-BFGS (or
// Adam) on the same perceptual objective the feed-forward networks are trained with.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Gpu } from '../gpu/index.js';
import { defaultCacheDir } from '../io/fetch.js';
import { tensorToImages, type Image } from '../io/image.js';
import { readImage, writeImage } from '../io/image-node.js';
import { resize } from '../io/resize.js';
import { LOSS_NETWORK_NAMES } from '../nets/loss-network.js';
import { loadLossNetwork } from '../nets/loss-network-node.js';
import { gatys as runGatys, type GatysLosses } from '../train/gatys.js';
import { command } from './command.js';
import { Progress, formatDuration } from './progress.js';
import { checkWeightFile } from './weight-files.js';

const list = (v: string | undefined) => (v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter(Boolean));

/** FILE with `_iterN` before its extension. */
export function iterationPath(out: string, i: number): string {
  const m = /(\.[^./\\]+)$/.exec(out);
  return m ? `${out.slice(0, -m[1].length)}_iter${i}${m[1]}` : `${out}_iter${i}`;
}

function fitLonger(img: Image, size: number): Image {
  if (size === 0 || Math.max(img.width, img.height) === size) return img;
  const s = size / Math.max(img.width, img.height);
  return resize(img, Math.max(1, Math.round(img.width * s)), Math.max(1, Math.round(img.height * s)));
}

const fmt = (v: number) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(3) : v.toPrecision(4));
const lossText = (l: GatysLosses) => `loss ${fmt(l.total)} (content ${fmt(l.content)}, style ${fmt(l.style)}, tv ${fmt(l.tv)})`;

export const gatys = command({
  name: 'gatys',
  summary: 'style transfer by optimisation (Gatys et al.), the baseline of Table 1',
  description: `Style transfer by optimisation (Gatys et al. 2016), the baseline of Johnson et al.'s Table 1: the pixels of the
output are optimised to minimise content weight * feature loss + style weight * Gram loss + TV weight * TV, the
objective the feed-forward networks are trained with. L-BFGS as in neural-style: torch.optim.LBFGS rules, history
100, fixed step 1 without line search, no early stopping. The image is clamped to 0..255 only when written.`,
  options: {
    content: { type: 'string', arg: 'IMG', required: true, help: 'content image (resized so its longer side is --size)' },
    style: { type: 'string', arg: 'IMG', required: true, help: "style image (resized to the output's size, or its longer side to --style-size)" },
    out: { type: 'string', arg: 'FILE', required: true, help: 'output image (.png, .jpg)' },
    iters: { type: 'int', min: 0, default: 300, help: 'iterations' },
    optimizer: { type: 'string', choices: ['lbfgs', 'adam'], default: 'lbfgs', help: 'optimiser' },
    'line-search': { type: 'string', choices: ['none', 'strong_wolfe'], default: 'none', help: 'L-BFGS step' },
    lr: { type: 'number', above: 0, help: 'step size (default: 1 for L-BFGS, 10 for Adam)' },
    init: { type: 'string', choices: ['content', 'noise'], default: 'content', help: 'start from the content image or uniform noise 0..255' },
    seed: { type: 'int', default: 0, help: 'seed of the noise initialisation' },
    'loss-net': { type: 'string', choices: LOSS_NETWORK_NAMES, default: 'vgg16', help: 'loss network' },
    weights: {
      type: 'string',
      arg: 'FILE',
      help: `loss network weights; default <cache>/<loss-net>.safetensors, where <cache> is
$PERCEPTUAL_CACHE_DIR, else $XDG_CACHE_HOME/perceptual-webgpu, else ~/.cache/perceptual-webgpu`,
    },
    size: { type: 'int', arg: 'PX', min: 0, default: 256, help: "longer side of the output (0 keeps the content image's size)" },
    'style-size': { type: 'int', arg: 'PX', min: 1, help: "longer side of the style image (default: exactly the output's width x height)" },
    'content-weight': { type: 'number', min: 0, default: 1, help: 'λc' },
    'style-weight': { type: 'number', min: 0, default: 5, help: 'λs' },
    'tv-weight': { type: 'number', min: 0, default: 1e-6, help: 'λTV' },
    'content-layers': { type: 'string', arg: 'L,..', help: "loss-network taps for the content loss (default: the network's)" },
    'style-layers': { type: 'string', arg: 'L,..', help: "taps for the style loss (default: the network's; a partial VGG-16 file limits them)" },
    'save-every': { type: 'int', min: 0, default: 0, help: 'also write the image every N iterations, as FILE with _iterN before the extension' },
    'print-every': { type: 'int', min: 1, default: 10, help: 'a progress line every N iterations (on a terminal it is redrawn every one)' },
  },
  async run(o) {
    const netName = o['loss-net'];
    const weights = o.weights ?? join(defaultCacheDir(), `${netName}.safetensors`);
    if (o.weights !== undefined) await checkWeightFile(o.weights, '--weights');
    else if (!existsSync(weights)) {
      throw new Error(`no ${netName} weights in the cache (${weights}); run 'perceptual weights fetch ${netName}' or pass --weights FILE`);
    }
    const content = fitLonger(await readImage(o.content), o.size);
    const style = await readImage(o.style);

    const gpu = await Gpu.create();
    try {
      let net;
      try {
        net = await loadLossNetwork(gpu, netName, weights);
      } catch (e) {
        throw new Error(`cannot load ${netName} weights from '${weights}': ${(e as Error).message}`);
      }
      const out = o.out;
      const progress = new Progress({ label: 'iter', style: 'counter', total: o.iters, printEvery: o['print-every'] });
      let first: GatysLosses | null = null;
      let last: GatysLosses | null = null;
      const pending: Promise<void>[] = [];
      console.error(
        `gatys: ${content.width}x${content.height}, ${o.optimizer}${o.optimizer === 'lbfgs' ? ` (line search ${o['line-search']})` : ''}, ` +
          `${o.iters} iterations, ${net.name} from ${weights}, init ${o.init}`,
      );
      try {
        const result = await runGatys({
          gpu,
          net,
          content,
          style,
          iters: o.iters,
          optimizer: o.optimizer,
          lineSearch: o['line-search'],
          init: o.init,
          lr: o.lr,
          seed: o.seed,
          styleSize: o['style-size'],
          contentWeight: o['content-weight'],
          styleWeight: o['style-weight'],
          tvWeight: o['tv-weight'],
          contentLayers: list(o['content-layers']),
          styleLayers: list(o['style-layers']),
          onIter: async (i, l, img) => {
            first ??= l;
            last = l;
            progress.update(i, o.iters, lossText(l));
            if (o['save-every'] > 0 && i % o['save-every'] === 0 && i < o.iters) {
              const [im] = await tensorToImages(img);
              pending.push(writeImage(iterationPath(out, i), im));
            }
          },
        });
        await Promise.all(pending);
        await writeImage(out, result);
        const secs = progress.state().elapsedMs / 1000;
        progress.finish(first && last ? `gatys: loss ${fmt((first as GatysLosses).total)} -> ${fmt((last as GatysLosses).total)} in ${formatDuration(secs)}` : undefined);
        console.log(out);
        return 0;
      } catch (e) {
        progress.fail();
        throw e;
      } finally {
        net.dispose();
      }
    } finally {
      gpu.destroy();
    }
  },
});
