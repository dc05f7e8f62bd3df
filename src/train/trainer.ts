// The generic training loop shared by style-transfer and super-resolution training. The caller brings the model,
// the optimizer, the data source and a loss function returning named scalar terms (one of them `total`); the
// trainer runs the steps and owns everything around them:
//
//   per step   optimizationStep (step.ts): tidy scope { loss(ctx) → backward(total) → ONE readback of all terms →
//              finite check → optimizer.step() → zeroGrad }; a NaN/Inf is caught BEFORE the optimizer applies it.
//              By default the first step's forward and backward are recorded and replayed after (RecordedStep:
//              no per-step graph work in JS, bit for bit the same results); a loss that draws on ctx.rng is run
//              eagerly instead, and `record: false` turns recording off.
//   log        `<outDir>/loss.jsonl`, one line `{"step":N,"time":sec,"total":..,"<term>":..}` per step.
//   progress   onProgress({step, steps, itPerSec, etaSec, elapsedSec, losses}); the trainer never prints.
//   checkpoint `<outDir>/checkpoint.safetensors` every `checkpointEvery` steps, on abort and at the end,
//              written atomically (checkpoint.ts). Samples: onSample(step) every `sampleEvery` steps.
//   end        the final checkpoint and `<outDir>/loss.svg` (plot.ts), from the whole log.
//
// Determinism: all randomness must come from ctx.rng (checkpointed) and the data source (its state is
// checkpointed); `resume: true` then continues exactly the trajectory of an uninterrupted run, and the log is cut
// back to the checkpoint's step. NaN/Inf in any term stops the run with TrainingStoppedError before the step is
// applied; the last good checkpoint is not touched. An AbortSignal stops after the current step, with a checkpoint.
//
// Safety of the folder and its files (run-dir.ts, checkpoint.ts):
//   lock       the run holds `<outDir>/train.lock` (its PID and host) from start to end: a second run into the same
//              folder is refused naming the owner; the lock of a process that no longer runs is taken over.
//   finite     every checkpoint reads the weights and Adam moments back; a NaN/Inf among them stops the run with
//              TrainingStoppedError and nothing is written (a step whose loss is finite can still produce them).
//              "The last good checkpoint" is always one that was verified: finite, and read back with its hash.
//   temp files left by a killed writer (writeFileAtomic's `.<name>.<pid>.<rand>.tmp`, dead PID) are removed at start.
//   overwrite  a fresh run sets the previous run's files aside (`previous-run/`), deletes them at its first
//              checkpoint, and puts them back when it fails before that: nothing of the old run is lost early.
import { appendFile, mkdir, readFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Tensor, tidyAsync } from '../autograd/tensor.js';
import { removeStaleTempFiles, writeFileAtomic } from '../io/files.js';
import { describeNonFinite, NonFiniteTensorError } from '../io/finite.js';
import type { Module } from '../layers/module.js';
import type { Adam } from './adam.js';
import { loadCheckpoint, readCheckpoint, saveCheckpoint } from './checkpoint.js';
import type { BatchData, DataSource } from './dataset.js';
import { lossPlotSvg, parseLossLog, type LossRecord } from './plot.js';
import { Rng } from './rng.js';
import { dropAside, lockRunDir, PREVIOUS_RUN_DIR, restoreAside, setAside } from './run-dir.js';
import { NonFiniteLossError, optimizationStep, RecordedStep, type LossTerms } from './step.js';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
export const LOSS_LOG_FILE = 'loss.jsonl';
export const LOSS_PLOT_FILE = 'loss.svg';
/** What the training commands write into outDir beside the trainer's files (TrainOptions.outputs). */
export const DEFAULT_RUN_OUTPUTS: readonly string[] = ['model.safetensors', 'samples'];

export { LOCK_FILE, OutDirLockedError, PREVIOUS_RUN_DIR } from './run-dir.js';

export type { LossTerms } from './step.js';

export interface StepContext {
  /** The step being computed, 1-based (after it, `step` steps are done). */
  step: number;
  steps: number;
  /** The trainer's generator: checkpointed, so use it (only it) for any randomness of the step. */
  rng: Rng;
  /** The optimizer (its learning rate over the run: TrainOptions.lrAt, which recorded steps honour too). */
  optimizer: Adam;
  /** The next batch of the data source as a tensor [B,3,S,S] (freed after the step); each call takes a new batch. */
  batch(): Promise<Tensor>;
  /** The next batch as CPU data (not in a recorded step: its tensors would be constants of the recording). */
  nextBatch(): Promise<BatchData>;
}

export interface TrainProgress {
  step: number;
  steps: number;
  /** Steps per second over the last few steps (undefined until measurable). */
  itPerSec?: number;
  etaSec?: number;
  /** Training time so far, including before a resume. */
  elapsedSec: number;
  losses: Record<string, number>;
}

