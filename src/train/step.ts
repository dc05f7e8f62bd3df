// One optimisation step, the part of training that needs no files (the trainer in trainer.ts and the in-page
// trainer in src/web use it): in a tidy scope, loss → backward(total) → ONE readback of all terms (concatenated)
// → finite check → optimizer.step() → zeroGrad. The readback comes after backward is recorded, so the GPU runs
// forward+backward while we wait, and a NaN/Inf is caught BEFORE the optimizer applies it.
// RecordedStep does the same with the forward and backward captured on its first step (gpu.capture.start) and
// replayed on the next ones: no graph building, shape checks or allocation in JS, the same kernels on the same
// buffers (so bit for bit the same results); only the batch is written, the terms read and Adam run per step.
import { keep, noGrad, Tensor, tidyAsync } from '../autograd/tensor.js';
import { fmtShape } from '../gpu/errors.js';
import type { Capture } from '../gpu/index.js';
import { concat } from '../layers/spatial.js';
import type { Adam } from './adam.js';
import type { BatchData } from './dataset.js';

/** Named scalar ([1]) loss terms; `total` is the one differentiated, the others are logged. */
export type LossTerms = { total: Tensor } & Record<string, Tensor>;

/** A loss term was NaN or infinite: the step was not applied and the gradients were cleared. */
export class NonFiniteLossError extends Error {
  override name = 'NonFiniteLossError';
  constructor(
    readonly term: string,
    readonly value: number,
  ) {
    super(`loss term '${term}' is ${Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity'}`);
  }
}

/** Reads every term with one readback (the [1] terms concatenated). */
async function readTerms(terms: [string, Tensor][]): Promise<Record<string, number>> {
  const all = terms.length === 1 ? terms[0][1] : noGrad(() => concat(terms.map(([, t]) => t), 0));
  const v = await all.data();
  return Object.fromEntries(terms.map(([k], i) => [k, v[i]]));
}

function checkTerms(terms: LossTerms, who: string): [string, Tensor][] {
  if (!terms || !(terms.total instanceof Tensor)) throw new Error(`${who}: the loss function must return named scalar tensors including 'total'`);
  const list = Object.entries(terms);
  for (const [k, t] of list) {
    if (!(t instanceof Tensor) || t.size !== 1) {
      throw new Error(`${who}: loss term '${k}' must be a scalar tensor of shape [1], got ${t instanceof Tensor ? fmtShape(t.shape) : typeof t}`);
    }
  }
  return list;
}

/** Throws NonFiniteLossError naming the first bad term (a component rather than the total when both are bad). */
function checkFinite(v: Record<string, number>): void {
  const names = Object.keys(v);
  const bad = [...names.filter((k) => k !== 'total'), ...names.filter((k) => k === 'total')].find((k) => !Number.isFinite(v[k]));
  if (bad) throw new NonFiniteLossError(bad, v[bad]);
}

/** Runs one step and returns the terms' values; tensors the loss creates are freed when it returns. */
export async function optimizationStep(optimizer: Adam, loss: () => LossTerms | Promise<LossTerms>, who = 'train'): Promise<Record<string, number>> {
  return tidyAsync(async () => {
    const list = checkTerms(await loss(), who);
    list.find(([k]) => k === 'total')![1].backward();
    const v = await readTerms(list);
    try {
      checkFinite(v);
    } catch (e) {
      optimizer.zeroGrad();
      throw e;
    }
    optimizer.step();
    optimizer.zeroGrad();
    return v;
  });
}

/** The batches a recorded loss takes (each call the next one, as a [B,3,S,S] tensor). */
export type BatchFn = () => Promise<Tensor>;

/** optimizationStep with the forward and backward recorded on the first run and replayed on the next ones.
 *  The loss must build the same graph every step from the batches it takes through `batch` (and constants):
 *  no randomness, no CPU data uploaded by itself, no per-step values other than the learning rate. */
export class RecordedStep {
  private capture: Capture | null = null;
  /** The batch tensors of the capture, rewritten before each replay. */
  private inputs: Tensor[] = [];
  private names: string[] = [];
  /** The terms concatenated: written by every replay, read after it. */
  private values: Tensor | null = null;
  /** The gradients the captured backward writes, one per parameter (null: the loss does not reach it). */
  private grads: (Tensor | null)[] = [];
  /** The parameters' buffers the capture reads: a parameter given new storage (assign) means recording again. */
  private paramBuffers: GPUBuffer[] = [];

  constructor(
    readonly optimizer: Adam,
    readonly who = 'train',
  ) {}

  /** Whether the next run replays (a capture exists). */
  get recorded(): boolean {
    return this.capture !== null;
  }

  /** GPU commands replayed per step (0 before the first run). */
  get dispatches(): number {
    return this.capture?.dispatches ?? 0;
  }

  async run(loss: (batch: BatchFn) => LossTerms | Promise<LossTerms>, nextBatch: () => Promise<BatchData>): Promise<Record<string, number>> {
    const opt = this.optimizer;
    const gpu = opt.params[0].gpu;
    if (this.capture && opt.params.some((p, i) => p.raw.buffer !== this.paramBuffers[i])) this.dispose();
    if (!this.capture) await this.record(loss, nextBatch);
    else {
      for (const t of this.inputs) {
        const b = await nextBatch();
        if (b.shape.join() !== t.shape.join()) throw new Error(`${this.who}: a recorded step takes batches of ${fmtShape(t.shape)}, got ${fmtShape(b.shape)}`);
        gpu.write(t.raw, b.data);
      }
      gpu.capture.replay(this.capture);
    }
    const read = await this.values!.data();
    const v = Object.fromEntries(this.names.map((k, i) => [k, read[i]]));
    checkFinite(v);
    // The gradients are the capture's: lent to the parameters for this update only.
    opt.params.forEach((p, i) => (p.grad = this.grads[i]));
    try {
      opt.step();
    } finally {
      for (const p of opt.params) p.grad = null;
    }
    return v;
  }

  private async record(loss: (batch: BatchFn) => LossTerms | Promise<LossTerms>, nextBatch: () => Promise<BatchData>): Promise<void> {
    const opt = this.optimizer;
    const gpu = opt.params[0].gpu;
    opt.zeroGrad();
    gpu.capture.start();
    try {
      await tidyAsync(async () => {
        const batch: BatchFn = async () => {
          const b = await nextBatch();
          // The batch is an input of the capture, not a constant of it: uploaded outside the recording.
          const t = gpu.capture.uncaptured(() => keep(Tensor.from(gpu, b.data, b.shape)));
          this.inputs.push(t);
          return t;
        };
        const list = checkTerms(await loss(batch), this.who);
        list.find(([k]) => k === 'total')![1].backward();
        this.names = list.map(([k]) => k);
        this.values = keep(list.length === 1 ? list[0][1] : noGrad(() => concat(list.map(([, t]) => t), 0)));
      });
      this.capture = gpu.capture.end();
    } catch (e) {
      gpu.capture.abort();
      this.dispose();
      throw e;
    }
    this.grads = opt.params.map((p) => p.grad);
    this.paramBuffers = opt.params.map((p) => p.raw.buffer);
    for (const p of opt.params) p.grad = null;
  }

  /** Frees the capture with its buffers, inputs and gradients. */
  dispose(): void {
    this.capture?.dispose();
    this.capture = null;
    for (const t of [...this.inputs, ...this.grads]) t?.dispose();
    this.values?.dispose();
    this.values = null;
    this.inputs = [];
    this.grads = [];
  }
}
