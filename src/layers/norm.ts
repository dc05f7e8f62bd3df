// Batch norm and instance norm (PyTorch BatchNorm2d / InstanceNorm2d semantics), differentiable w.r.t.
// input, weight and bias, and their modules.
import type { Tensor } from '../autograd/tensor.js';
import type { Gpu, RawTensor } from '../gpu/index.js';
import { axpyInPlace, fillTensor } from '../kernels/elementwise.js';
import { mixRowsBackward, mixRowsForward } from '../kernels/mix-rows.js';
import {
  groupsOf,
  normApply,
  normBackwardInput,
  normBackwardParams,
  normBackwardSums,
  normCoef,
  normStats,
  updateRunningStats,
  type Groups,
} from '../kernels/norm.js';
import { check, checkRank, recordOp } from './check.js';
import { Module } from './module.js';

type Named = Record<string, Tensor>;

function checkPerChannel(op: string, x: Tensor, named: Record<string, Tensor | null>): Named {
  const all: Named = { x };
  for (const [k, t] of Object.entries(named)) if (t) all[k] = t;
  checkRank(op, 'x', x, 4);
  const C = x.shape[1];
  for (const [k, t] of Object.entries(all)) {
    if (k === 'x') continue;
    check(t.shape.length === 1 && t.shape[0] === C, op, `${k} must have shape [C] with C = ${C} channels of x`, all);
  }
  return all;
}

/** Forward + record shared by both ops: `coef` holds per-group (mean, invstd, scale, bias) and is freed
 *  with the graph node; `batchStats` says whether the gradient flows through the statistics. */
function normalize(op: string, x: Tensor, weight: Tensor | null, bias: Tensor | null, q: Groups, coef: RawTensor, batchStats: boolean): Tensor {
  const gpu = x.gpu;
  const y = normApply(gpu, x.raw, coef, q, op);
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  return recordOp(
    op,
    inputs,
    y,
    (dy, needs) => {
      const [nx, nw, nb] = [needs[0], weight ? needs[1] : false, bias ? needs[weight ? 2 : 1] : false];
      const sums = batchStats || nw || nb ? normBackwardSums(gpu, x.raw, dy, coef, q) : null;
      const dx = nx ? normBackwardInput(gpu, x.raw, dy, coef, batchStats ? sums : null, q, op) : null;
      let dw: RawTensor | null = null;
      let db: RawTensor | null = null;
      if (nw || nb) {
        const g = normBackwardParams(gpu, sums!, q, op);
        if (nw) dw = g.dw;
        else gpu.release(g.dw);
        if (nb) db = g.db;
        else gpu.release(g.db);
      }
      if (sums) gpu.release(sums);
      return [dx, ...(weight ? [dw] : []), ...(bias ? [db] : [])];
    },
    () => gpu.release(coef),
  );
}

export interface BatchNormOptions {
  training: boolean;
  /** Running statistics update factor (PyTorch default 0.1). */
  momentum?: number;
  eps?: number;
}

/** PyTorch F.batch_norm on NCHW input. Training: normalises with the batch statistics per channel over
 *  (N,H,W) (biased variance) and updates runningMean/runningVar in place (unbiased variance); eval:
 *  normalises with the running statistics. weight/bias may be null (affine=False). */
export function batchNorm2d(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  runningMean: Tensor,
  runningVar: Tensor,
  opts: BatchNormOptions,
): Tensor {
  const op = 'batchNorm2d';
  const all = checkPerChannel(op, x, { weight, bias, running_mean: runningMean, running_var: runningVar });
  const { training, momentum = 0.1, eps = 1e-5 } = opts;
  const q = groupsOf(x.shape, true);
  if (training) check(q.cnt > 1, op, 'expected more than 1 value per channel when training', all);
  const gpu = x.gpu;
  let coef: RawTensor;
  if (training) {
    const s = normStats(gpu, x.raw, q);
    updateRunningStats(gpu, runningMean.raw, runningVar.raw, s.mean, s.var, momentum, q.cnt);
    coef = normCoef(gpu, s.mean, s.var, weight?.raw ?? null, bias?.raw ?? null, q, eps);
    gpu.release(s.mean);
    gpu.release(s.var);
  } else {
    coef = normCoef(gpu, runningMean.raw, runningVar.raw, weight?.raw ?? null, bias?.raw ?? null, q, eps);
  }
  return normalize(op, x, weight, bias, q, coef, training);
}

export interface InstanceNormOptions {
  eps?: number;
}

/** PyTorch F.instance_norm on NCHW input (no running statistics): each (n, c) plane is normalised with
 *  its own mean and biased variance, then scaled by weight[c] and shifted by bias[c] when given. */
