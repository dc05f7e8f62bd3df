// `perceptual train-sr --scale 4|8 --data DIR --loss feat|pixel --out DIR [options]`: a thin layer over trainSR().
import { parseArgs } from 'node:util';
import { SR_DEFAULT_TV_WEIGHT, SR_LOSSES, trainSR, type SRLoss } from '../api/train-sr.js';
import { SR_NORMS, SR_SCALES, type SRNorm, type SRScale } from '../nets/sr-net.js';
import { TRAINING_OPTIONS, num, runTraining, trainingOptions } from './training-run.js';

const USAGE = `usage: perceptual train-sr --scale 4|8 --data DIR --loss feat|pixel --out DIR [options]

Trains a super-resolution network (Johnson et al. 2016) on random patches of a folder of images. The LR inputs
are made from each HR patch: Gaussian blur (sigma 1.0), then MATLAB bicubic downsampling by the scale (uint8).
Writes DIR/checkpoint.safetensors (every --checkpoint-every steps, atomically), DIR/loss.jsonl, DIR/loss.svg,
DIR/samples/ and, at the end, DIR/model.safetensors for 'perceptual upscale' and 'perceptual eval-sr'.

  --scale 4|8                     upscaling factor (required)
  --loss feat|pixel               l_feat on the loss network, or per-pixel l_pixel (required)
  --width N                       hidden channels (default 64)
  --blocks N                      residual blocks (default 4)
  --norm batch|instance           normalisation (default batch)
  --size PX                       HR patch side, a multiple of the scale (default 288)
  --batch N                       batch size (default 4)
  --steps N                       steps to reach (default 200000)
  --lr X                          Adam learning rate (default 1e-3)
  --tv-weight X                   λTV on the summed squared TV, 0..255 scale (default ${SR_DEFAULT_TV_WEIGHT.feat}
                                  for feat, ${SR_DEFAULT_TV_WEIGHT.pixel} for pixel)
  --feat-layer L                  loss-network layer of l_feat (default relu2_2)
  --loss-net vgg16|squeezenet1_1  loss network for --loss feat (default vgg16)
  --loss-weights FILE             its weights (default: the cache; see 'perceptual weights fetch')
  --seed N                        (default 0)
  --checkpoint-every N            (default 500)
  --sample IMG                    super-resolve IMG's bicubic LR version every --sample-every steps (repeatable)
  --sample-every N                (default 500)
  --resume                        continue from DIR/checkpoint.safetensors exactly
  --overwrite                     start afresh even if DIR holds a checkpoint`;

function usageError(msg: string): number {
  console.error(`perceptual train-sr: ${msg}\n\n${USAGE}`);
  return 2;
}

export async function trainSrCli(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...TRAINING_OPTIONS,
      scale: { type: 'string' },
      loss: { type: 'string' },
      width: { type: 'string' },
      blocks: { type: 'string' },
      norm: { type: 'string' },
      'feat-layer': { type: 'string' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  for (const k of ['scale', 'data', 'loss', 'out'] as const) {
    if (!values[k]) return usageError(`--${k} is required`);
  }
  const scale = Number(values.scale) as SRScale;
  if (!SR_SCALES.includes(scale)) return usageError(`--scale must be ${SR_SCALES.join(' or ')}, got ${values.scale}`);
  const loss = values.loss as SRLoss;
  if (!SR_LOSSES.includes(loss)) return usageError(`--loss must be ${SR_LOSSES.join(' or ')}, got ${values.loss}`);
  const norm = (values.norm ?? 'batch') as SRNorm;
  if (!SR_NORMS.includes(norm)) return usageError(`--norm must be ${SR_NORMS.join(' or ')}, got ${values.norm}`);
  const lossNet = values['loss-net'] ?? 'vgg16';
  if (lossNet !== 'vgg16' && lossNet !== 'squeezenet1_1') return usageError(`--loss-net must be vgg16 or squeezenet1_1, got ${lossNet}`);

  return runTraining('train-sr', (gpu, hooks) =>
    trainSR(gpu, {
      ...trainingOptions(values),
      scale,
      loss,
      width: num(values.width, 'width'),
      blocks: num(values.blocks, 'blocks'),
      norm,
      featLayer: values['feat-layer'],
      lossNet,
      ...hooks,
    }),
  );
}
