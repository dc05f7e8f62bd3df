// One optimisation step, the part of training that needs no files (the trainer in trainer.ts and the in-page
// trainer in src/web use it): in a tidy scope, loss → backward(total) → ONE readback of all terms (concatenated)
// → finite check → optimizer.step() → zeroGrad. The readback comes after backward is recorded, so the GPU runs
// forward+backward while we wait, and a NaN/Inf is caught BEFORE the optimizer applies it.
import { noGrad, Tensor, tidyAsync } from '../autograd/tensor.js';
import { fmtShape } from '../gpu/errors.js';
import { concat } from '../layers/spatial.js';
import type { Adam } from './adam.js';

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

/** Runs one step and returns the terms' values; tensors the loss creates are freed when it returns. */
export async function optimizationStep(optimizer: Adam, loss: () => LossTerms | Promise<LossTerms>, who = 'train'): Promise<Record<string, number>> {
  return tidyAsync(async () => {
    const terms = await loss();
    if (!terms || !(terms.total instanceof Tensor)) throw new Error(`${who}: the loss function must return named scalar tensors including 'total'`);
    const list = Object.entries(terms);
    for (const [k, t] of list) {
      if (!(t instanceof Tensor) || t.size !== 1) {
        throw new Error(`${who}: loss term '${k}' must be a scalar tensor of shape [1], got ${t instanceof Tensor ? fmtShape(t.shape) : typeof t}`);
      }
    }
    terms.total.backward();
    const v = await readTerms(list);
    // Name a component rather than the total when both are bad.
    const bad = [...list.filter(([k]) => k !== 'total'), ...list.filter(([k]) => k === 'total')].find(([k]) => !Number.isFinite(v[k]));
    if (bad) {
      optimizer.zeroGrad();
      throw new NonFiniteLossError(bad[0], v[bad[0]]);
    }
    optimizer.step();
    optimizer.zeroGrad();
    return v;
  });
}
