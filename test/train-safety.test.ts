// Hardening of training runs (issue #14, items 4-6), each from the input that used to get through:
//   4  weights or Adam moments turned NaN/Inf by a step whose loss was finite (lr 1e39: Inf in float32) were
//      checkpointed, saved as the model, called "the last good checkpoint", and loaded by stylize;
//   5  two runs into one folder both ran (interleaved loss.jsonl, one model over the other);
//   6  a checkpoint with a flipped byte or an edited step was resumed; temp files of killed writes stayed forever;
//      --overwrite emptied the loss log before the new run had a checkpoint.
// Each test asserts the error, the exit code where the CLI is involved, and that nothing was lost or overwritten.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { trainStyle } from '../src/api/train-style.js';
import { writeFileAtomic } from '../src/io/files.js';
import { NonFiniteTensorError } from '../src/io/finite.js';
import { writeImage } from '../src/io/image-node.js';
import { createImage } from '../src/io/image.js';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../src/io/safetensors.js';
import type { Module } from '../src/layers/module.js';
import { saveTransformerNet, transformerNetFromTensors } from '../src/nets/model-file.js';
import { saveSRNet, SRNet, srNetFromTensors } from '../src/nets/sr-net.js';
import { TransformerNet } from '../src/nets/transformer-net.js';
import { ADAM_M, ADAM_V, CHECKPOINT_HASH_KEY, CHECKPOINT_KEY, CheckpointError, loadCheckpoint, readCheckpoint, type CheckpointFile } from '../src/train/checkpoint.js';
import { parseLossLog } from '../src/train/plot.js';
import { CHECKPOINT_FILE, LOCK_FILE, OutDirLockedError, PREVIOUS_RUN_DIR, train, TrainingStoppedError, type StepContext } from '../src/train/trainer.js';
import { useGpu } from './helpers/gpu.js';
import { rng } from './helpers/rand.js';
import { randomWeightFile } from './helpers/shared.js';
import { lossOf, Tiny, tinySetup, weights, writeTinyImages } from './helpers/tiny-training.js';

const gpu = useGpu();
/** A generated SqueezeNet 1.1 (random weights, the real shapes): the CLI tests need a loss network, not the real one. */
const SQUEEZENET = randomWeightFile('squeezenet1_1', 4);
let root: string;
let images: string;
let n = 0;
/** A fresh folder under the test's root. */
const fresh = (name: string) => join(root, `${name}-${n++}`);
const setup = (outDir: string, extra: Parameters<typeof tinySetup>[3] = {}, seed = 1) => tinySetup(gpu(), images, outDir, extra, seed);

/** Every file under `dir` (relative path → sha256 of its bytes): "nothing changed" is equality of two of these. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of (await readdir(dir, { recursive: true })).sort()) {
    const p = join(dir, f);
    if ((await stat(p)).isFile()) out[relative(dir, p)] = createHash('sha256').update(await readFile(p)).digest('hex');
  }
  return out;
}

type Tensors = Map<string, { data: Float32Array; shape: readonly number[] }>;

const logSteps = async (dir: string) => parseLossLog(await readFile(join(dir, 'loss.jsonl'), 'utf8')).map((r) => r.step);

/** The Tiny loss, with Adam's learning rate set to 1e39 (Inf in float32) from step `from` on: the loss of that step is
 *  finite, its update makes the weights Inf/NaN. */
const blowUpAt = (model: Tiny, from: number) => {
  const base = lossOf(model);
  return (ctx: StepContext) => {
    if (ctx.step >= from) ctx.optimizer.lr = 1e39;
    return base(ctx);
  };
};

/** A checkpoint's tensors as written (model, then adam.m.*, adam.v.*), for forging files. */
function tensorsOf(ck: CheckpointFile): Map<string, TensorToWrite> {
  const t = new Map<string, TensorToWrite>();
  for (const [k, v] of ck.model) t.set(k, { data: v.data.slice(), shape: v.shape });
  for (const [k, v] of ck.m) t.set(ADAM_M + k, { data: v.data.slice(), shape: v.shape });
  for (const [k, v] of ck.v) t.set(ADAM_V + k, { data: v.data.slice(), shape: v.shape });
  return t;
}

/** The checkpoint as a version-1 file (before the integrity hash), optionally with one weight changed. */
async function writeVersion1(from: string, to: string, edit?: (t: Map<string, TensorToWrite>) => void): Promise<void> {
  const ck = await readCheckpoint(from);
  const t = tensorsOf(ck);
  edit?.(t);
  await writeFile(to, writeSafetensors(t, { format: 'pt', [CHECKPOINT_KEY]: JSON.stringify({ ...ck.meta, version: 1 }) }));
}

