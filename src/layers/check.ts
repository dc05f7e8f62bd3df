// Shape checks at the entry of every layer: the op first, then the rule, then every shape involved.
import { ShapeError, fmtShape } from '../gpu/errors.js';
import type { Tensor } from '../autograd/tensor.js';

export function shapes(named: Record<string, { shape: readonly number[] } | readonly number[]>): string {
  return Object.entries(named)
    .map(([k, v]) => `${k} ${fmtShape('shape' in v ? v.shape : (v as readonly number[]))}`)
    .join(', ');
}

/** Throws `op: rule; x [..], w [..]` unless ok. */
export function check(ok: boolean, op: string, rule: string, named: Record<string, { shape: readonly number[] } | readonly number[]>): void {
  if (!ok) throw new ShapeError(`${op}: ${rule}; ${shapes(named)}`);
}

export function checkRank(op: string, name: string, t: Tensor, rank: number): void {
  check(t.shape.length === rank, op, `${name} must have ${rank} dimensions${rank === 4 ? ' (N,C,H,W)' : ''}`, { [name]: t });
}

export function checkSame(op: string, named: Record<string, Tensor>): void {
  const ts = Object.values(named);
  const ok = ts.every((t) => t.shape.length === ts[0].shape.length && t.shape.every((d, i) => d === ts[0].shape[i]));
  check(ok, op, 'shapes must match', named);
}
