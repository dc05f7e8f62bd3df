// `perceptual train-sr --scale 4|8 --data DIR --loss feat|pixel --out DIR [options]`: a thin layer over trainSR().
import { SR_DEFAULT_TV_WEIGHT, SR_LOSSES, trainSR } from '../api/train-sr.js';
import { SR_NORMS, SR_SCALES, SR_UPSAMPLES, type SRScale } from '../nets/sr-net.js';
import { command } from './command.js';
import { checkTrainingPaths, runTraining, trainingOptions, trainingRunOptions } from './training-run.js';

export const trainSrCli = command({
  name: 'train-sr',
  summary: 'train a super-resolution network (x4/x8, feature or pixel loss) on a folder of images',
  description: `Trains a super-resolution network (Johnson et al. 2016) on random patches of a folder of images. The LR inputs
are made from each HR patch: Gaussian blur (sigma 1.0), then MATLAB bicubic downsampling by the scale (uint8).
Writes DIR/checkpoint.safetensors (every --checkpoint-every steps, atomically), DIR/loss.jsonl, DIR/loss.svg,
DIR/samples/ and, at the end, DIR/model.safetensors for 'perceptual upscale' and 'perceptual eval-sr'.
Ctrl-C stops after the current step with a checkpoint; --resume continues from it.`,
  options: {
    scale: { type: 'string', choices: SR_SCALES.map(String), required: true, help: 'upscaling factor' },
    loss: { type: 'string', choices: SR_LOSSES, required: true, help: 'l_feat on the loss network, or per-pixel l_pixel' },
    width: { type: 'int', min: 1, default: 64, help: 'hidden channels' },
    blocks: { type: 'int', min: 0, default: 4, help: 'residual blocks' },
    norm: { type: 'string', choices: SR_NORMS, default: 'batch', help: 'normalisation' },
    'tv-weight': {
      type: 'number',
      min: 0,
      help: `λTV on the summed squared TV, 0..255 scale (default ${SR_DEFAULT_TV_WEIGHT.feat}\nfor feat, ${SR_DEFAULT_TV_WEIGHT.pixel} for pixel)`,
    },
    'feat-layer': { type: 'string', arg: 'L', help: 'loss-network layer of l_feat (default relu2_2)' },
    residual: { type: 'boolean', help: 'predict a correction to bicubic upscaling (global skip, beyond the paper)' },
    upsample: { type: 'string', choices: SR_UPSAMPLES, default: 'transposed', help: "the paper's transposed convs, or a conv at low resolution + pixel shuffle" },
    'lr-schedule': { type: 'string', choices: ['constant', 'cosine'], default: 'constant', help: 'learning rate over the run (cosine: to 0 at --steps)' },
    ...trainingOptions({
      size: 288,
      sizeHelp: 'HR patch side, a multiple of the scale',
      steps: 200000,
      lossNetHelp: 'loss network for --loss feat',
      sampleHelp: "super-resolve IMG's bicubic LR version every --sample-every steps",
    }),
  },
  run: async (o) => {
    await checkTrainingPaths(o);
    return runTraining('train-sr', (gpu, hooks) =>
      trainSR(gpu, {
        ...trainingRunOptions(o),
        scale: Number(o.scale) as SRScale,
        loss: o.loss,
        width: o.width,
        blocks: o.blocks,
        norm: o.norm,
        tvWeight: o['tv-weight'],
        featLayer: o['feat-layer'],
        residual: o.residual,
        upsample: o.upsample,
        lrSchedule: o['lr-schedule'],
        lossNet: o['loss-net'],
        ...hooks,
      }),
    );
  },
});