/** `perceptual ARGS...` in a child process. */
function cli(args: string[]): { code: number | null; out: string } {
  const r = spawnSync('npx', ['tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** A PID that no longer runs: a child process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  expect(r.status).toBe(0);
  return r.pid!;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'train-safety-'));
  images = join(root, 'images');
  await writeTinyImages(images);
});

describe('item 4: non-finite weights and moments', () => {
  it('a finite-loss step that makes the weights Inf/NaN: the final checkpoint is refused naming the tensor; the step-2 one stays, byte for byte', async () => {
    const out = fresh('blowup');
    const a = await setup(out, { steps: 3, checkpointEvery: 2 });
    const path = join(out, CHECKPOINT_FILE);
    let step2: Buffer | null = null;
    const err = (await train({
      ...a.opts,
      loss: blowUpAt(a.model, 3),
      onCheckpoint: async ({ step }) => void (step === 2 && (step2 = await readFile(path))),
    }).catch((e: unknown) => e)) as TrainingStoppedError;
    // Before: status 'completed' and a step-3 checkpoint with every weight NaN/Inf.
    expect(err).toBeInstanceOf(TrainingStoppedError);
    expect(err).toMatchObject({ step: 3, kind: 'state', term: 'c1.weight', checkpointStep: 2, checkpoint: path });
    expect(err.message).toMatch(
      new RegExp(`^training stopped at step 3: the weights or Adam moments are not finite: tensor c1\\.weight holds NaN/Inf \\(\\d+ of 108 values, first .* at index \\d+\\), and \\d+ more tensors do; not saved; the last good checkpoint \\(step 2\\) is at ${path.replace(/[.\\/]/g, '\\$&')}$`),
    );
    expect(await readFile(path)).toEqual(step2);
    expect((await readCheckpoint(path)).meta.step).toBe(2);
    expect(await logSteps(out)).toEqual([1, 2, 3]); // step 3 ran, with a finite loss: the log says so
    expect(await readdir(out)).toEqual(['checkpoint.safetensors', 'loss.jsonl', 'loss.svg']); // no temp file, no lock
  });

  it('resuming a good step-2 checkpoint with lr 1e39 does not overwrite it; the run is then resumed with a sane lr', async () => {
    const out = fresh('resume-blowup');
    const good = await setup(out, { steps: 2, checkpointEvery: 1 });
    await train(good.opts);
    const path = join(out, CHECKPOINT_FILE);
    const before = await readFile(path);
    const bad = await setup(out, { steps: 3, checkpointEvery: 1, resume: true }, 9);
    const err = (await train({ ...bad.opts, loss: blowUpAt(bad.model, 3) }).catch((e: unknown) => e)) as TrainingStoppedError;
    // Before: the step-3 checkpoint replaced the step-2 one, full of NaN/Inf, and was called the last good one.
    expect(err).toBeInstanceOf(TrainingStoppedError);
    expect(err.message).toMatch(/^training stopped at step 3: the weights or Adam moments are not finite: tensor .*; the last good checkpoint \(step 2\) is at /);
    expect(err.checkpointStep).toBe(2);
    expect(await readFile(path)).toEqual(before);
    const again = await setup(out, { steps: 3, resume: true }, 9);
    expect(await train(again.opts)).toMatchObject({ step: 3, status: 'completed', resumedFrom: 2 });
    expect((await readCheckpoint(path)).meta.step).toBe(3);
  });

  it('a version-1 checkpoint holding NaN (as written before this check) is refused on resume naming the tensor; nothing is changed', async () => {
    const out = fresh('v1-nan');
    const a = await setup(out, { steps: 2 });
    await train(a.opts);
    const path = join(out, CHECKPOINT_FILE);
    await writeVersion1(path, path, (t) => void (t.get(ADAM_V + 'c2.bias')!.data[1] = Infinity));
    const files = await snapshot(out);
    const b = await setup(out, { steps: 4, resume: true }, 5);
    const w = await weights(b.model);
    const err = (await train(b.opts).catch((e: unknown) => e)) as Error;
    b.data.close();
    // Before: resumed, and the NaN spread from Adam's moments into the weights at the first step.
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toBe(`${path}: refusing to load non-finite weights: tensor adam.v.c2.bias holds NaN/Inf (1 of 3 values, first Infinity at index 1)`);
    expect(await weights(b.model)).toEqual(w);
    expect(await snapshot(out)).toEqual(files);
  });

  it('style and SR model files with a NaN/Inf weight are refused on save and on load, naming the tensor', async () => {
    const r = rng(3);
    const style = new TransformerNet(gpu(), { variant: 'paper', norm: 'instance', width: 4, rand: r });
    const sr = new SRNet(gpu(), { scale: 4, width: 4, blocks: 1, rand: r });
    const file = { file: 'bad.safetensors' };
    const cases = [
      { net: style as Module, name: 'res2.conv1.weight', save: () => saveTransformerNet(style), load: (t: Tensors) => transformerNetFromTensors(gpu(), t, {}, file) },
      { net: sr as Module, name: 'bn_up1.weight', save: () => saveSRNet(sr), load: (t: Tensors) => srNetFromTensors(gpu(), t, {}, file) },
    ];
    for (const { net, name, save, load } of cases) {
      const sd: Tensors = new Map();
      for (const [k, t] of net.stateDict()) sd.set(k, { data: await t.data(), shape: t.shape });
      sd.get(name)!.data[2] = NaN;
      // Load: the tensors as read from a file. Before: a network that outputs NaN (a flat colour once clamped).
      expect(() => load(sd)).toThrow(NonFiniteTensorError);
      expect(() => load(sd)).toThrow(`bad.safetensors: refusing to load non-finite weights: tensor ${name} holds NaN/Inf (1 of ${sd.get(name)!.data.length} values, first NaN at index 2)`);
      // Save: the network itself holding it. Before: written.
      net.loadStateDict(sd);
      await expect(save()).rejects.toThrow(`refusing to save non-finite weights: tensor ${name} holds NaN/Inf`);
      net.dispose();
    }
  });
});

