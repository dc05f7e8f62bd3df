// Elementwise ops: unary activations and affine scalar ops, same-shape binary ops, in-place accumulation.
// Each unary op is one expression of x (with p.a, p.b as scalar parameters) and one of its derivative
// in terms of x, y = f(x) and dy; a kernel is generated per op from that pair.
import { dtypeOf, kernel, numel, type Dtype, type Gpu, type Kernel, type RawTensor } from '../gpu/index.js';

const HEAD = /* wgsl */ `
struct P { n: u32, a: f32, b: f32 }
@group(0) @binding(0) var<uniform> p: P;
override WG: u32 = 256;
// tanh without the overflow of exp(2x) for large |x|.
fn tanh_(x: f32) -> f32 { let e = exp(-2.0 * abs(x)); return sign(x) * (1.0 - e) / (1.0 + e); }
`;
const INDEX = 'let i = g.x + g.y * nw.x * WG; if (i >= p.n) { return; }';
const ARGS = '@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u';

export const UNARY = {
  relu: { f: 'max(x, 0.0)', df: 'select(0.0, dy, x > 0.0)' },
  tanh: { f: 'tanh_(x)', df: 'dy * (1.0 - y * y)' },
  sigmoid: { f: '1.0 / (1.0 + exp(-x))', df: 'dy * y * (1.0 - y)' },
  /** y = a·tanh(x) + b: the paper's output layer (a = 127.5, b = 127.5 maps to [0, 255]; authors' 150·tanh). */
  scaledTanh: { f: 'p.a * tanh_(x) + p.b', df: 'dy * p.a * (1.0 - tanh_(x) * tanh_(x))' },
  /** y = a·x + b: scalar multiply and add. */
  affine: { f: 'p.a * x + p.b', df: 'dy * p.a' },
  square: { f: 'x * x', df: '2.0 * x * dy' },
  abs: { f: 'abs(x)', df: 'sign(x) * dy' },
} as const;
export type UnaryOp = keyof typeof UNARY;

function unaryKernels(op: UnaryOp, e: { f: string; df: string }): { fwd: Kernel; bwd: Kernel } {
  const fwd = kernel(`${op}.forward`, `${HEAD}
@group(0) @binding(1) var<storage, read> x_: array<f32>;
@group(0) @binding(2) var<storage, read_write> y_: array<f32>;
@compute @workgroup_size(WG) fn main(${ARGS}) { ${INDEX} let x = x_[i]; y_[i] = ${e.f}; }`);
  const bwd = kernel(`${op}.backward`, `${HEAD}
@group(0) @binding(1) var<storage, read> x_: array<f32>;
@group(0) @binding(2) var<storage, read> y_: array<f32>;
@group(0) @binding(3) var<storage, read> dy_: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx_: array<f32>;
@compute @workgroup_size(WG) fn main(${ARGS}) { ${INDEX} let x = x_[i]; let y = y_[i]; let dy = dy_[i]; dx_[i] = ${e.df}; }`);
  return { fwd, bwd };
}

const unaryK = Object.fromEntries(Object.entries(UNARY).map(([op, e]) => [op, unaryKernels(op as UnaryOp, e)])) as Record<
  UnaryOp,
  { fwd: Kernel; bwd: Kernel }
>;

/** y = op(x), stored in x's dtype unless `dtype` is given (affine with a = 1, b = 0 is then a conversion). */
export function unaryForward(gpu: Gpu, op: UnaryOp, x: RawTensor, a = 0, b = 0, dtype: Dtype = dtypeOf(x)): RawTensor {
  const n = numel(x.shape);
  const y = gpu.empty(x.shape, `${op} output`, dtype);
  const k = unaryK[op].fwd;
  gpu.dispatch(k, { p: { n, a, b }, x_: x, y_: y }, gpu.grid(k, n));
  return y;
}

export function unaryBackward(gpu: Gpu, op: UnaryOp, x: RawTensor, y: RawTensor, dy: RawTensor, a = 0, b = 0): RawTensor {
  const n = numel(x.shape);
  const dx = gpu.empty(x.shape, `${op} dx`);
  const k = unaryK[op].bwd;
  gpu.dispatch(k, { p: { n, a, b }, x_: x, y_: y, dy_: dy, dx_: dx }, gpu.grid(k, n));
  return dx;
}

// ---- binary, same shape: y = a·u + b·v or y = u·v -----------------------------------------------

const lincomb = kernel('lincomb.forward', `${HEAD}
@group(0) @binding(1) var<storage, read> u: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(WG) fn main(${ARGS}) { ${INDEX} y[i] = p.a * u[i] + p.b * v[i]; }`);

const product = kernel('mul.forward', `${HEAD}
@group(0) @binding(1) var<storage, read> u: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(WG) fn main(${ARGS}) { ${INDEX} y[i] = u[i] * v[i]; }`);

/** In place: y += a·u (gradient accumulation on fan-out; optimiser updates). */
const axpy = kernel('axpy.inplace', `${HEAD}
@group(0) @binding(1) var<storage, read> u: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(WG) fn main(${ARGS}) { ${INDEX} y[i] = y[i] + p.a * u[i]; }`);

const fill = kernel('fill.forward', `${HEAD}
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(WG) fn main(${ARGS}) { ${INDEX} y[i] = p.a; }`);

/** a·u + b·v (add: a = b = 1; sub: a = 1, b = −1). */
export function linComb(gpu: Gpu, u: RawTensor, v: RawTensor, a: number, b: number): RawTensor {
  const n = numel(u.shape);
  const y = gpu.empty(u.shape, 'lincomb output', dtypeOf(u, v));
  gpu.dispatch(lincomb, { p: { n, a, b }, u, v, y }, gpu.grid(lincomb, n));
  return y;
}

export function mulForward(gpu: Gpu, u: RawTensor, v: RawTensor): RawTensor {
  const n = numel(u.shape);
  const y = gpu.empty(u.shape, 'mul output', dtypeOf(u, v));
  gpu.dispatch(product, { p: { n, a: 0, b: 0 }, u, v, y }, gpu.grid(product, n));
  return y;
}

export function axpyInPlace(gpu: Gpu, y: RawTensor, u: RawTensor, a = 1): void {
  const n = numel(y.shape);
  gpu.dispatch(axpy, { p: { n, a, b: 0 }, u, y }, gpu.grid(axpy, n));
}

export function fillTensor(gpu: Gpu, shape: readonly number[], value: number): RawTensor {
  const n = numel(shape);
  const y = gpu.empty(shape, 'fill');
  gpu.dispatch(fill, { p: { n, a: value, b: 0 }, y }, gpu.grid(fill, n));
  return y;
}
