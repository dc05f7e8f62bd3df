// Training checkpoints: ONE safetensors file with the model's state dict under the model's own names, the Adam
// moments as `adam.m.<param name>` / `adam.v.<param name>`, and JSON metadata (`__metadata__["perceptual.checkpoint"]`)
// holding everything else a run needs to continue exactly: the step, Adam's step and hyper-parameters, the trainer's
// RNG state, the data order, the elapsed time, the loss terms at that step and the free-form training `config`.
// Files are replaced atomically (temp + fsync + rename), so a crash leaves the previous checkpoint intact.
//
// Integrity (version 2): `__metadata__["perceptual.checkpoint.sha256"]` is the SHA-256 of the metadata JSON text and
// every tensor (name, shape, float32 bytes, in name order); it is checked on every read, so a flipped data byte or an
// edited step is refused naming the file. Checkpoints with NaN/Inf weights or moments are neither written nor read.
// A new checkpoint replaces the old one only after it was read back from its temp file and passed both checks.
// Version 1 files (from before the hash) are still read, unverified and with a warning: refusing them would strand
// every run begun before; their weights are still checked for NaN/Inf, and the next checkpoint written is version 2.
import { createHash } from 'node:crypto';
import { fmtShape } from '../gpu/errors.js';
import { readFileBytes, writeFileAtomic } from '../io/files.js';
import { assertFinite, describeNonFinite, nonFiniteTensors } from '../io/finite.js';
import { checkTensors, readSafetensors, writeSafetensors, type LoadedTensor, type TensorToWrite } from '../io/safetensors.js';
import type { Module } from '../layers/module.js';
import type { Adam } from './adam.js';
import type { Rng } from './rng.js';

export const CHECKPOINT_KEY = 'perceptual.checkpoint';
export const CHECKPOINT_HASH_KEY = 'perceptual.checkpoint.sha256';
export const CHECKPOINT_VERSION = 2;
/** The version before the integrity hash: read unverified. */
const UNHASHED_VERSION = 1;

/** A checkpoint that cannot be used here: not a checkpoint, corrupt, or made for a different model or setup. */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

export interface CheckpointMeta {
  version: number;
  /** Optimisation steps completed. */
  step: number;
  adam: { step: number; lr: number; betas: [number, number]; eps: number; weightDecay: number; params: string[] };
  /** The trainer's Rng state (Rng.fromState), or null. */
  rng: number[] | null;
  /** The data source's state (its setState), or null. */
  data: unknown;
  /** Training wall time so far, seconds. */
  elapsedSec: number;
  /** The loss terms of step `step`, or null. */
  losses: Record<string, number> | null;
  /** The training options, free-form (JSON). */
  config: Record<string, unknown>;
  /** ISO 8601 time of writing. */
  savedAt: string;
}

export interface SaveCheckpointOptions {
  model: Module;
  optimizer: Adam;
  step: number;
  rng?: Rng | null;
  data?: { getState(): unknown } | null;
  config?: Record<string, unknown>;
  elapsedSec?: number;
  losses?: Record<string, number> | null;
}

export const ADAM_M = 'adam.m.';
export const ADAM_V = 'adam.v.';

/** The model's name for each optimizer parameter (they must all belong to the model). */
export function optimizerParamNames(model: Module, optimizer: Adam): string[] {
  const byTensor = new Map(model.namedParameters().map(([k, t]) => [t, k]));
  return optimizer.params.map((p, k) => {
    const name = byTensor.get(p);
    if (name === undefined) throw new CheckpointError(`checkpoint: optimizer parameter #${k}${p.name ? ` (${p.name})` : ''} ${fmtShape(p.shape)} is not a parameter of the model`);
    return name;
  });
}