describe('item 5: one run per output folder', () => {
  it('a second run into a folder in use is refused naming the folder and the owner PID; the first run is unaffected', async () => {
    const out = fresh('two-runs');
    const a = await setup(out, { steps: 6, checkpointEvery: 2 });
    let entered!: () => void;
    const inStep2 = new Promise<void>((r) => (entered = r));
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const base = lossOf(a.model);
    const runA = train({
      ...a.opts,
      loss: async (ctx) => {
        if (ctx.step === 2) {
          entered();
          await gate;
        }
        return base(ctx);
      },
    });
    await inStep2;
    const b = await setup(out, { steps: 6, overwrite: true }, 7);
    const err = (await train(b.opts).catch((e: unknown) => e)) as OutDirLockedError;
    b.data.close();
    open();
    // Before: both ran; loss.jsonl held both runs' lines and the last to finish owned the checkpoint.
    expect(err).toBeInstanceOf(OutDirLockedError);
    expect(err.message).toMatch(new RegExp(`^train: ${out.replace(/[.\\/]/g, '\\$&')} is in use by another training run \\(PID ${process.pid}, since [-\\dT:.Z]+; lock .*${LOCK_FILE}\\)$`));
    expect(await runA).toMatchObject({ step: 6, status: 'completed' });
    expect(await logSteps(out)).toEqual([1, 2, 3, 4, 5, 6]);
    const ck = await readCheckpoint(join(out, CHECKPOINT_FILE));
    const live = await weights(a.model);
    for (const [k, t] of ck.model) expect(live.get(k)).toEqual(new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length));
    expect(existsSync(join(out, LOCK_FILE))).toBe(false); // released
  });

  it("the lock of a process that no longer runs is taken over; another host's lock is refused and left alone", async () => {
    const out = fresh('stale-lock');
    await mkdir(out);
    const pid = deadPid();
    await writeFile(join(out, LOCK_FILE), JSON.stringify({ pid, host: hostname(), since: '2020-01-01T00:00:00.000Z' }));
    const logs: string[] = [];
    const a = await setup(out, { steps: 2, onLog: (m) => logs.push(m) });
    expect(await train(a.opts)).toMatchObject({ step: 2, status: 'completed' });
    expect(logs).toContain(`took over the lock of PID ${pid} in ${out} (that process no longer runs)`);
    expect(existsSync(join(out, LOCK_FILE))).toBe(false);

    const other = JSON.stringify({ pid: 4242, host: 'elsewhere.example', since: '2020-01-01T00:00:00.000Z' });
    await writeFile(join(out, LOCK_FILE), other);
    const files = await snapshot(out);
    const b = await setup(out, { steps: 4, resume: true });
    await expect(train(b.opts)).rejects.toThrow(`(PID 4242 on host elsewhere.example, since 2020-01-01T00:00:00.000Z; lock ${join(out, LOCK_FILE)}); if that run has ended, delete ${join(out, LOCK_FILE)}`);
    b.data.close();
    expect(await snapshot(out)).toEqual(files);
  });
});

