// What train-style and train-sr share on the command line: Ctrl-C stops after the current step (with a
// checkpoint), a progress line (redrawn on a terminal, every 10 s otherwise), and a NaN stop reported
// as a message with the last good checkpoint rather than a stack trace; and the options both take.
import { Gpu } from '../gpu/index.js';
import { TrainingStoppedError, type TrainProgress, type TrainResult } from '../train/trainer.js';
import { formatDuration } from './progress.js';

/** parseArgs options every training command takes, beside its own. */
export const TRAINING_OPTIONS = {
  data: { type: 'string' },
  out: { type: 'string' },
  size: { type: 'string' },
  batch: { type: 'string' },
  steps: { type: 'string' },
  lr: { type: 'string' },
  'tv-weight': { type: 'string' },
  'loss-net': { type: 'string' },
  'loss-weights': { type: 'string' },
  seed: { type: 'string' },
  'checkpoint-every': { type: 'string' },
  sample: { type: 'string', multiple: true },
  'sample-every': { type: 'string' },
  resume: { type: 'boolean' },
  overwrite: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${v}`);
  return n;
}

type TrainingValues = { [K in keyof typeof TRAINING_OPTIONS]?: (typeof TRAINING_OPTIONS)[K] extends { multiple: true } ? string[] : string | boolean };

/** The shared options as trainStyle/trainSR take them. */
export function trainingOptions(v: TrainingValues) {
  const str = (k: keyof TrainingValues) => v[k] as string | undefined;
  return {
    data: str('data')!,
    outDir: str('out')!,
    size: num(str('size'), 'size'),
    batchSize: num(str('batch'), 'batch'),
    steps: num(str('steps'), 'steps'),
    lr: num(str('lr'), 'lr'),
    tvWeight: num(str('tv-weight'), 'tv-weight'),
    lossWeights: str('loss-weights'),
    seed: num(str('seed'), 'seed'),
    checkpointEvery: num(str('checkpoint-every'), 'checkpoint-every'),
    sampleImages: v.sample as string[] | undefined,
    sampleEvery: num(str('sample-every'), 'sample-every'),
    resume: v.resume as boolean | undefined,
    overwrite: v.overwrite as boolean | undefined,
  };
}

export function progressLine(p: TrainProgress): string {
  const pct = ((100 * p.step) / p.steps).toFixed(1);
  const rate = p.itPerSec === undefined ? '- it/s' : p.itPerSec >= 1 ? `${p.itPerSec.toFixed(2)} it/s` : `${(1 / p.itPerSec).toFixed(2)} s/it`;
  const eta = p.etaSec === undefined ? '' : ` ETA ${formatDuration(p.etaSec)}`;
  const terms = Object.entries(p.losses)
    .map(([k, v]) => `${k} ${v.toPrecision(4)}`)
    .join(' ');
  return `step ${p.step}/${p.steps} (${pct}%) ${rate}${eta} | ${terms}`;
}

export interface RunHooks {
  signal: AbortSignal;
  onProgress: (p: TrainProgress) => void;
  onLog: (message: string) => void;
}

/** Runs a training function with the CLI's hooks; returns the process exit code. */
export async function runTraining(command: string, run: (gpu: Gpu, hooks: RunHooks) => Promise<TrainResult & { model: string }>): Promise<number> {
  const controller = new AbortController();
  const onSigint = () => {
    console.error(`\nperceptual ${command}: stopping after this step (a checkpoint will be written)…`);
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  const tty = !!process.stderr.isTTY;
  let lastPrint = 0;
  const gpu = await Gpu.create();
  try {
    const r = await run(gpu, {
      signal: controller.signal,
      onLog: (m) => console.error(tty ? `\r${m}` : m),
      onProgress: (p) => {
        const now = performance.now();
        if (tty) process.stderr.write(`\r${progressLine(p)}\x1b[K`);
        else if (now - lastPrint > 10_000 || p.step === p.steps || p.step === 1) {
          console.error(progressLine(p));
          lastPrint = now;
        }
      },
    });
    if (tty) process.stderr.write('\n');
    console.log(`${r.status === 'aborted' ? 'stopped' : 'done'} at step ${r.step}: model ${r.model}, checkpoint ${r.checkpoint}, loss plot ${r.plot}`);
    return 0;
  } catch (e) {
    if (tty) process.stderr.write('\n');
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
