// `perceptual gatys --content IMG --style IMG --out FILE`: the optimisation-based style transfer of Gatys et al.,
// the baseline of Johnson et al.'s Table 1 (train/gatys.ts): the output's pixels are optimised with L-BFGS (or
// Adam) on the same perceptual objective the feed-forward networks are trained with.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Gpu } from '../gpu/index.js';
import { defaultCacheDir } from '../io/fetch.js';
import { tensorToImages, type Image } from '../io/image.js';
import { readImage, writeImage } from '../io/image-node.js';
import { resize } from '../io/resize.js';
import { LOSS_NETWORK_NAMES, type LossNetworkName } from '../nets/loss-network.js';
import { loadLossNetwork } from '../nets/loss-network-node.js';
import { gatys as runGatys, type GatysLosses } from '../train/gatys.js';
import { Progress, formatDuration, formatRate, etaSeconds } from './progress.js';

const USAGE = `usage: perceptual gatys --content IMG --style IMG --out FILE [options]

Style transfer by optimisation (Gatys et al. 2016), the baseline of Johnson et al.'s Table 1: the pixels of the
output are optimised to minimise content weight * feature loss + style weight * Gram loss + TV weight * TV, the
objective the feed-forward networks are trained with. L-BFGS as in neural-style: torch.optim.LBFGS rules, history
100, fixed step 1 without line search, no early stopping. The image is clamped to 0..255 only when written.

options:
  --content IMG          content image (resized so its longer side is --size)
  --style IMG            style image (resized to the output's size, or its longer side to --style-size)
  --out FILE             output image (.png, .jpg)
  --iters N              iterations (default 300)
  --optimizer NAME       lbfgs (default) or adam
  --line-search NAME     L-BFGS step: none (default) or strong_wolfe
  --lr X                 step size (default: 1 for L-BFGS, 10 for Adam)
  --init NAME            content (default) or noise (uniform 0..255)
  --seed N               seed of the noise initialisation (default 0)
  --loss-net NAME        ${LOSS_NETWORK_NAMES.join(' or ')} (default vgg16)
  --weights FILE         loss network weights; default <cache>/<loss-net>.safetensors, where <cache> is
                         $PERCEPTUAL_CACHE_DIR, else $XDG_CACHE_HOME/perceptual-webgpu, else ~/.cache/perceptual-webgpu
  --size PX              longer side of the output (default 256; 0 keeps the content image's size)
  --style-size PX        longer side of the style image (default: exactly the output's width x height)
  --content-weight X     default 1
  --style-weight X       default 5
  --tv-weight X          default 1e-6
  --content-layers L,..  loss-network taps for the content loss (default: the network's)
  --style-layers L,..    taps for the style loss (default: the network's; a partial VGG-16 file limits them)
  --save-every N         also write the image every N iterations, as FILE with _iterN before the extension
  --print-every N        a progress line every N iterations (default 10; on a terminal it is redrawn every one)
  -h, --help             this text`;

function usageError(msg: string): number {
  console.error(`perceptual gatys: ${msg}\n\n${USAGE}`);
  return 2;
}

function num(name: string, v: string | undefined, def: number, ok: (x: number) => boolean, what: string): number {
  if (v === undefined) return def;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || !ok(x)) throw new Error(`--${name} must be ${what}, got '${v}'`);
  return x;
}

const isInt = (min: number) => (x: number) => Number.isInteger(x) && x >= min;
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

