// What train-style and train-sr share on the command line: the options both take, Ctrl-C stopping after the
// current step (with a checkpoint), the progress line, and a NaN stop reported as a message with the last good
// checkpoint rather than a stack trace.
import { stat } from 'node:fs/promises';
import { Gpu } from '../gpu/index.js';
import { LOSS_NETWORK_NAMES } from '../nets/loss-network-types.js';
import { TrainingStoppedError, type TrainProgress, type TrainResult } from '../train/trainer.js';
import type { Values } from './command.js';
import { Progress } from './progress.js';
import { checkWeightFile } from './weight-files.js';

/** The options every training command takes beside its own, with that command's defaults. */
export function trainingOptions(d: { size: number; sizeHelp: string; steps: number; lossNetHelp: string; sampleHelp: string }) {
  return {
    data: { type: 'string', arg: 'DIR', required: true, help: 'folder of training images (JPEG/PNG, any size)' },
    out: { type: 'string', arg: 'DIR', required: true, help: 'run folder: checkpoints, loss log and plot, samples, the model' },
    size: { type: 'int', arg: 'PX', min: 1, default: d.size, help: d.sizeHelp },
    batch: { type: 'int', min: 1, default: 4, help: 'batch size' },
    steps: { type: 'int', min: 1, default: d.steps, help: 'steps to reach' },
    lr: { type: 'number', above: 0, default: 1e-3, help: 'Adam learning rate' },
    'loss-net': { type: 'string', choices: LOSS_NETWORK_NAMES, default: 'vgg16', help: d.lossNetHelp },
    'loss-weights': { type: 'string', arg: 'FILE', help: "its weights (default: the cache; see 'perceptual weights fetch')" },
    seed: { type: 'int', default: 0, help: 'seed of the initialisation and the data order' },
    'checkpoint-every': { type: 'int', min: 1, default: 500, help: 'write DIR/checkpoint.safetensors every N steps' },
    sample: { type: 'string', arg: 'IMG', multiple: true, help: d.sampleHelp },
    'sample-every': { type: 'int', min: 1, default: 500, help: 'steps between samples' },
    resume: { type: 'boolean', help: 'continue from DIR/checkpoint.safetensors exactly' },
    overwrite: { type: 'boolean', help: 'start afresh even if DIR holds a checkpoint' },
  } as const;
}

/** The paths of the shared options, checked before the GPU starts: one line naming the flag. */
export async function checkTrainingPaths(v: Values<ReturnType<typeof trainingOptions>>): Promise<void> {
  const data = await stat(v.data).catch(() => null);
  if (!data) throw new Error(`--data '${v.data}': no such folder`);
  if (!data.isDirectory()) throw new Error(`--data '${v.data}' is a file, not a folder of images`);
  if ((await stat(v.out).catch(() => null))?.isDirectory() === false) throw new Error(`--out '${v.out}' is a file, not a run folder`);
  if (v['loss-weights'] !== undefined) await checkWeightFile(v['loss-weights'], '--loss-weights');
}

/** The shared options as trainStyle/trainSR take them. */
export function trainingRunOptions(v: Values<ReturnType<typeof trainingOptions>>) {
  return {
    data: v.data,
    outDir: v.out,
    size: v.size,
    batchSize: v.batch,
    steps: v.steps,
    lr: v.lr,
    lossWeights: v['loss-weights'],
    seed: v.seed,
    checkpointEvery: v['checkpoint-every'],
    sampleImages: v.sample,
    sampleEvery: v['sample-every'],
    resume: v.resume,
    overwrite: v.overwrite,
  };
}

const lossTerms = (p: TrainProgress) =>
  Object.entries(p.losses)
    .map(([k, v]) => `${k} ${v.toPrecision(4)}`)
    .join(' ');

export interface RunHooks {
  signal: AbortSignal;
  onProgress: (p: TrainProgress) => void;
  onLog: (message: string) => void;
}

/** Runs a training function with the CLI's hooks; returns the process exit code. */
export async function runTraining(command: string, run: (gpu: Gpu, hooks: RunHooks) => Promise<TrainResult & { model: string }>): Promise<number> {
  const controller = new AbortController();
  let progress: Progress | undefined;
  const say = (m: string) => (progress ? progress.log(m) : console.error(m));
  const onSigint = () => {
    say(`perceptual ${command}: stopping after this step (a checkpoint will be written)…`);
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  const gpu = await Gpu.create();
  try {
    const r = await run(gpu, {
      signal: controller.signal,
      onLog: say,
      onProgress: (p) => {
        // Made at the first step, so that a resumed run counts from where it resumed.
        progress ??= new Progress({ label: 'step', style: 'counter', total: p.steps });
        progress.update(p.step, p.steps, lossTerms(p));
      },
    });
    progress?.finish();
    console.log(`${r.status === 'aborted' ? 'stopped' : 'done'} at step ${r.step}: model ${r.model}, checkpoint ${r.checkpoint}, loss plot ${r.plot}`);
    return 0;
  } catch (e) {
    progress?.fail();
    if (e instanceof TrainingStoppedError) {
      console.error(`perceptual ${command}: ${e.message}`);
      return 1;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
    gpu.destroy();
  }
}