describe('item 6: integrity, temp files, overwrite', () => {
  let done: string; // a finished 4-step run (checkpoint at step 4)
  beforeAll(async () => {
    done = fresh('done');
    const a = await setup(done, { steps: 4, checkpointEvery: 2 });
    await train(a.opts);
  }, 60_000);
  const copyDone = async (name: string) => {
    const out = fresh(name);
    await cp(done, out, { recursive: true });
    return out;
  };

  it('a checkpoint with one flipped data byte, or with its step edited, is refused on resume naming the file; nothing is changed', async () => {
    for (const tamper of ['flip', 'step'] as const) {
      const out = await copyDone(tamper);
      const path = join(out, CHECKPOINT_FILE);
      const bytes = await readFile(path);
      if (tamper === 'flip') bytes[bytes.length - 5] ^= 0x10;
      else {
        const at = bytes.indexOf('\\"step\\":4,');
        expect(at).toBeGreaterThan(0);
        bytes.write('\\"step\\":9,', at, 'latin1');
      }
      await writeFile(path, bytes);
      const files = await snapshot(out);
      const b = await setup(out, { steps: 12, resume: true }, 8);
      const err = (await train(b.opts).catch((e: unknown) => e)) as Error;
      b.data.close();
      // Before: resumed (from a weight with a flipped bit, or "from step 9").
      expect(err).toBeInstanceOf(CheckpointError);
      expect(err.message).toBe(`${path}: integrity check failed: its tensors or metadata are not what was written (SHA-256 mismatch); the file was damaged or edited`);
      expect(await snapshot(out)).toEqual(files); // the log is not cut back, the checkpoint not replaced
    }
  });

  it('a new file that fails verification as read back from its temp file does not replace the old one (and leaves no temp file)', async () => {
    const out = await copyDone('verify');
    const path = join(out, CHECKPOINT_FILE);
    const old = await readFile(path);
    let seen: Uint8Array | null = null;
    const verify = (b: Uint8Array) => {
      seen = b;
      throw new Error('does not verify');
    };
    await expect(writeFileAtomic(path, new Uint8Array([1, 2, 3]), { verify })).rejects.toThrow('does not verify');
    expect(seen).toEqual(new Uint8Array([1, 2, 3]));
    expect(await readFile(path)).toEqual(old);
    expect(await readdir(out)).toEqual(['checkpoint.safetensors', 'loss.jsonl', 'loss.svg']);
  });

  it('a version-1 checkpoint (no hash, written before) is resumed with a warning; the next checkpoint carries the hash', async () => {
    const out = await copyDone('v1');
    const path = join(out, CHECKPOINT_FILE);
    await writeVersion1(path, path);
    expect(readSafetensors(await readFile(path)).metadata[CHECKPOINT_HASH_KEY]).toBeUndefined();
    const logs: string[] = [];
    const b = await setup(out, { steps: 5, resume: true, onLog: (m) => logs.push(m) }, 8);
    expect(await train(b.opts)).toMatchObject({ step: 5, resumedFrom: 4 });
    expect(logs[0]).toBe(`${path}: a version-1 checkpoint (written before checkpoints carried an integrity hash): loaded unverified`);
    const ck = await readCheckpoint(path);
    expect(ck).toMatchObject({ verified: true, meta: { version: 2, step: 5 } });
  });

  it('temp files of writes killed mid-way (dead PID) are removed at the next start; a live writer’s and other files are kept', async () => {
    const out = await copyDone('tmp');
    const dead = deadPid();
    await mkdir(join(out, 'samples'));
    const stale = [`.checkpoint.safetensors.${dead}.k3j2h1g0.tmp`, `.loss.jsonl.${dead}.a1.tmp`, join('samples', `.a-step4.png.${dead}.x.tmp`)];
    const kept = [`.model.safetensors.${process.pid}.zzzz0000.tmp`, '.notes.tmp', `notes.${dead}.abc.tmp`];
    for (const f of [...stale, ...kept]) await writeFile(join(out, f), 'partial');
    const logs: string[] = [];
    const b = await setup(out, { steps: 6, resume: true, onLog: (m) => logs.push(m) }, 8);
    expect(await train(b.opts)).toMatchObject({ step: 6, resumedFrom: 4 });
    // Before: every .tmp file stayed.
    expect(logs).toContain(`removed 3 temporary files left by an interrupted write in ${out}: ${stale.join(', ')}`);
    expect((await readdir(out)).sort()).toEqual([...kept, 'checkpoint.safetensors', 'loss.jsonl', 'loss.svg', 'samples'].sort());
    expect(await readdir(join(out, 'samples'))).toEqual([]);
  });

  it('--overwrite keeps the previous run whole until its first checkpoint: a failure before it puts everything back', async () => {
    const out = await copyDone('overwrite-fail');
    await writeFile(join(out, 'model.safetensors'), 'the previous model');
    await mkdir(join(out, 'samples'));
    await writeFile(join(out, 'samples', 'a-step4.png'), 'a sample');
    const files = await snapshot(out);
    const logs: string[] = [];
    const b = await setup(out, { steps: 10, checkpointEvery: 5, overwrite: true, onLog: (m) => logs.push(m) }, 8);
    const loss = lossOf(b.model, (s) => (s === 3 ? { term: 'mse', value: NaN } : null));
    let during: string[] = [];
    const onProgress = (p: { step: number }) => void (p.step === 2 && (during = readdirSync(join(out, PREVIOUS_RUN_DIR), { recursive: true }) as string[]));
    const err = await train({ ...b.opts, loss, onProgress }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingStoppedError);
    // Before: loss.jsonl held only the new run's lines and loss.svg its plot, beside the old step-4 checkpoint.
    expect(await snapshot(out)).toEqual(files);
    expect(during.filter((f) => f.includes('.')).sort()).toEqual(Object.keys(files).sort()); // aside while it ran
    expect(logs.at(-1)).toBe("put the previous run's files back (checkpoint.safetensors, loss.jsonl, loss.svg, model.safetensors, samples): this run failed before its first checkpoint");
  });

  it('--overwrite deletes the previous run at its first checkpoint; one killed before that is put back by the next start', async () => {
    const out = await copyDone('overwrite-ok');
    const logs: string[] = [];
    const b = await setup(out, { steps: 3, checkpointEvery: 2, overwrite: true, onLog: (m) => logs.push(m) }, 8);
    const seen: boolean[] = [];
    await train({ ...b.opts, onProgress: () => void seen.push(existsSync(join(out, PREVIOUS_RUN_DIR))) });
    expect(seen).toEqual([true, true, false]); // aside at steps 1-2, deleted by the step-2 checkpoint (after its progress)
    expect(await logSteps(out)).toEqual([1, 2, 3]);
    expect(await readdir(out)).toEqual(['checkpoint.safetensors', 'loss.jsonl', 'loss.svg']);

    // A run killed after setting the previous run aside, before its first checkpoint: what its folder holds then.
    const killed = await copyDone('overwrite-killed');
    const files = await snapshot(killed);
    await mkdir(join(killed, PREVIOUS_RUN_DIR));
    for (const f of ['checkpoint.safetensors', 'loss.jsonl', 'loss.svg']) await rename(join(killed, f), join(killed, PREVIOUS_RUN_DIR, f));
    await writeFile(join(killed, 'loss.jsonl'), '{"step":1,"time":0.1,"total":1,"mse":1,"tv":0}\n');
    const log2: string[] = [];
    const c = await setup(killed, { steps: 4, resume: true, onLog: (m) => log2.push(m) }, 8);
    expect(await train(c.opts)).toMatchObject({ step: 4, resumedFrom: 4 });
    expect(log2[0]).toBe(`put the previous run's files back from ${join(killed, PREVIOUS_RUN_DIR)} (checkpoint.safetensors, loss.jsonl, loss.svg): the run that set them aside was interrupted before its first checkpoint`);
    expect(Object.keys(await snapshot(killed))).toEqual(Object.keys(files));
    expect(await logSteps(killed)).toEqual([1, 2, 3, 4]);
  });
});

