// `perceptual train-style --style IMG --data DIR --out DIR [options]`: a thin layer over trainStyle().
import { parseArgs } from 'node:util';
import { trainStyle } from '../api/train-style.js';
import { TRAINING_OPTIONS, num, runTraining, trainingOptions } from './training-run.js';

const USAGE = `usage: perceptual train-style --style IMG --data DIR --out DIR [options]

Trains a feed-forward style transfer network (Johnson et al. 2016) on a folder of content images.
Writes DIR/checkpoint.safetensors (every --checkpoint-every steps, atomically), DIR/loss.jsonl,
DIR/loss.svg, DIR/samples/ and, at the end, DIR/model.safetensors for 'perceptual stylize'.

  --arch paper|pytorch-examples   network variant (default paper)
  --norm instance|batch           paper variant's normalisation (default instance)
  --width N                       channels of the first conv: 32 full, 16 half (default 32)
  --size PX                       training image size (default 256)
  --batch N                       batch size (default 4)
  --steps N                       steps to reach (default 40000)
  --lr X                          Adam learning rate (default 1e-3)
  --content-weight X              λc (default 1)
  --style-weight X                λs (default 5)
  --tv-weight X                   λTV (default 1e-6)
  --content-layers L[,L...]       e.g. relu2_2 (default: the loss network's; weights as L:W)
  --style-layers L[,L...]         e.g. relu1_2,relu2_2:0.5
  --loss-net vgg16|squeezenet1_1  loss network (default vgg16)
  --loss-weights FILE             its weights (default: the cache; see 'perceptual weights fetch')
  --style-size PX                 shorter side of the style image (default: --size)
  --seed N                        (default 0)
  --checkpoint-every N            (default 500)
  --sample IMG                    stylize IMG every --sample-every steps (repeatable)
  --sample-every N                (default 500)
  --resume                        continue from DIR/checkpoint.safetensors exactly
  --overwrite                     start afresh even if DIR holds a checkpoint`;

function layers(v: string | undefined): Record<string, number> | undefined {
  if (!v) return undefined;
  return Object.fromEntries(
    v.split(',').map((s) => {
      const [k, w] = s.split(':');
      return [k.trim(), w === undefined ? 1 : Number(w)];
    }),
  );
}

export async function trainStyleCli(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...TRAINING_OPTIONS,
      style: { type: 'string' },
      arch: { type: 'string' },
      norm: { type: 'string' },
      width: { type: 'string' },
      'content-weight': { type: 'string' },
      'style-weight': { type: 'string' },
      'content-layers': { type: 'string' },
      'style-layers': { type: 'string' },
      'style-size': { type: 'string' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  for (const k of ['style', 'data', 'out'] as const) {
    if (!values[k]) {
      console.error(`perceptual train-style: --${k} is required\n\n${USAGE}`);
      return 2;
    }
  }
  const arch = values.arch ?? 'paper';
  if (arch !== 'paper' && arch !== 'pytorch-examples') throw new Error(`--arch must be paper or pytorch-examples, got ${arch}`);
  const norm = values.norm ?? 'instance';
  if (norm !== 'instance' && norm !== 'batch') throw new Error(`--norm must be instance or batch, got ${norm}`);
  const lossNet = values['loss-net'] ?? 'vgg16';
  if (lossNet !== 'vgg16' && lossNet !== 'squeezenet1_1') throw new Error(`--loss-net must be vgg16 or squeezenet1_1, got ${lossNet}`);

  return runTraining('train-style', (gpu, hooks) =>
    trainStyle(gpu, {
      ...trainingOptions(values),
      style: values.style!,
      arch,
      norm,
      width: num(values.width, 'width'),
      contentWeight: num(values['content-weight'], 'content-weight'),
      styleWeight: num(values['style-weight'], 'style-weight'),
      contentLayers: layers(values['content-layers']),
      styleLayers: layers(values['style-layers']),
      lossNet,
      styleSize: num(values['style-size'], 'style-size'),
      ...hooks,
    }),
  );
}