export interface TrainOptions {
  model: Module;
  optimizer: Adam;
  /** The step count to reach (a resumed run continues up to it). */
  steps: number;
  outDir: string;
  loss: (ctx: StepContext) => LossTerms | Promise<LossTerms>;
  data?: DataSource | null;
  /** Seed of ctx.rng (default 0). */
  seed?: number;
  /** Continue from `<outDir>/checkpoint.safetensors` when it exists (a fresh run otherwise). */
  resume?: boolean;
  /** Start afresh even though `outDir` holds a checkpoint (default false: that is an error unless resuming). The
   *  previous run's files are set aside until this run's first checkpoint (see the top of this file). */
  overwrite?: boolean;
  /** The caller's own files and folders in outDir, set aside with the trainer's on a fresh start (default
   *  DEFAULT_RUN_OUTPUTS). */
  outputs?: readonly string[];
  /** Steps between checkpoints (0 or undefined: only on abort and at the end). */
  checkpointEvery?: number;
  /** Steps between onSample calls. */
  sampleEvery?: number;
  /** Called after step `step` (in a tidy scope; the model's train/eval mode is restored after). Do not use ctx.rng. */
  onSample?: (step: number) => void | Promise<void>;
  onProgress?: (p: TrainProgress) => void;
  /** After each checkpoint write (awaited). */
  onCheckpoint?: (info: { step: number; path: string }) => void | Promise<void>;
  /** Notes for the user (resuming, ...). */
  onLog?: (message: string) => void;
  signal?: AbortSignal;
  /** Saved in every checkpoint (the training options). */
  config?: Record<string, unknown>;
  /** On resume, values the checkpoint's config must hold (e.g. the model kind and width). */
  mustMatch?: Record<string, unknown>;
  /** Milliseconds clock (default performance.now), injectable for tests. */
  now?: () => number;
  /** Record the first step's forward and backward and replay them (default true; see the top of this file). The
   *  loss must then build the same graph each step from ctx.batch() alone: a replayed step does not call it, so
   *  anything per step (a learning-rate schedule: lrAt) must not be set there. */
  record?: boolean;
  /** Steps whose key is the same build the same graph (e.g. the style a multi-style network trains at that step):
   *  one recording per key, each replayed at the steps with its key. Default: one key for every step. */
  recordKey?: (step: number) => string | number;
  /** The learning rate of step s (1-based), set before every step, recorded or not; a function of the step alone, so
   *  a resumed run continues the same schedule. Default: the optimizer's own, unchanged. */
  lrAt?: (step: number) => number;
}

export interface TrainResult {
  /** Steps completed. */
  step: number;
  status: 'completed' | 'aborted';
  /** The checkpoint step the run resumed from, or null for a fresh run. */
  resumedFrom: number | null;
  checkpoint: string;
  lossLog: string;
  plot: string;
  /** The loss terms of the last step run (null when no step ran). */
  losses: Record<string, number> | null;
}

/** A loss term became NaN or infinite (the run stopped before applying that step), or a checkpoint found the
 *  weights or Adam moments non-finite (kind 'state'; `term` is then the tensor, and nothing was written). */
export class TrainingStoppedError extends Error {
  override name = 'TrainingStoppedError';
  constructor(
    message: string,
    readonly step: number,
    readonly term: string,
    readonly value: number,
    /** The last good checkpoint, or null when none was written. */
    readonly checkpoint: string | null,
    readonly checkpointStep: number | null,
    readonly kind: 'loss' | 'state' = 'loss',
  ) {
    super(message);
  }
}

const count = (v: number | undefined, what: string): number => {
  const n = v ?? 0;
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`train: ${what} must be a non-negative integer, got ${v}`);
  return n;
};

