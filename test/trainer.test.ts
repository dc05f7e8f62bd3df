// The generic training loop on a tiny model (two 3x3 convolutions) and a folder of five generated PNGs, with random
// crops, shuffling, batch 2 (so epochs wrap inside batches) and ctx.rng in the loss: an interrupted-and-resumed run
// must end BITWISE equal to an uninterrupted one; NaN/Inf stops before the step and leaves the last checkpoint alone;
// checkpoints are atomic; mismatched checkpoints are clear errors; the loss log and the SVG plot are well-formed.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Tensor } from '../src/autograd/tensor.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { add, mulScalar } from '../src/layers/elementwise.js';
import { mseLoss, totalVariation } from '../src/layers/loss.js';
import { Adam } from '../src/train/adam.js';
import { CheckpointError, loadCheckpoint, readCheckpoint, saveCheckpoint, type CheckpointFile } from '../src/train/checkpoint.js';
import { ImageFolder, type DataSource } from '../src/train/dataset.js';
import { lossPlotSvg, parseLossLog, plotSvg } from '../src/train/plot.js';
import { CHECKPOINT_FILE, train, TrainingStoppedError, type LossTerms, type StepContext, type TrainOptions } from '../src/train/trainer.js';
import { useGpu } from './helpers/gpu.js';
import { lossOf, TARGET, Tiny, tinySetup, weights, writeTinyImages } from './helpers/tiny-training.js';

// A crash between writing the temp file and renaming it over the checkpoint, on demand.
const crash = vi.hoisted(() => ({ rename: false }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const m = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...m,
    rename: async (from: string, to: string) => {
      if (crash.rename) throw Object.assign(new Error('simulated crash before rename'), { code: 'EIO' });
      return m.rename(from, to);
    },
  };
});

const gpu = useGpu();
let root: string;
let images: string;

const setup = (outDir: string, extra: Partial<TrainOptions> = {}, seed = 1) => tinySetup(gpu(), images, outDir, extra, seed);

/** Every tensor of a checkpoint as bit patterns. */
function bits(c: CheckpointFile): Record<string, number[]> {
  const o: Record<string, number[]> = {};
  for (const [prefix, map] of [['', c.model], ['m.', c.m], ['v.', c.v]] as const) {
    for (const [k, t] of map) o[prefix + k] = [...new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length)];
  }
  return o;
}

const withoutTime = (text: string) => parseLossLog(text).map(({ time: _t, ...r }) => r);

