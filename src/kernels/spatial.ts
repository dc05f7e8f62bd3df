// Nearest-neighbour upsampling and concatenation. Backward passes are gathers (no atomics).
import { dtypeOf, kernel, numel, type Gpu, type RawTensor } from '../gpu/index.js';

const ARGS = '@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u';

// ---- upsampleNearest2d: y[oy, ox] = x[oy / s, ox / s] (PyTorch mode='nearest', integer scale_factor) ----

const UP_HEAD = /* wgsl */ `
// n: output (forward) or input (backward) elements; H, W: input plane; s: scale.
struct P { n: u32, H: u32, W: u32, s: u32 }
@group(0) @binding(0) var<uniform> p: P;
override WG: u32 = 256;
`;

const upForward = kernel('upsampleNearest2d.forward', `${UP_HEAD}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(WG) fn main(${ARGS}) {
  let i = g.x + g.y * nw.x * WG;
  if (i >= p.n) { return; }
  let Wo = p.W * p.s;
  let Ho = p.H * p.s;
  let ox = i % Wo;
  let oy = (i / Wo) % Ho;
  let plane = i / (Wo * Ho);
  y[i] = x[(plane * p.H + oy / p.s) * p.W + ox / p.s];
}`);

const upBackward = kernel('upsampleNearest2d.backward', `${UP_HEAD}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(WG) fn main(${ARGS}) {
  let i = g.x + g.y * nw.x * WG;
  if (i >= p.n) { return; }
  let ix = i % p.W;
  let iy = (i / p.W) % p.H;
  let plane = i / (p.W * p.H);
  let Wo = p.W * p.s;
  var acc = 0.0;
  for (var a = 0u; a < p.s; a++) {
    let row = (plane * p.H * p.s + iy * p.s + a) * Wo + ix * p.s;
    for (var b = 0u; b < p.s; b++) { acc += dy[row + b]; }
  }
  dx[i] = acc;
}`);

export function upsampleNearest2dForward(gpu: Gpu, x: RawTensor, scale: number): RawTensor {
  const [N, C, H, W] = x.shape;
  const y = gpu.empty([N, C, H * scale, W * scale], 'upsampleNearest2d output', x.dtype);
  const n = numel(y.shape);
  gpu.dispatch(upForward, { p: { n, H, W, s: scale }, x, y }, gpu.grid(upForward, n));
  return y;
}

export function upsampleNearest2dBackward(gpu: Gpu, xShape: readonly number[], dy: RawTensor, scale: number): RawTensor {
  const [, , H, W] = xShape;
  const dx = gpu.empty(xShape, 'upsampleNearest2d dx');
  const n = numel(xShape);
  gpu.dispatch(upBackward, { p: { n, H, W, s: scale }, dy, dx }, gpu.grid(upBackward, n));
  return dx;
}

// ---- concat along any dim: the tensor is seen as [outer, size(dim)·inner]; each input is one block ----

const SLICE_HEAD = /* wgsl */ `
// n: elements of the part; len: part elements per outer index; stride: whole-tensor elements per outer
// index; offset: where the part starts within each outer index.
struct P { n: u32, len: u32, stride: u32, offset: u32 }
@group(0) @binding(0) var<uniform> p: P;
override WG: u32 = 256;
`;

/** whole[o·stride + offset + j] = part[o·len + j] */
const insertK = kernel('concat.forward', `${SLICE_HEAD}
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> whole: array<f32>;
@compute @workgroup_size(WG) fn main(${ARGS}) {
  let i = g.x + g.y * nw.x * WG;
  if (i >= p.n) { return; }
  whole[(i / p.len) * p.stride + p.offset + i % p.len] = part[i];
}`);

/** part[o·len + j] = whole[o·stride + offset + j] */
const extractK = kernel('concat.backward', `${SLICE_HEAD}
@group(0) @binding(1) var<storage, read> whole: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;
@compute @workgroup_size(WG) fn main(${ARGS}) {
  let i = g.x + g.y * nw.x * WG;
  if (i >= p.n) { return; }
  part[i] = whole[(i / p.len) * p.stride + p.offset + i % p.len];
}`);

/** Shapes must agree except along dim (checked by the caller). */
export function concatForward(gpu: Gpu, xs: readonly RawTensor[], dim: number): RawTensor {
  const shape = [...xs[0].shape];
  shape[dim] = xs.reduce((a, x) => a + x.shape[dim], 0);
  const y = gpu.empty(shape, 'concat output', dtypeOf(...xs));
  const inner = numel(shape.slice(dim + 1));
  const stride = shape[dim] * inner;
  let offset = 0;
  for (const x of xs) {
    const len = x.shape[dim] * inner;
    const n = numel(x.shape);
    gpu.dispatch(insertK, { p: { n, len, stride, offset }, part: x, whole: y }, gpu.grid(insertK, n));
    offset += len;
  }
  return y;
}

/** The slice [start, start + size) of `whole` along dim. */
export function sliceAlong(gpu: Gpu, whole: RawTensor, dim: number, start: number, size: number): RawTensor {
  const shape = [...whole.shape];
  shape[dim] = size;
  const part = gpu.empty(shape, 'concat dx');
  const inner = numel(shape.slice(dim + 1));
  const n = numel(shape);
  const p = { n, len: size * inner, stride: whole.shape[dim] * inner, offset: start * inner };
  gpu.dispatch(extractK, { p, whole, part }, gpu.grid(extractK, n));
  return part;
}
