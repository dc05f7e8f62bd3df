// Shape checks at the entry of every layer: the op first, then the rule, then every shape involved. And recordOp,
// the layers' record: f16 tensors are for inference only.
import { DtypeError, ShapeError, fmtShape } from '../gpu/errors.js';
import { isGradEnabled, record, type Backward, type Tensor } from '../autograd/tensor.js';
import type { RawTensor } from '../gpu/index.js';

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

/** record() for the layers: an op that would record a gradient through an f16 tensor (input or output) throws,
 *  naming the op and every input's shape and dtype; its output is released first. f16 is storage for inference. */
export function recordOp(op: string, inputs: Tensor[], out: RawTensor, backward: Backward, release?: () => void): Tensor {
  const grad = isGradEnabled() && inputs.some((t) => t.requiresGrad);
  if (grad && (out.dtype === 'f16' || inputs.some((t) => t.raw.dtype === 'f16'))) {
    inputs[0].gpu.release(out);
    release?.();
    const list = inputs.map((t, i) => `#${i} ${fmtShape(t.shape)} ${t.raw.dtype ?? 'f32'}${t.requiresGrad ? ' (requires grad)' : ''}`).join(', ');
    throw new DtypeError(`${op}: f16 tensors are for inference only (no gradients); run it under noGrad() with parameters that need no gradient, or in f32; inputs ${list}`);
  }
  return record(op, inputs, out, backward, release);
}