let reference: { weights: Map<string, Uint32Array>; ckpt: CheckpointFile; log: string };

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'trainer-test-'));
  images = join(root, 'images');
  await writeTinyImages(images);
  // The uninterrupted 15-step run every other run is compared with.
  const out = join(root, 'reference');
  const { model, opts } = await setup(out, { checkpointEvery: 5 });
  const res = await train(opts);
  expect(res).toMatchObject({ step: 15, status: 'completed', resumedFrom: null });
  reference = { weights: await weights(model), ckpt: await readCheckpoint(join(out, CHECKPOINT_FILE)), log: await readFile(join(out, 'loss.jsonl'), 'utf8') };
}, 120_000);

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('train', () => {
  it('writes the loss log (one line per step, every term), the plot (one path per term) and the final checkpoint', async () => {
    const recs = parseLossLog(reference.log);
    expect(recs.map((r) => r.step)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    for (const r of recs) {
      expect(Object.keys(r)).toEqual(['step', 'time', 'total', 'mse', 'tv']);
      expect(Number.isFinite(r.total) && r.total > 0).toBe(true);
      expect(Math.abs(r.total - (r.mse + r.tv))).toBeLessThan(1e-5 * r.total);
    }
    expect(recs[14].total).toBeLessThan(recs[0].total); // it learns
    const svg = await readFile(join(root, 'reference', 'loss.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<path /g)?.length).toBe(3);
    for (const t of ['total', 'mse', 'tv']) expect(svg).toContain(`data-term="${t}"`);
    expect(svg).toContain('(log scale)');
    const meta = reference.ckpt.meta;
    expect(meta).toMatchObject({ step: 15, config: { model: 'tiny', width: 4 }, adam: { step: 15, lr: 0.01, params: ['c1.weight', 'c1.bias', 'c2.weight', 'c2.bias'] } });
    expect(meta.data).toMatchObject({ epoch: 5, position: 5, count: 5 }); // 30 images = 6 epochs (0..5), all used
    expect([...reference.ckpt.m.keys()]).toEqual(['c1.bias', 'c1.weight', 'c2.bias', 'c2.weight']);
    expect(await readdir(join(root, 'reference'))).toEqual(['checkpoint.safetensors', 'loss.jsonl', 'loss.svg']); // no temp files
  });

  it('abort at step 7, then resume in a fresh model, optimizer and folder: bitwise the uninterrupted run', async () => {
    const out = join(root, 'abort');
    const ac = new AbortController();
    const a = await setup(out, { checkpointEvery: 5, signal: ac.signal, onProgress: (p) => p.step === 7 && ac.abort() });
    const r1 = await train(a.opts);
    expect(r1).toMatchObject({ step: 7, status: 'aborted' });
    expect((await readCheckpoint(join(out, CHECKPOINT_FILE))).meta.step).toBe(7);
    // A different initialisation: everything must come from the checkpoint.
    const b = await setup(out, { checkpointEvery: 5, resume: true }, 99);
    const logs: string[] = [];
    const r2 = await train({ ...b.opts, onLog: (m) => logs.push(m) });
    expect(r2).toMatchObject({ step: 15, status: 'completed', resumedFrom: 7 });
    expect(logs[0]).toMatch(/resuming from step 7/);
    expect(await weights(b.model)).toEqual(reference.weights);
    const ck = await readCheckpoint(join(out, CHECKPOINT_FILE));
    expect(bits(ck)).toEqual(bits(reference.ckpt));
    expect(ck.meta.rng).toEqual(reference.ckpt.meta.rng);
    expect(ck.meta.data).toEqual(reference.ckpt.meta.data);
    expect(withoutTime(await readFile(join(out, 'loss.jsonl'), 'utf8'))).toEqual(withoutTime(reference.log));
  });

  it('a crash at step 7 (last checkpoint at 5): the resumed run cuts the log back to step 5 and ends bitwise equal', async () => {
    const out = join(root, 'crash');
    const a = await setup(out, {
      checkpointEvery: 5,
      onProgress: (p) => {
        if (p.step === 7) throw new Error('power cut');
      },
    });
    await expect(train(a.opts)).rejects.toThrow('power cut');
    expect(parseLossLog(await readFile(join(out, 'loss.jsonl'), 'utf8')).length).toBe(7);
    expect((await readCheckpoint(join(out, CHECKPOINT_FILE))).meta.step).toBe(5);
    const b = await setup(out, { checkpointEvery: 5, resume: true }, 42);
    expect(await train(b.opts)).toMatchObject({ step: 15, resumedFrom: 5 });
    expect(await weights(b.model)).toEqual(reference.weights);
    const log = await readFile(join(out, 'loss.jsonl'), 'utf8');
    expect(withoutTime(log)).toEqual(withoutTime(reference.log));
  });

  it("NaN at step 5 stops before the step: clear message, last good checkpoint (step 4) untouched and loadable", async () => {
    const out = join(root, 'nan');
    let saved: Uint8Array | null = null;
    const a = await setup(out, { checkpointEvery: 2 });
    a.opts.loss = lossOf(a.model, (s) => (s === 5 ? { term: 'mse', value: NaN } : null));
    a.opts.onCheckpoint = async () => {
      saved = new Uint8Array(await readFile(join(out, CHECKPOINT_FILE)));
    };
    const err = await train(a.opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingStoppedError);
    const e = err as TrainingStoppedError;
    const path = join(out, CHECKPOINT_FILE);
    expect(e.message).toBe(`training stopped at step 5: loss term 'mse' is NaN; the last good checkpoint (step 4) is at ${path}`);
    expect(e).toMatchObject({ step: 5, term: 'mse', checkpointStep: 4, checkpoint: path });
    // The step-4 file is byte for byte what was written then.
    expect(saved).not.toBeNull();
    expect(new Uint8Array(await readFile(path))).toEqual(saved);
    const ck = await readCheckpoint(path);
    expect(ck.meta.step).toBe(4);
    // The NaN step was not applied: the live weights are still the step-4 ones, and Adam did not count it.
    const live = await weights(a.model);
    for (const [k, t] of ck.model) expect(live.get(k)).toEqual(new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length));
    expect((await a.optimizer.exportState()).step).toBe(4);
    expect(parseLossLog(await readFile(join(out, 'loss.jsonl'), 'utf8')).map((r) => r.step)).toEqual([1, 2, 3, 4]);
    // Loadable into a fresh model and optimizer.
    const m = new Tiny(gpu(), 5);
    const o = new Adam(m.parameters(), { lr: 0.01 });
    expect((await loadCheckpoint(path, { model: m, optimizer: o })).step).toBe(4);
    expect(await weights(m)).toEqual(live);
  });

  it('Inf in a term before any checkpoint names the term and says no checkpoint exists', async () => {
    const out = join(root, 'inf');
    const a = await setup(out, { checkpointEvery: 10 });
    a.opts.loss = lossOf(a.model, (s) => (s === 3 ? { term: 'tv', value: 0 } : null));
    await expect(train(a.opts)).rejects.toThrow("training stopped at step 3: loss term 'tv' is Infinity; no checkpoint has been written yet");
    expect(existsSync(join(out, CHECKPOINT_FILE))).toBe(false);
  });

  it('checkpoints are atomic: a crash between the temp write and the rename leaves the old file intact and no temp file', async () => {
    const out = join(root, 'atomic');
    const a = await setup(out, { checkpointEvery: 3, steps: 6 });
    a.opts.onProgress = (p) => {
      if (p.step === 6) crash.rename = true; // the final checkpoint (step 6) will fail to be renamed
    };
    const path = join(out, CHECKPOINT_FILE);
    try {
      await expect(train(a.opts)).rejects.toThrow('simulated crash before rename');
    } finally {
      crash.rename = false;
    }
    expect((await readCheckpoint(path)).meta.step).toBe(3);
    expect((await readdir(out)).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('refuses to overwrite a run unless asked; resume with nothing to resume starts afresh', async () => {
    const out = join(root, 'reference');
    const a = await setup(out, { steps: 1 });
    await expect(train(a.opts)).rejects.toThrow(/already holds a checkpoint \(step 15\); resume it, or choose overwrite/);
    const fresh = join(root, 'fresh');
    const logs: string[] = [];
    const b = await setup(fresh, { steps: 2, resume: true, onLog: (m) => logs.push(m) });
    expect(await train(b.opts)).toMatchObject({ step: 2, resumedFrom: null });
    expect(logs[0]).toMatch(/no checkpoint .* starting from step 0/);
    const c = await setup(fresh, { steps: 1, overwrite: true });
    expect(await train(c.opts)).toMatchObject({ step: 1 });
    expect(parseLossLog(await readFile(join(fresh, 'loss.jsonl'), 'utf8')).length).toBe(1);
  });

  it('progress reports rate and ETA; samples every k steps with the mode restored', async () => {
    const out = join(root, 'progress');
    let t = 0;
    const seen: number[] = [];
    const samples: number[] = [];
    const a = await setup(out, {
      steps: 4,
      sampleEvery: 2,
      now: () => (t += 250),
      onProgress: (p) => {
        seen.push(p.step);
        expect(p.steps).toBe(4);
        expect(Object.keys(p.losses)).toEqual(['total', 'mse', 'tv']);
        if (p.step > 1) {
          expect(p.itPerSec).toBeGreaterThan(0);
          expect(p.etaSec).toBeCloseTo((4 - p.step) / p.itPerSec!, 6);
        }
      },
    });
    a.opts.onSample = (s) => {
      a.model.eval();
      samples.push(s);
    };
    await train(a.opts);
    expect(seen).toEqual([1, 2, 3, 4]);
    expect(samples).toEqual([2, 4]);
    expect(a.model.training).toBe(true);
  });
});

describe('recorded steps (forward and backward captured on the first step, replayed after)', () => {
  /** A loss that builds the same graph every step (no ctx.rng): the trainer records and replays it. */
  const plainLoss = (model: Tiny) => async (ctx: StepContext): Promise<LossTerms> => {
    const x = mulScalar(await ctx.batch(), 1 / 255);
    const y = model.forward(x);
    const mse = mseLoss(y, Tensor.from(model.gpu, TARGET, y.shape));
    const tv = mulScalar(totalVariation(y), 1e-3);
    return { total: add(mse, tv), mse, tv };
  };
  /** The folder's batches, with pixels of 3e38 from batch `nanAt` on (their squares overflow; a NaN pixel would
   *  not do: relu, max(x, 0), may turn NaN into 0). */
  const poisoned = (data: ImageFolder, nanAt: number): DataSource => {
    let n = 0;
    return {
      next: async () => {
        const b = await data.next();
        return ++n >= nanAt ? { ...b, data: b.data.map(() => 3e38) } : b;
      },
      getState: () => data.getState(),
      setState: (st) => data.setState(st),
      close: () => data.close(),
    };
  };
  let eager: { weights: Map<string, Uint32Array>; ckpt: CheckpointFile; log: string };

  beforeAll(async () => {
    const out = join(root, 'eager');
    const { model, opts } = await setup(out, { checkpointEvery: 5, record: false });
    await train({ ...opts, loss: plainLoss(model) });
    eager = { weights: await weights(model), ckpt: await readCheckpoint(join(out, CHECKPOINT_FILE)), log: await readFile(join(out, 'loss.jsonl'), 'utf8') };
  }, 120_000);

  it('15 recorded steps are bitwise the 15 eager ones (weights, Adam moments, log), with memory flat after the first', async () => {
    const out = join(root, 'recorded');
    const created: number[] = [];
    const { model, opts } = await setup(out, { checkpointEvery: 5, onProgress: () => void created.push(gpu().stats().created) });
    await train({ ...opts, loss: plainLoss(model) });
    expect(await weights(model)).toEqual(eager.weights);
    expect(bits(await readCheckpoint(join(out, CHECKPOINT_FILE)))).toEqual(bits(eager.ckpt));
    expect(withoutTime(await readFile(join(out, 'loss.jsonl'), 'utf8'))).toEqual(withoutTime(eager.log));
    expect(parseLossLog(eager.log)[14].total).toBeLessThan(parseLossLog(eager.log)[0].total);
    expect(created.slice(2).every((c) => c === created[2])).toBe(true);
  });

  it('abort at step 7 and resume (recording again): bitwise the eager run', async () => {
    const out = join(root, 'recorded-abort');
    const ac = new AbortController();
    const a = await setup(out, { checkpointEvery: 5, signal: ac.signal, onProgress: (p) => p.step === 7 && ac.abort() });
    expect(await train({ ...a.opts, loss: plainLoss(a.model) })).toMatchObject({ step: 7, status: 'aborted' });
    const b = await setup(out, { checkpointEvery: 5, resume: true }, 99);
    expect(await train({ ...b.opts, loss: plainLoss(b.model) })).toMatchObject({ step: 15, resumedFrom: 7 });
    expect(await weights(b.model)).toEqual(eager.weights);
    expect(withoutTime(await readFile(join(out, 'loss.jsonl'), 'utf8'))).toEqual(withoutTime(eager.log));
  });

  it('a loss whose graph depends on the step (three alternating targets): one recording per recordKey, bitwise the eager run', async () => {
    // A constant per key (uploaded inside the loss): a single recording would replay step 1's target every step.
    const keyed = (model: Tiny) => async (ctx: StepContext): Promise<LossTerms> => {
      const y = model.forward(mulScalar(await ctx.batch(), 1 / 255));
      const k = (ctx.step - 1) % 3;
      const mse = mseLoss(y, Tensor.from(model.gpu, TARGET.map((v) => v * (k + 1)), y.shape));
      return { total: mse, mse };
    };
    const e = await setup(join(root, 'keyed-eager'), { record: false });
    await train({ ...e.opts, loss: keyed(e.model) });
    const r = await setup(join(root, 'keyed-recorded'), { recordKey: (step) => (step - 1) % 3 });
    await train({ ...r.opts, loss: keyed(r.model) });
    expect(await weights(r.model)).toEqual(await weights(e.model));
    // Without the key, the first step's target is replayed at every step: a different run.
    const one = await setup(join(root, 'keyed-one'), {});
    await train({ ...one.opts, loss: keyed(one.model) });
    expect(await weights(one.model)).not.toEqual(await weights(e.model));
  });

  it('lrAt: the schedule applies to replayed steps too (recorded = eager, bitwise), and it changes the run', async () => {
    const lrAt = (step: number) => 0.02 / step;
    const e = await setup(join(root, 'lr-eager'), { record: false, lrAt });
    await train({ ...e.opts, loss: plainLoss(e.model) });
    const r = await setup(join(root, 'lr-recorded'), { lrAt });
    await train({ ...r.opts, loss: plainLoss(r.model) });
    expect(await weights(r.model)).toEqual(await weights(e.model));
    expect(r.optimizer.lr).toBe(lrAt(15));
    expect(await weights(r.model)).not.toEqual(eager.weights);
  });

  it('Inf in a replayed step stops before applying it; the step-4 checkpoint and weights are intact', async () => {
    const out = join(root, 'recorded-nan');
    const a = await setup(out, { checkpointEvery: 2 });
    const err = (await train({ ...a.opts, data: poisoned(a.data, 5), loss: plainLoss(a.model) }).catch((e: unknown) => e)) as TrainingStoppedError;
    expect(err).toBeInstanceOf(TrainingStoppedError);
    expect(err).toMatchObject({ step: 5, term: 'mse', checkpointStep: 4 });
    const ck = await readCheckpoint(join(out, CHECKPOINT_FILE));
    expect(ck.meta.step).toBe(4);
    const live = await weights(a.model);
    for (const [k, t] of ck.model) expect(live.get(k)).toEqual(new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length));
    expect((await a.optimizer.exportState()).step).toBe(4);
  });

  it('a loss drawing on ctx.rng runs eagerly (said once); ctx.nextBatch() in a recorded step is a clear error', async () => {
    const logs: string[] = [];
    const a = await setup(join(root, 'rng-loss'), { steps: 3, onLog: (m) => logs.push(m) });
    expect(await train(a.opts)).toMatchObject({ step: 3, status: 'completed' });
    expect(logs).toEqual(['the loss draws on ctx.rng: its steps are run one by one, not recorded and replayed']);
    const b = await setup(join(root, 'cpu-batch'), { steps: 2 });
    b.opts.loss = async (ctx) => {
      const d = await ctx.nextBatch();
      return plainLoss(b.model)({ ...ctx, batch: async () => Tensor.from(gpu(), d.data, d.shape) });
    };
    await expect(train(b.opts)).rejects.toThrow('a recorded step takes its data through ctx.batch(); train with record: false to use ctx.nextBatch()');
    expect(gpu().stats().heldBytes).toBe(0); // the failed recording gave its buffers back
  });
});

describe('checkpoint files', () => {
  it('a checkpoint of a different model, a config mismatch, a corrupt file and a plain weights file are clear errors', async () => {
    const path = join(root, 'reference', CHECKPOINT_FILE);
    const wide = new Tiny(gpu(), 1, 5);
    const before = await weights(wide);
    const err = (await loadCheckpoint(path, { model: wide, optimizer: new Adam(wide.parameters()) }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toContain('tensor c1.weight: expected shape [5,3,3,3], found [4,3,3,3]');
    expect(err.message).toContain('tensor adam.m.c2.weight: expected shape [3,5,3,3], found [3,4,3,3]');
    expect(err.message).toContain('was it made for a different one?');
    expect(await weights(wide)).toEqual(before); // nothing was changed
    const m = new Tiny(gpu());
    await expect(loadCheckpoint(path, { model: m, mustMatch: { model: 'tiny', width: 8 } })).rejects.toThrow(
      /different configuration \(width: checkpoint 4, this run 8\)/,
    );
    await expect(loadCheckpoint(path, { model: m, mustMatch: { model: 'tiny', width: 4 } })).resolves.toMatchObject({ step: 15 });
    const bytes = await readFile(path);
    const bad = join(root, 'truncated.safetensors');
    await writeFile(bad, bytes.subarray(0, bytes.length - 10));
    await expect(loadCheckpoint(bad, { model: m })).rejects.toThrow(/truncated\.safetensors/);
    const plain = join(root, 'plain.safetensors');
    await writeFile(plain, writeSafetensors({ 'c1.weight': { data: new Float32Array(108), shape: [4, 3, 3, 3] } }));
    await expect(loadCheckpoint(plain, { model: m })).rejects.toThrow(/not a training checkpoint/);
    await expect(loadCheckpoint(join(root, 'missing.safetensors'), { model: m })).rejects.toThrow(/cannot read checkpoint .*missing\.safetensors.*no such file/);
  });

  it('saveCheckpoint refuses an optimizer over tensors that are not the model parameters', async () => {
    const m = new Tiny(gpu());
    const stray = Tensor.param(gpu(), [1, 2], [2], 'stray');
    await expect(saveCheckpoint(join(root, 'x.safetensors'), { model: m, optimizer: new Adam([stray]), step: 0 })).rejects.toThrow(
      /optimizer parameter #0 \(stray\) \[2\] is not a parameter of the model/,
    );
    stray.dispose();
  });
});

describe('loss plot', () => {
  it('one path per term, log axis, gaps for values that cannot be drawn, thinning of long runs', () => {
    const recs = Array.from({ length: 5000 }, (_, i) => ({ step: i + 1, time: i, total: 10 / (i + 1), a: i === 10 ? NaN : 1 + (i % 3), b: i < 5 ? 0 : 0.5 }));
    const svg = lossPlotSvg(recs);
    expect(svg.match(/<path /g)?.length).toBe(3);
    const d = [...svg.matchAll(/data-term="(\w+)" d="([^"]*)"/g)].map((m) => [m[1], m[2]] as const);
    expect(d.map(([k]) => k)).toEqual(['total', 'a', 'b']);
    for (const [, path] of d) {
      expect(path.match(/[ML]/g)!.length).toBeLessThanOrEqual(1600);
      expect(path).not.toMatch(/NaN|Infinity/);
    }
    expect(d[1][1].match(/M/g)!.length).toBe(2); // the NaN splits curve 'a'
    expect(svg).toMatch(/>0\.01<\/text>/); // a log tick
    expect(plotSvg([], {})).toContain('no data');
  });

  it('parseLossLog skips a torn last line', () => {
    expect(parseLossLog('{"step":1,"total":2}\n{"step":2,"total":1}\n{"step":3,"to')).toEqual([
      { step: 1, total: 2 },
      { step: 2, total: 1 },
    ]);
  });
});