export function instanceNorm2d(x: Tensor, weight: Tensor | null, bias: Tensor | null, opts: InstanceNormOptions = {}): Tensor {
  const op = 'instanceNorm2d';
  const all = checkPerChannel(op, x, { weight, bias });
  const q = groupsOf(x.shape, false);
  check(q.cnt > 1, op, 'expected more than 1 spatial element per plane', all);
  const gpu = x.gpu;
  const s = normStats(gpu, x.raw, q);
  const coef = normCoef(gpu, s.mean, s.var, weight?.raw ?? null, bias?.raw ?? null, q, opts.eps ?? 1e-5);
  gpu.release(s.mean);
  gpu.release(s.var);
  return normalize(op, x, weight, bias, q, coef, true);
}

export interface BatchNorm2dOptions {
  eps?: number;
  momentum?: number;
  affine?: boolean;
}

/** nn.BatchNorm2d (track_running_stats=True). State: weight, bias (if affine), running_mean,
 *  running_var, num_batches_tracked (incremented on the GPU by each training forward). */
export class BatchNorm2d extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly running_mean: Tensor;
  readonly running_var: Tensor;
  readonly num_batches_tracked: Tensor;
  readonly eps: number;
  readonly momentum: number;

  constructor(gpu: Gpu, readonly numFeatures: number, opts: BatchNorm2dOptions = {}) {
    super(gpu);
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    const affine = opts.affine ?? true;
    this.weight = affine ? this.param('weight', new Float32Array(numFeatures).fill(1), [numFeatures]) : null;
    this.bias = affine ? this.param('bias', new Float32Array(numFeatures), [numFeatures]) : null;
    this.running_mean = this.buffer('running_mean', new Float32Array(numFeatures), [numFeatures]);
    this.running_var = this.buffer('running_var', new Float32Array(numFeatures).fill(1), [numFeatures]);
    this.num_batches_tracked = this.buffer('num_batches_tracked', [0], [1]);
  }

  forward(x: Tensor): Tensor {
    const y = batchNorm2d(x, this.weight, this.bias, this.running_mean, this.running_var, {
      training: this.training,
      momentum: this.momentum,
      eps: this.eps,
    });
    if (this.training) {
      const one = fillTensor(this.gpu, [1], 1);
      axpyInPlace(this.gpu, this.num_batches_tracked.raw, one);
      this.gpu.release(one);
    }
    return y;
  }
}

export interface InstanceNorm2dOptions {
  eps?: number;
  /** Learnable per-channel weight and bias. Default true here (Johnson et al.'s transformation network);
   *  PyTorch's nn.InstanceNorm2d defaults to false. */
  affine?: boolean;
}

/** nn.InstanceNorm2d (track_running_stats=False): same computation in training and eval. */
export class InstanceNorm2d extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly eps: number;

  constructor(gpu: Gpu, readonly numFeatures: number, opts: InstanceNorm2dOptions = {}) {
    super(gpu);
    this.eps = opts.eps ?? 1e-5;
    const affine = opts.affine ?? true;
    this.weight = affine ? this.param('weight', new Float32Array(numFeatures).fill(1), [numFeatures]) : null;
    this.bias = affine ? this.param('bias', new Float32Array(numFeatures), [numFeatures]) : null;
  }

  forward(x: Tensor): Tensor {
    return instanceNorm2d(x, this.weight, this.bias, { eps: this.eps });
  }
}

/** y[c] = Σ_s w[s]·p[s, c]: a blend of the rows of p [S, C] with constant weights w [S]; differentiable w.r.t. p. */
export function mixRows(p: Tensor, w: Tensor): Tensor {
  const op = 'mixRows';
  check(p.shape.length === 2 && w.shape.length === 1 && w.shape[0] === p.shape[0], op, 'p must be [S, C] and w [S]', { p, w });
  const gpu = p.gpu;
  return recordOp(op, [p], mixRowsForward(gpu, p.raw, w.raw), (dy) => [mixRowsBackward(gpu, dy, w.raw, p.shape[0])]);
}

/**
 * Conditional instance norm (Dumoulin, Shlens & Kudlur 2017, "A Learned Representation for Artistic Style"): instance
 * norm whose γ, β are chosen per style — weight and bias are [S, C], one row per style — and blended by a weight
 * per style ([S], e.g. one-hot in training, any mix at inference). Everything else in the network is shared.
 */
export class ConditionalInstanceNorm2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly eps: number;

  constructor(gpu: Gpu, readonly numFeatures: number, readonly styles: number, opts: InstanceNormOptions = {}) {
    super(gpu);
    if (!(Number.isInteger(styles) && styles >= 1)) throw new Error(`ConditionalInstanceNorm2d: styles must be a positive integer, got ${styles}`);
    this.eps = opts.eps ?? 1e-5;
    this.weight = this.param('weight', new Float32Array(styles * numFeatures).fill(1), [styles, numFeatures]);
    this.bias = this.param('bias', new Float32Array(styles * numFeatures), [styles, numFeatures]);
  }

  /** x normalised, scaled and shifted by the blend `style` [S] of the per-style γ, β. */
  forward(x: Tensor, style: Tensor): Tensor {
    return instanceNorm2d(x, mixRows(this.weight, style), mixRows(this.bias, style), { eps: this.eps });
  }
}
