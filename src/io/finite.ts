// Weights holding NaN or ±Inf: one such value poisons every output (a NaN image, or a flat colour after the output's
// clamp), so models and checkpoints with them are refused where they are saved and where they are loaded, naming
// the tensor. Pure (no Node, no GPU): the browser bundle loads models through the same checks.

/** A tensor holds NaN or ±Inf. */
export class NonFiniteTensorError extends Error {
  override name = 'NonFiniteTensorError';
  constructor(
    message: string,
    /** The first tensor (in the order given) with a non-finite value. */
    readonly tensor: string,
    /** Its non-finite values, its size, the first such value and its flat index. */
    readonly count: number,
    readonly size: number,
    readonly value: number,
    readonly index: number,
    /** How many tensors hold non-finite values, this one included. */
    readonly tensors: number,
  ) {
    super(message);
  }
}

export interface NonFinite {
  name: string;
  count: number;
  size: number;
  /** The first non-finite value and its flat index. */
  value: number;
  index: number;
}

/** The tensors holding NaN or ±Inf, in the order given. */
export function nonFiniteTensors(tensors: Iterable<readonly [string, { readonly data: ArrayLike<number> }]>): NonFinite[] {
  const bad: NonFinite[] = [];
  for (const [name, t] of tensors) {
    const d = t.data;
    let count = 0;
    let index = -1;
    for (let i = 0; i < d.length; i++) {
      const x = d[i];
      // x − x is 0 for every finite x and NaN for NaN and ±Inf: one comparison per value.
      if (x - x !== 0) {
        if (count++ === 0) index = i;
      }
    }
    if (count) bad.push({ name, count, size: d.length, value: d[index], index });
  }
  return bad;
}

/** One line on a non-finite tensor: "tensor c1.weight holds NaN/Inf (108 of 108 values, first NaN at index 0)". */
export function describeNonFinite(b: NonFinite, others = 0): string {
  const more = others > 0 ? `, and ${others} more tensor${others === 1 ? ' does' : 's do'}` : '';
  return `tensor ${b.name} holds NaN/Inf (${b.count} of ${b.size} values, first ${b.value} at index ${b.index})${more}`;
}

/** Throws NonFiniteTensorError when any tensor holds NaN or ±Inf: "`what`: tensor X holds NaN/Inf (...)". */
export function assertFinite(tensors: Iterable<readonly [string, { readonly data: ArrayLike<number> }]>, what: string): void {
  const bad = nonFiniteTensors(tensors);
  if (!bad.length) return;
  const b = bad[0];
  throw new NonFiniteTensorError(`${what}: ${describeNonFinite(b, bad.length - 1)}`, b.name, b.count, b.size, b.value, b.index, bad.length);
}
