// Differentiable elementwise ops: activations, scalar affine ops, add/sub/mul of same-shape tensors; cast (f32 ↔ f16).
import type { Tensor } from '../autograd/tensor.js';
import { linComb, mulForward, unaryBackward, unaryForward, type UnaryOp } from '../kernels/elementwise.js';
import { dtypeOf, type Dtype, type RawTensor } from '../gpu/index.js';
import { checkSame, recordOp } from './check.js';

function unary(op: UnaryOp, x: Tensor, a = 0, b = 0): Tensor {
  const gpu = x.gpu;
  const y = unaryForward(gpu, op, x.raw, a, b);
  return recordOp(op, [x], y, (dy) => [unaryBackward(gpu, op, x.raw, y, dy, a, b)]);
}

export const relu = (x: Tensor): Tensor => unary('relu', x);
export const tanh = (x: Tensor): Tensor => unary('tanh', x);
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x);
export const square = (x: Tensor): Tensor => unary('square', x);
export const abs = (x: Tensor): Tensor => unary('abs', x);
/** a·tanh(x) + b. Paper output layer: scaledTanh(x, 127.5, 127.5) ∈ [0, 255]; the authors' code used 150·tanh. */
export const scaledTanh = (x: Tensor, a = 127.5, b = 127.5): Tensor => unary('scaledTanh', x, a, b);
/** a·x + b for scalars a, b. */
export const affine = (x: Tensor, a: number, b = 0): Tensor => unary('affine', x, a, b);
export const mulScalar = (x: Tensor, a: number): Tensor => unary('affine', x, a, 0);
export const addScalar = (x: Tensor, b: number): Tensor => unary('affine', x, 1, b);

/** x stored as `dtype` (to f16: rounded to nearest, ties to even); x itself when it already is. f16 is for inference. */
export function cast(x: Tensor, dtype: Dtype): Tensor {
  if ((x.raw.dtype ?? 'f32') === dtype) return x;
  const gpu = x.gpu;
  // 1·x + 0 is exact in f32: the conversion is the store into the output's dtype.
  const y = unaryForward(gpu, 'affine', x.raw, 1, 0, dtype);
  return recordOp('cast', [x], y, (dy) => [unaryForward(gpu, 'affine', dy, 1, 0, dtypeOf(x.raw))]);
}

function lin(op: string, u: Tensor, v: Tensor, a: number, b: number): Tensor {
  checkSame(op, { a: u, b: v });
  const gpu = u.gpu;
  const y = linComb(gpu, u.raw, v.raw, a, b);
  return recordOp(op, [u, v], y, (dy, needs) => [
    needs[0] ? (a === 1 ? copyOf(u, dy) : scaleOf(u, dy, a)) : null,
    needs[1] ? (b === 1 ? copyOf(v, dy) : scaleOf(v, dy, b)) : null,
  ]);
}

function copyOf(t: Tensor, dy: RawTensor) {
  const c = t.gpu.empty(dy.shape, 'grad');
  t.gpu.copy(dy, c);
  return c;
}
function scaleOf(t: Tensor, dy: RawTensor, s: number) {
  return unaryForward(t.gpu, 'affine', dy, s, 0);
}

export const add = (a: Tensor, b: Tensor): Tensor => lin('add', a, b, 1, 1);
export const sub = (a: Tensor, b: Tensor): Tensor => lin('sub', a, b, 1, -1);
/** a·u + b·v in one kernel. */
export const linearCombination = (u: Tensor, v: Tensor, a: number, b: number): Tensor => lin('linearCombination', u, v, a, b);

export function mul(u: Tensor, v: Tensor): Tensor {
  checkSame('mul', { a: u, b: v });
  const gpu = u.gpu;
  const y = mulForward(gpu, u.raw, v.raw);
  return recordOp('mul', [u, v], y, (dy, needs) => [needs[0] ? mulForward(gpu, dy, v.raw) : null, needs[1] ? mulForward(gpu, dy, u.raw) : null]);
}