/** SHA-256 (hex) of the metadata text and the tensors (name, shape, bytes; in name order, so layout-independent). */
function checkpointHash(metaText: string, tensors: ReadonlyMap<string, { data: Float32Array; shape: readonly number[] }>): string {
  const h = createHash('sha256').update(metaText);
  for (const name of [...tensors.keys()].sort()) {
    const t = tensors.get(name)!;
    h.update(`\0${name}\0${t.shape.join(',')}\0`).update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return h.digest('hex');
}

/** The bytes of a checkpoint (reads the model and the optimizer state back from the GPU). Throws
 *  NonFiniteTensorError, naming the tensor, when a weight or an Adam moment is NaN or infinite. */
export async function checkpointBytes(o: SaveCheckpointOptions): Promise<Uint8Array> {
  if (!Number.isSafeInteger(o.step) || o.step < 0) throw new CheckpointError(`checkpoint: invalid step ${o.step}`);
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, t] of o.model.stateDict()) {
    if (name.startsWith(ADAM_M) || name.startsWith(ADAM_V)) throw new CheckpointError(`checkpoint: model tensor name '${name}' clashes with the optimizer's 'adam.' names`);
    tensors.set(name, { data: await t.data(), shape: t.shape });
  }
  const names = optimizerParamNames(o.model, o.optimizer);
  const st = await o.optimizer.exportState();
  names.forEach((n, k) => {
    const shape = o.optimizer.params[k].shape;
    tensors.set(ADAM_M + n, { data: st.m[k], shape });
    tensors.set(ADAM_V + n, { data: st.v[k], shape });
  });
  assertFinite(tensors, `checkpoint of step ${o.step}`);
  const opt = o.optimizer;
  const meta: CheckpointMeta = {
    version: CHECKPOINT_VERSION,
    step: o.step,
    adam: { step: st.step, lr: opt.lr, betas: [...opt.betas], eps: opt.eps, weightDecay: opt.weightDecay, params: names },
    rng: o.rng ? o.rng.getState() : null,
    data: o.data ? o.data.getState() : null,
    elapsedSec: o.elapsedSec ?? 0,
    losses: o.losses ?? null,
    config: o.config ?? {},
    savedAt: new Date().toISOString(),
  };
  const metaText = JSON.stringify(meta);
  return writeSafetensors(tensors, { format: 'pt', [CHECKPOINT_KEY]: metaText, [CHECKPOINT_HASH_KEY]: checkpointHash(metaText, tensors) });
}

/** Writes a checkpoint to `path` atomically; the old file is replaced only once the new one was read back from
 *  disk and verified (hash, finite values), so it stays whole until then. */
export async function saveCheckpoint(path: string, o: SaveCheckpointOptions): Promise<void> {
  await writeFileAtomic(path, await checkpointBytes(o), { verify: (written) => void parseCheckpoint(written, `${path} (as written)`) });
}

export interface CheckpointFile {
  meta: CheckpointMeta;
  /** The model's state dict (without the adam.* tensors). */
  model: Map<string, LoadedTensor>;
  /** Adam moments by parameter name. */
  m: Map<string, LoadedTensor>;
  v: Map<string, LoadedTensor>;
  /** Whether its integrity hash was checked (false: a version-1 file, which has none). */
  verified: boolean;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses checkpoint bytes, checking their integrity hash and that every value is finite; `file` names it in errors. */
export function parseCheckpoint(bytes: Uint8Array, file: string): CheckpointFile {
  const st = readSafetensors(bytes, file);
  const text = st.metadata[CHECKPOINT_KEY];
  if (text === undefined) throw new CheckpointError(`${file}: not a training checkpoint (no "${CHECKPOINT_KEY}" metadata); a plain weights file cannot be resumed`);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(text) as CheckpointMeta;
  } catch (e) {
    throw new CheckpointError(`${file}: the checkpoint metadata is not valid JSON (${(e as Error).message})`);
  }
  const a = meta?.adam;
  if (!isObj(meta) || !Number.isSafeInteger(meta.step) || meta.step < 0 || !isObj(a) || !Number.isSafeInteger(a.step) || !Array.isArray(a.params) || !isObj(meta.config)) {
    throw new CheckpointError(`${file}: malformed checkpoint metadata`);
  }
  if (meta.version !== CHECKPOINT_VERSION && meta.version !== UNHASHED_VERSION) {
    throw new CheckpointError(`${file}: checkpoint version ${meta.version} is not supported (expected ${CHECKPOINT_VERSION})`);
  }
  const verified = meta.version === CHECKPOINT_VERSION;
  if (verified) {
    const stored = st.metadata[CHECKPOINT_HASH_KEY];
    if (stored === undefined) throw new CheckpointError(`${file}: the checkpoint has no integrity hash ("${CHECKPOINT_HASH_KEY}"): damaged or edited`);
    if (checkpointHash(text, st.tensors) !== stored) {
      throw new CheckpointError(`${file}: integrity check failed: its tensors or metadata are not what was written (SHA-256 mismatch); the file was damaged or edited`);
    }
  }
  const bad = nonFiniteTensors(st.tensors);
  if (bad.length) throw new CheckpointError(`${file}: refusing to load non-finite weights: ${describeNonFinite(bad[0], bad.length - 1)}`);
  const model = new Map<string, LoadedTensor>();
  const m = new Map<string, LoadedTensor>();
  const v = new Map<string, LoadedTensor>();
  for (const [k, t] of st.tensors) {
    if (k.startsWith(ADAM_M)) m.set(k.slice(ADAM_M.length), t);
    else if (k.startsWith(ADAM_V)) v.set(k.slice(ADAM_V.length), t);
    else model.set(k, t);
  }
  return { meta, model, m, v, verified };
}