export async function gatys(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        content: { type: 'string' },
        style: { type: 'string' },
        out: { type: 'string' },
        iters: { type: 'string' },
        optimizer: { type: 'string' },
        'line-search': { type: 'string' },
        lr: { type: 'string' },
        init: { type: 'string' },
        seed: { type: 'string' },
        'loss-net': { type: 'string' },
        weights: { type: 'string' },
        size: { type: 'string' },
        'style-size': { type: 'string' },
        'content-weight': { type: 'string' },
        'style-weight': { type: 'string' },
        'tv-weight': { type: 'string' },
        'content-layers': { type: 'string' },
        'style-layers': { type: 'string' },
        'save-every': { type: 'string' },
        'print-every': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    return usageError((e as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  for (const k of ['content', 'style', 'out'] as const) if (!values[k]) return usageError(`--${k} is required`);
  const optimizer = values.optimizer ?? 'lbfgs';
  if (optimizer !== 'lbfgs' && optimizer !== 'adam') return usageError(`--optimizer must be lbfgs or adam, got '${optimizer}'`);
  const lineSearch = values['line-search'] ?? 'none';
  if (lineSearch !== 'none' && lineSearch !== 'strong_wolfe') return usageError(`--line-search must be none or strong_wolfe, got '${lineSearch}'`);
  const init = values.init ?? 'content';
  if (init !== 'content' && init !== 'noise') return usageError(`--init must be content or noise, got '${init}'`);
  const netName = (values['loss-net'] ?? 'vgg16') as LossNetworkName;
  if (!LOSS_NETWORK_NAMES.includes(netName)) return usageError(`--loss-net must be ${LOSS_NETWORK_NAMES.join(' or ')}, got '${netName}'`);
  let n;
  try {
    const pos = (x: number) => x > 0;
    const nonneg = (x: number) => x >= 0;
    n = {
      iters: num('iters', values.iters, 300, isInt(0), 'a non-negative integer'),
      lr: values.lr === undefined ? undefined : num('lr', values.lr, 1, pos, 'a positive number'),
      seed: num('seed', values.seed, 0, Number.isSafeInteger, 'an integer'),
      size: num('size', values.size, 256, isInt(0), 'a non-negative integer'),
      styleSize: values['style-size'] === undefined ? undefined : num('style-size', values['style-size'], 0, isInt(1), 'a positive integer'),
      contentWeight: num('content-weight', values['content-weight'], 1, nonneg, 'a non-negative number'),
      styleWeight: num('style-weight', values['style-weight'], 5, nonneg, 'a non-negative number'),
      tvWeight: num('tv-weight', values['tv-weight'], 1e-6, nonneg, 'a non-negative number'),
      saveEvery: num('save-every', values['save-every'], 0, isInt(0), 'a non-negative integer'),
      printEvery: num('print-every', values['print-every'], 10, isInt(1), 'a positive integer'),
    };
  } catch (e) {
    return usageError((e as Error).message);
  }

  const weights = values.weights ?? join(defaultCacheDir(), `${netName}.safetensors`);
  if (!existsSync(weights)) {
    console.error(
      values.weights
        ? `perceptual gatys: weight file '${weights}' not found`
        : `perceptual gatys: no ${netName} weights in the cache (${weights}); run 'perceptual weights fetch ${netName}' or pass --weights FILE`,
    );
    return 1;
  }
  let content: Image;
  let style: Image;
  try {
    content = fitLonger(await readImage(values.content!), n.size);
    style = await readImage(values.style!);
  } catch (e) {
    console.error(`perceptual gatys: ${(e as Error).message}`);
    return 1;
  }

  const gpu = await Gpu.create();
  try {
    let net;
    try {
      net = await loadLossNetwork(gpu, netName, weights);
    } catch (e) {
      console.error(`perceptual gatys: cannot load ${netName} weights from '${weights}': ${(e as Error).message}`);
      return 1;
    }
    const out = values.out!;
    const tty = process.stderr.isTTY === true;
    const rate = new Progress({ label: 'gatys', total: n.iters, stream: { write: () => true }, tty: false });
    let first: GatysLosses | null = null;
    let lastL: GatysLosses | null = null;
    const pending: Promise<void>[] = [];
    console.error(
      `gatys: ${content.width}x${content.height}, ${optimizer}${optimizer === 'lbfgs' ? ` (line search ${lineSearch})` : ''}, ` +
        `${n.iters} iterations, ${net.name} from ${weights}, init ${init}`,
    );
    try {
      const result = await runGatys({
        gpu,
        net,
        content,
        style,
        iters: n.iters,
        optimizer,
        lineSearch,
        init,
        lr: n.lr,
        seed: n.seed,
        styleSize: n.styleSize,
        contentWeight: n.contentWeight,
        styleWeight: n.styleWeight,
        tvWeight: n.tvWeight,
        contentLayers: list(values['content-layers']),
        styleLayers: list(values['style-layers']),
        onIter: async (i, l, img) => {
          first ??= l;
          lastL = l;
          rate.update(i);
          const s = rate.state();
          const line = `iter ${i}/${n.iters} ${formatRate(s.rate, 'steps')} ETA ${formatDuration(etaSeconds(s))} ${lossText(l)}`;
          if (tty) process.stderr.write(`\r${line}\x1b[K${i === n.iters ? '\n' : ''}`);
          else if (i % n.printEvery === 0 || i === n.iters || i === 1) process.stderr.write(`${line}\n`);
          if (n.saveEvery > 0 && i % n.saveEvery === 0 && i < n.iters) {
            const [im] = await tensorToImages(img);
            pending.push(writeImage(iterationPath(out, i), im));
          }
        },
      });
      await Promise.all(pending);
      await writeImage(out, result);
      const secs = rate.state().elapsedMs / 1000;
      if (first && lastL) console.error(`gatys: loss ${fmt((first as GatysLosses).total)} -> ${fmt((lastL as GatysLosses).total)} in ${formatDuration(secs)}`);
      console.log(out);
      return 0;
    } finally {
      net.dispose();
    }
  } catch (e) {
    console.error(`perceptual gatys: ${(e as Error).message}`);
    return 1;
  } finally {
    gpu.destroy();
  }
}
