// `perceptual train-style --style IMG --data DIR --out DIR [options]`: a thin layer over trainStyle().
import { trainStyle } from '../api/train-style.js';
import { command } from './command.js';
import { checkTrainingPaths, runTraining, trainingOptions, trainingRunOptions } from './training-run.js';

/** `relu1_2,relu2_2:0.5` → { relu1_2: 1, relu2_2: 0.5 }. */
function layers(v: string | undefined): Record<string, number> | undefined {
  if (!v) return undefined;
  return Object.fromEntries(
    v.split(',').map((s) => {
      const [k, w] = s.split(':');
      return [k.trim(), w === undefined ? 1 : Number(w)];
    }),
  );
}

export const trainStyleCli = command({
  name: 'train-style',
  summary: 'train a fast style transfer network on a folder of images',
  description: `Trains a feed-forward style transfer network (Johnson et al. 2016) on a folder of content images.
Writes DIR/checkpoint.safetensors (every --checkpoint-every steps, atomically), DIR/loss.jsonl,
DIR/loss.svg, DIR/samples/ and, at the end, DIR/model.safetensors for 'perceptual stylize'.
Ctrl-C stops after the current step with a checkpoint; --resume continues from it.`,
  options: {
    style: { type: 'string', arg: 'IMG', required: true, multiple: true, help: 'the style image; several train one multi-style network\n(conditional instance norm), each style listed under its file name' },
    arch: { type: 'string', choices: ['paper', 'pytorch-examples'], default: 'paper', help: 'network variant (pytorch-examples: no checkerboard)' },
    norm: { type: 'string', choices: ['instance', 'batch'], default: 'instance', help: "normalisation (several styles: conditional instance norm)" },
    width: { type: 'int', min: 1, default: 32, help: 'channels of the first conv: 32 full, 16 half' },
    output: { type: 'string', choices: ['linear', 'tanh'], help: "pytorch-examples' last layer: linear (upstream) or 127.5·tanh+127.5\n(starts at mid-grey; the paper variant always has it)" },
    'content-weight': { type: 'number', min: 0, default: 1, help: 'λc' },
    'style-weight': { type: 'number', min: 0, default: 5, help: 'λs' },
    'tv-weight': { type: 'number', min: 0, default: 1e-6, help: 'λTV' },
    'content-layers': { type: 'string', arg: 'L[,L...]', help: "e.g. relu2_2 (default: the loss network's; weights as L:W)" },
    'style-layers': { type: 'string', arg: 'L[,L...]', help: "e.g. relu1_2,relu2_2:0.5 (default: the loss network's)" },
    'style-size': { type: 'int', arg: 'PX', min: 1, help: 'shorter side of the style image (default: --size)' },
    'stability-weight': { type: 'number', min: 0, default: 0, help: 'λ of the video stability term: the output of a slightly\nmoved, noisy input must be the moved output (0: off)' },
    init: { type: 'string', arg: 'FILE', help: "start from this model's weights (fine-tuning; same --arch,\n--norm and --width)" },
    ...trainingOptions({
      size: 256,
      sizeHelp: 'training image size',
      steps: 40000,
      lossNetHelp: 'loss network',
      sampleHelp: 'stylize IMG every --sample-every steps',
    }),
  },
  run: async (o) => {
    await checkTrainingPaths(o);
    return runTraining('train-style', (gpu, hooks) =>
      trainStyle(gpu, {
        ...trainingRunOptions(o),
        style: o.style!.length === 1 ? o.style![0] : o.style!,
        arch: o.arch,
        norm: o.norm,
        width: o.width,
        output: o.output as 'linear' | 'tanh' | undefined,
        contentWeight: o['content-weight'],
        styleWeight: o['style-weight'],
        tvWeight: o['tv-weight'],
        contentLayers: layers(o['content-layers']),
        styleLayers: layers(o['style-layers']),
        lossNet: o['loss-net'],
        styleSize: o['style-size'],
        stabilityWeight: o['stability-weight'],
        init: o.init,
        ...hooks,
      }),
    );
  },
});