export async function readCheckpoint(path: string): Promise<CheckpointFile> {
  let bytes: Uint8Array;
  try {
    bytes = await readFileBytes(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CheckpointError(`cannot read checkpoint '${path}': ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  }
  return parseCheckpoint(bytes, path);
}

export interface LoadCheckpointOptions {
  model: Module;
  /** Restores Adam's moments and step too (its parameters must belong to the model). */
  optimizer?: Adam;
  /** Values the checkpoint's `config` must hold (compared as JSON), e.g. { model: 'style', channels: 32 }. */
  mustMatch?: Record<string, unknown>;
  /** Told when the file could not be verified (a version-1 checkpoint, without integrity hash). */
  onWarning?: (message: string) => void;
}

/**
 * Restores a checkpoint into `model` (and `optimizer`) and returns its metadata. Everything is checked before
 * anything is changed: on any mismatch the model and optimizer are left as they were and the error lists every
 * missing, unexpected and mis-shaped tensor (expected vs found), or the config values that differ.
 */
export async function loadCheckpoint(path: string, o: LoadCheckpointOptions): Promise<CheckpointMeta> {
  const ck = await readCheckpoint(path);
  const { meta } = ck;
  if (!ck.verified) o.onWarning?.(`${path}: a version-${meta.version} checkpoint (written before checkpoints carried an integrity hash): loaded unverified`);
  const diffs = Object.entries(o.mustMatch ?? {})
    .filter(([k, want]) => JSON.stringify(meta.config[k]) !== JSON.stringify(want))
    .map(([k, want]) => `${k}: checkpoint ${JSON.stringify(meta.config[k]) ?? '(unset)'}, this run ${JSON.stringify(want)}`);
  if (diffs.length) throw new CheckpointError(`${path}: the checkpoint was made with a different configuration (${diffs.join('; ')})`);

  const expected = new Map<string, readonly number[]>();
  for (const [k, t] of o.model.stateDict()) expected.set(k, t.shape);
  const names = o.optimizer ? optimizerParamNames(o.model, o.optimizer) : [];
  const found = new Map<string, { shape: readonly number[] }>(ck.model);
  if (o.optimizer) {
    names.forEach((n, k) => {
      expected.set(ADAM_M + n, o.optimizer!.params[k].shape);
      expected.set(ADAM_V + n, o.optimizer!.params[k].shape);
    });
    for (const [k, t] of ck.m) found.set(ADAM_M + k, t);
    for (const [k, t] of ck.v) found.set(ADAM_V + k, t);
  }
  try {
    checkTensors(path, found, expected);
  } catch (e) {
    throw new CheckpointError(`${(e as Error).message} (the checkpoint does not fit this model: was it made for a different one?)`);
  }
  o.model.loadStateDict(ck.model);
  if (o.optimizer) {
    o.optimizer.importState({ step: meta.adam.step, m: names.map((n) => ck.m.get(n)!.data), v: names.map((n) => ck.v.get(n)!.data) });
  }
  return meta;
}