describe('the CLI (a generated SqueezeNet 1.1 as the loss network)', () => {
  let data: string;
  const style = () => join(data, 'img0.png');
  const tiny = () => ['--style', style(), '--data', data, '--width', '4', '--size', '24', '--batch', '1', '--loss-net', 'squeezenet1_1', '--loss-weights', SQUEEZENET];
  beforeAll(async () => {
    data = fresh('style-data');
    await mkdir(data);
    const r = rng(11);
    for (let i = 0; i < 3; i++) await writeImage(join(data, `img${i}.png`), createImage(24, 24, Float32Array.from({ length: 3 * 24 * 24 }, () => 255 * r())));
  });

  it('train-style --lr 1e39 exits 1 naming the tensor and writes no checkpoint or model; stylize refuses a NaN model (exit 1, no image)', async () => {
    const out = fresh('cli-lr');
    const r = cli(['train-style', ...tiny(), '--out', out, '--steps', '1', '--lr', '1e39']);
    // Before: "done at step 1", exit 0, every weight of model.safetensors NaN/Inf.
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/training stopped at step 1: the weights or Adam moments are not finite: tensor conv1\.weight holds NaN\/Inf .*; not saved; no checkpoint has been written yet/);
    expect(r.out).not.toMatch(/done at step/);
    expect((await readdir(out)).sort()).toEqual(['loss.jsonl', 'loss.svg']);

    const net = new TransformerNet(gpu(), { variant: 'paper', norm: 'instance', width: 4, rand: rng(2) });
    const t = new Map<string, TensorToWrite>();
    for (const [k, v] of net.stateDict()) t.set(k, { data: await v.data(), shape: v.shape });
    net.dispose();
    t.get('deconv1.weight')!.data.fill(NaN);
    const model = join(out, 'nan.safetensors');
    await writeFile(model, writeSafetensors(t, { arch: 'transformer-net', variant: 'paper', norm: 'instance', width: '4' }));
    const styled = fresh('cli-styled');
    const s = cli(['stylize', '--model', model, style(), '--out', styled]);
    // Before: a flat-colour image, exit 0.
    expect(s.code).toBe(1);
    expect(s.out).toContain(`${model}: refusing to load non-finite weights: tensor deconv1.weight holds NaN/Inf`);
    expect(existsSync(styled) ? await readdir(styled) : []).toEqual([]);
  });

  it('train-style into a folder locked by a live process exits 1 naming its PID; --overwrite that fails before its first checkpoint leaves the old run whole', async () => {
    const out = fresh('cli-locked');
    await mkdir(out);
    await writeFile(join(out, CHECKPOINT_FILE), 'the running job’s checkpoint');
    await writeFile(join(out, 'loss.jsonl'), '{"step":1,"time":1,"total":1}\n');
    await writeFile(join(out, LOCK_FILE), JSON.stringify({ pid: process.pid, host: hostname(), since: '2020-01-01T00:00:00.000Z' }));
    const files = await snapshot(out);
    const r = cli(['train-style', ...tiny(), '--out', out, '--steps', '2', '--overwrite']);
    // Before: both runs trained into the folder and exited 0.
    expect(r.code).toBe(1);
    expect(r.out).toContain(`train: ${out} is in use by another training run (PID ${process.pid}, since 2020-01-01T00:00:00.000Z; lock ${join(out, LOCK_FILE)})`);
    expect(await snapshot(out)).toEqual(files);

    await rm(join(out, LOCK_FILE));
    const before = await snapshot(out);
    const o = cli(['train-style', ...tiny(), '--out', out, '--steps', '1', '--overwrite', '--lr', '1e39']);
    // Before: the old loss log was emptied at the start, the old checkpoint left beside the new log.
    expect(o.code).toBe(1);
    expect(o.out).toContain("put the previous run's files back (checkpoint.safetensors, loss.jsonl): this run failed before its first checkpoint");
    expect(await snapshot(out)).toEqual(before);
  });

  it('train-style --resume from a checkpoint with a flipped byte exits 1 naming the file; the checkpoint and log are kept', async () => {
    const out = fresh('cli-flip');
    await trainStyle(gpu(), { style: style(), data, outDir: out, width: 4, size: 24, batchSize: 1, steps: 2, lossNet: 'squeezenet1_1', lossWeights: SQUEEZENET });
    const path = join(out, CHECKPOINT_FILE);
    const bytes = await readFile(path);
    bytes[bytes.length - 100] ^= 0x40;
    await writeFile(path, bytes);
    const files = await snapshot(out);
    const r = cli(['train-style', ...tiny(), '--out', out, '--steps', '3', '--resume']);
    // Before: resumed and finished, exit 0.
    expect(r.code).toBe(1);
    expect(r.out).toContain(`${path}: integrity check failed`);
    expect(await snapshot(out)).toEqual(files);
  });
});
