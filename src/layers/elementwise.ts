// Differentiable elementwise ops: activations, scalar affine ops, add/sub/mul of same-shape tensors.
import { record, type Tensor } from '../autograd/tensor.js';
import { linComb, mulForward, unaryBackward, unaryForward, type UnaryOp } from '../kernels/elementwise.js';
import { checkSame } from './check.js';
import type { RawTensor } from '../gpu/index.js';

function unary(op: UnaryOp, x: Tensor, a = 0, b = 0): Tensor {
  const gpu = x.gpu;
  const y = unaryForward(gpu, op, x.raw, a, b);
  return record(op, [x], y, (dy) => [unaryBackward(gpu, op, x.raw, y, dy, a, b)]);
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

function lin(op: string, u: Tensor, v: Tensor, a: number, b: number): Tensor {
  checkSame(op, { a: u, b: v });
  const gpu = u.gpu;
  const y = linComb(gpu, u.raw, v.raw, a, b);
  return record(op, [u, v], y, (dy, needs) => [
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
  return record('mul', [u, v], y, (dy, needs) => [needs[0] ? mulForward(gpu, dy, v.raw) : null, needs[1] ? mulForward(gpu, dy, u.raw) : null]);
}