/** Keeps the log lines up to `step` (a resumed run rewrites what came after its checkpoint). */
async function truncateLog(path: string, step: number): Promise<void> {
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch {
    /* no log yet */
  }
  const kept = parseLossLog(text).filter((r) => r.step <= step);
  await writeFileAtomic(path, kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
}

async function writePlot(logPath: string, plotPath: string): Promise<void> {
  let records: LossRecord[] = [];
  try {
    records = parseLossLog(await readFile(logPath, 'utf8'));
  } catch {
    /* no log */
  }
  await writeFileAtomic(plotPath, lossPlotSvg(records));
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  count(opts.steps, 'steps');
  count(opts.checkpointEvery, 'checkpointEvery');
  count(opts.sampleEvery, 'sampleEvery');
  await mkdir(opts.outDir, { recursive: true });
  const lock = await lockRunDir(opts.outDir);
  try {
    if (lock.tookOver) opts.onLog?.(`took over the lock of PID ${lock.tookOver.pid} in ${opts.outDir} (that process no longer runs)`);
    return await trainLocked(opts);
  } finally {
    await lock.release();
  }
}

/** Resolves a set-aside previous run left by a fresh run that was killed: deleted if that run reached its first
 *  checkpoint, else put back. */
async function recoverAside(outDir: string, runFiles: readonly string[], log: (m: string) => void): Promise<void> {
  if (!existsSync(join(outDir, PREVIOUS_RUN_DIR))) return;
  if (existsSync(join(outDir, CHECKPOINT_FILE))) {
    await dropAside(outDir);
    log(`deleted ${join(outDir, PREVIOUS_RUN_DIR)}: the run that set it aside had written its first checkpoint`);
  } else {
    const back = await restoreAside(outDir, runFiles);
    log(`put the previous run's files back from ${join(outDir, PREVIOUS_RUN_DIR)} (${back.join(', ')}): the run that set them aside was interrupted before its first checkpoint`);
  }
}

async function trainLocked(opts: TrainOptions): Promise<TrainResult> {
  const { model, optimizer, outDir } = opts;
  const steps = count(opts.steps, 'steps');
  const checkpointEvery = count(opts.checkpointEvery, 'checkpointEvery');
  const sampleEvery = count(opts.sampleEvery, 'sampleEvery');
  const now = opts.now ?? (() => performance.now());
  const data = opts.data ?? null;
  const ckptPath = join(outDir, CHECKPOINT_FILE);
  const logPath = join(outDir, LOSS_LOG_FILE);
  const plotPath = join(outDir, LOSS_PLOT_FILE);
  const log = (m: string) => opts.onLog?.(m);
  const runFiles = [CHECKPOINT_FILE, LOSS_LOG_FILE, LOSS_PLOT_FILE, ...(opts.outputs ?? DEFAULT_RUN_OUTPUTS)];

  // In the folder and in the run's own subfolders (samples are written atomically too).
  const stale: string[] = [];
  for (const dir of [outDir, ...runFiles.map((f) => join(outDir, f))]) {
    if (dir === outDir || (await stat(dir).catch(() => null))?.isDirectory()) stale.push(...(await removeStaleTempFiles(dir)).map((f) => relative(outDir, join(dir, f))));
  }
  if (stale.length) log(`removed ${stale.length} temporary file${stale.length === 1 ? '' : 's'} left by an interrupted write in ${outDir}: ${stale.join(', ')}`);
  await recoverAside(outDir, runFiles, log);

  let rng = new Rng(opts.seed ?? 0);
  let step = 0;
  let elapsedBase = 0;
  let lastCkpt: number | null = null;
  let resumedFrom: number | null = null;
  const haveCkpt = existsSync(ckptPath);
  if (opts.resume && haveCkpt) {
    const meta = await loadCheckpoint(ckptPath, { model, optimizer, mustMatch: opts.mustMatch, onWarning: log });
    step = meta.step;
    if (meta.rng) rng = Rng.fromState(meta.rng);
    if (data) {
      if (meta.data === null || meta.data === undefined) throw new Error(`train: ${ckptPath} holds no data-order state, but this run has a data source`);
      data.setState(meta.data);
    }
    elapsedBase = meta.elapsedSec ?? 0;
    lastCkpt = resumedFrom = step;
    await truncateLog(logPath, step);
    log(`resuming from step ${step} (${ckptPath})`);
  } else {
    if (haveCkpt && !opts.overwrite) {
      const prev = await readCheckpoint(ckptPath).then((c) => `step ${c.meta.step}`, (e: Error) => `unusable: ${e.message}`);
      throw new Error(`train: ${outDir} already holds a checkpoint (${prev}); resume it, or choose overwrite to start over`);
    }
    if (opts.resume) log(`no checkpoint in ${outDir}: starting from step 0`);
  }
  // The previous run's files, kept aside until this run has a checkpoint of its own.
  let aside = resumedFrom === null ? await setAside(outDir, runFiles) : [];
  if (aside.length) log(`set the previous run's files aside in ${join(outDir, PREVIOUS_RUN_DIR)} (${aside.join(', ')}) until this run's first checkpoint`);

  const t0 = now();
  const elapsed = () => elapsedBase + (now() - t0) / 1000;
  const times: number[] = [t0];
  let losses: Record<string, number> | null = null;
  let status: TrainResult['status'] = 'completed';

  const lastGood = () => (lastCkpt !== null ? `the last good checkpoint (step ${lastCkpt}) is at ${ckptPath}` : 'no checkpoint has been written yet');
  const checkpoint = async (s: number) => {
    try {
      await saveCheckpoint(ckptPath, { model, optimizer, step: s, rng, data, config: opts.config, elapsedSec: elapsed(), losses });
    } catch (e) {
      if (!(e instanceof NonFiniteTensorError)) throw e;
      const bad = describeNonFinite({ name: e.tensor, count: e.count, size: e.size, value: e.value, index: e.index }, e.tensors - 1);
      const msg = `training stopped at step ${s}: the weights or Adam moments are not finite: ${bad}; not saved; ${lastGood()}`;
      throw new TrainingStoppedError(msg, s, e.tensor, e.value, lastCkpt !== null ? ckptPath : null, lastCkpt, 'state');
    }
    lastCkpt = s;
    if (aside.length) {
      await dropAside(outDir);
      log(`deleted the previous run's files (${aside.join(', ')}): this run has its first checkpoint`);
      aside = [];
    }
    await opts.onCheckpoint?.({ step: s, path: ckptPath });
  };

  const nextBatch = () => {
    if (!data) throw new Error('train: the loss asked for a batch, but no data source was given');
    return data.next();
  };
  // One recording per key (opts.recordKey); null once the loss turned out to draw on ctx.rng.
  let recordings: Map<string | number, RecordedStep> | null = opts.record === false ? null : new Map();
  try {
    if (resumedFrom === null) await writeFileAtomic(logPath, '');
    optimizer.zeroGrad();
    while (step < steps) {
      if (opts.signal?.aborted) {
        status = 'aborted';
        break;
      }
      const s = step + 1;
      if (opts.lrAt) optimizer.lr = opts.lrAt(s);
      const ctx: StepContext = {
        step: s,
        steps,
        rng,
        optimizer,
        nextBatch,
        batch: async () => {
          const b = await nextBatch();
          return Tensor.from(model.gpu, b.data, b.shape);
        },
      };
      let values: Record<string, number>;
      try {
        const key = opts.recordKey?.(s) ?? 0;
        let recorded = recordings?.get(key);
        if (recordings && !recorded) recordings.set(key, (recorded = new RecordedStep(optimizer)));
        if (recordings && recorded) {
          const rngBefore = rng.getState().join();
          const capturing = !recorded.recorded;
          const noCpuBatch = () => Promise.reject(new Error('train: a recorded step takes its data through ctx.batch(); train with record: false to use ctx.nextBatch()'));
          values = await recorded.run((batch) => opts.loss({ ...ctx, batch, nextBatch: noCpuBatch }), nextBatch);
          if (capturing && rng.getState().join() !== rngBefore) {
            // Randomness drawn while building the graph would be frozen into the recording: run eagerly from now on.
            for (const r of recordings.values()) r.dispose();
            recordings = null;
            log('the loss draws on ctx.rng: its steps are run one by one, not recorded and replayed');
          }
        } else values = await optimizationStep(optimizer, () => opts.loss(ctx));
      } catch (e) {
        if (!(e instanceof NonFiniteLossError)) throw e;
        throw new TrainingStoppedError(`training stopped at step ${s}: ${e.message}; ${lastGood()}`, s, e.term, e.value, lastCkpt !== null ? ckptPath : null, lastCkpt);
      }
      step = s;
      losses = values;
      const t = now();
      times.push(t);
      if (times.length > 21) times.shift();
      const time = Math.round(elapsed() * 1000) / 1000;
      await appendFile(logPath, `${JSON.stringify({ step, time, ...values })}\n`);
      const span = (times[times.length - 1] - times[0]) / 1000;
      const itPerSec = span > 0 ? (times.length - 1) / span : undefined;
      opts.onProgress?.({ step, steps, itPerSec, etaSec: itPerSec ? (steps - step) / itPerSec : undefined, elapsedSec: elapsed(), losses: values });
      if (checkpointEvery > 0 && step % checkpointEvery === 0 && step < steps) await checkpoint(step);
      if (opts.onSample && sampleEvery > 0 && step % sampleEvery === 0) {
        const mode = model.training;
        try {
          await tidyAsync(async () => {
            await opts.onSample!(step);
          });
        } finally {
          model.train(mode);
        }
      }
      if (opts.signal?.aborted && step < steps) {
        status = 'aborted';
        break;
      }
    }
    if (lastCkpt !== step) await checkpoint(step);
  } catch (e) {
    if (aside.length) {
      // Failed before a checkpoint of its own: the previous run's files are what this folder held, so they return.
      const back = await restoreAside(outDir, runFiles).catch(() => null);
      log(back ? `put the previous run's files back (${back.join(', ')}): this run failed before its first checkpoint` : `could not put the previous run's files back: they are in ${join(outDir, PREVIOUS_RUN_DIR)}`);
    } else {
      // Keep the plot in step with the log even when the run fails; the checkpoint is left as it was.
      await writePlot(logPath, plotPath).catch(() => {});
    }
    throw e;
  } finally {
    for (const r of recordings?.values() ?? []) r.dispose();
    data?.close?.();
  }
  await writePlot(logPath, plotPath);
  return { step, status, resumedFrom, checkpoint: ckptPath, lossLog: logPath, plot: plotPath, losses };
}
