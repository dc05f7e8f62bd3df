// Level-1 BLAS on flat float32 buffers, for optimisers that treat all parameters as one vector (L-BFGS):
// dot products and norms as workgroup-tree reductions to a [1] tensor (reduce.ts), and in-place axpy / scale /
// copy with element offsets (so several parameters can live in one flat vector). An axpy coefficient may come
// from the GPU (`c + a·u[0] + b·v[0]`, with u, v [1] tensors such as dot products), so chains like L-BFGS's
// two-loop recursion run without reading anything back.
import { kernel, numel, type Gpu, type RawTensor } from '../gpu/index.js';
import { reduceAll, reductionKernel } from './reduce.js';

const ITEMS = 16;
const ARGS = '@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u';
const INDEX = 'let i = gid.x + gid.y * nwg.x * WG; if (i >= p.n) { return; }';

const dotK = reductionKernel(
  'blas.dot',
  '',
  '@group(0) @binding(2) var<storage, read> x: array<f32>;\n@group(0) @binding(3) var<storage, read> y: array<f32>;',
  'return x[i] * y[i];',
);

const sumAbsK = reductionKernel('blas.sum_abs', '', '@group(0) @binding(2) var<storage, read> x: array<f32>;', 'return abs(x[i]);');

// max |x|: every pass is the same kernel (the partial maxima are already non-negative).
const maxAbsK = kernel(
  'blas.max_abs',
  /* wgsl */ `
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
override WG: u32 = 256;
override ITEMS: u32 = ${ITEMS};
var<workgroup> part: array<f32, WG>;
@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = wid.x + wid.y * nwg.x;
  let base = g * WG * ITEMS + l;
  var m = 0.0;
  for (var k = 0u; k < ITEMS; k++) {
    let i = base + k * WG;
    if (i < p.n) { m = max(m, abs(x[i])); }
  }
  part[l] = m;
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off = off / 2u) {
    if (l < off) { part[l] = max(part[l], part[l + off]); }
    workgroupBarrier();
  }
  if (l == 0u && (g == 0u || g * WG * ITEMS < p.n)) { out[g] = part[0]; }
}`,
);

const axpyK = kernel(
  'blas.axpy',
  /* wgsl */ `
struct P { n: u32, offX: u32, offY: u32, alpha: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
override WG: u32 = 256;
@compute @workgroup_size(WG) fn main(${ARGS}) { ${INDEX} y[p.offY + i] = y[p.offY + i] + p.alpha * x[p.offX + i]; }`,
);

const axpyDevK = kernel(
  'blas.axpy_device',
  /* wgsl */ `
struct P { n: u32, offX: u32, offY: u32, c: f32, a: f32, b: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> u: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
override WG: u32 = 256;
@compute @workgroup_size(WG) fn main(${ARGS}) {
  ${INDEX}
  let alpha = p.c + p.a * u[0] + p.b * v[0];
  y[p.offY + i] = y[p.offY + i] + alpha * x[p.offX + i];
}`,
);

const scaleK = kernel(
  'blas.scale',
  /* wgsl */ `
struct P { n: u32, alpha: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
override WG: u32 = 256;
@compute @workgroup_size(WG) fn main(${ARGS}) { ${INDEX} y[i] = p.alpha * x[i]; }`,
);

const scaleInPlaceK = kernel(
  'blas.scale_inplace',
  /* wgsl */ `
struct P { n: u32, alpha: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
override WG: u32 = 256;
@compute @workgroup_size(WG) fn main(${ARGS}) { ${INDEX} y[i] = p.alpha * y[i]; }`,
);

const copyK = kernel(
  'blas.copy',
  /* wgsl */ `
struct P { n: u32, offX: u32, offY: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
override WG: u32 = 256;
@compute @workgroup_size(WG) fn main(${ARGS}) { ${INDEX} y[p.offY + i] = x[p.offX + i]; }`,
);

function sameLength(op: string, x: RawTensor, y: RawTensor): number {
  const n = numel(x.shape);
  if (numel(y.shape) !== n) throw new Error(`${op}: vectors must have the same number of elements; x [${x.shape.join(',')}], y [${y.shape.join(',')}]`);
  return n;
}

/** Σ x[i]·y[i] as a [1] tensor (tree reduction; shapes may differ if the element counts agree). */
export function dot(gpu: Gpu, x: RawTensor, y: RawTensor, items = ITEMS): RawTensor {
  const n = sameLength('blas.dot', x, y);
  return reduceAll(gpu, dotK, { x, y }, {}, n, 1, 'dot', items);
}

/** Σ |x[i]| (the L1 norm) as a [1] tensor. */
export function sumAbs(gpu: Gpu, x: RawTensor, items = ITEMS): RawTensor {
  return reduceAll(gpu, sumAbsK, { x }, {}, numel(x.shape), 1, 'sum_abs', items);
}

/** max |x[i]| (the L∞ norm; 0 for an empty vector) as a [1] tensor. */
export function maxAbs(gpu: Gpu, x: RawTensor, items = ITEMS): RawTensor {
  const per = maxAbsK.workgroupSize[0] * items;
  let n = numel(x.shape);
  let cur = x;
  do {
    const groups = Math.max(1, Math.ceil(n / per));
    const out = gpu.empty([groups], groups === 1 ? 'max_abs output' : 'max_abs partial maxima');
    gpu.dispatch(maxAbsK, { p: { n }, out, x: cur }, gpu.grid(maxAbsK, n, items), { ITEMS: items });
    if (cur !== x) gpu.release(cur);
    cur = out;
    n = groups;
  } while (n > 1);
  return cur;
}

/** Element ranges for axpy/copy: `n` elements from offset `offX` of x and `offY` of y (defaults: all, 0, 0). */
export interface Range {
  n?: number;
  offX?: number;
  offY?: number;
}

function range(op: string, x: RawTensor, y: RawTensor, r: Range): { n: number; offX: number; offY: number } {
  const offX = r.offX ?? 0;
  const offY = r.offY ?? 0;
  const n = r.n ?? sameLength(op, x, y);
  if (offX + n > numel(x.shape) || offY + n > numel(y.shape)) {
    throw new Error(`${op}: range of ${n} elements at x+${offX}, y+${offY} exceeds x [${x.shape.join(',')}] or y [${y.shape.join(',')}]`);
  }
  return { n, offX, offY };
}

/** A coefficient computed on the GPU: c + a·u[0] + b·v[0] (u, v: [1] tensors; a missing one counts as 0). */
export interface DeviceCoef {
  c?: number;
  a?: number;
  u?: RawTensor;
  b?: number;
  v?: RawTensor;
}

/** In place: y[offY + i] += α · x[offX + i], α a number or a DeviceCoef. */
export function axpy(gpu: Gpu, y: RawTensor, x: RawTensor, alpha: number | DeviceCoef, r: Range = {}): void {
  const { n, offX, offY } = range('blas.axpy', x, y, r);
  if (typeof alpha === 'number') {
    gpu.dispatch(axpyK, { p: { n, offX, offY, alpha }, x, y }, gpu.grid(axpyK, n));
    return;
  }
  const { c = 0, a = 0, b = 0 } = alpha;
  const u = alpha.u ?? alpha.v;
  const v = alpha.v ?? alpha.u;
  if (!u || !v) {
    gpu.dispatch(axpyK, { p: { n, offX, offY, alpha: c }, x, y }, gpu.grid(axpyK, n));
    return;
  }
  gpu.dispatch(axpyDevK, { p: { n, offX, offY, c, a: alpha.u ? a : 0, b: alpha.v ? b : 0 }, x, y, u, v }, gpu.grid(axpyDevK, n));
}

/** α·x into `out` (a new tensor when omitted; out === x scales in place). Returns out. */
export function scale(gpu: Gpu, x: RawTensor, alpha: number, out?: RawTensor): RawTensor {
  const n = numel(x.shape);
  if (out === x || (out && out.buffer === x.buffer)) {
    gpu.dispatch(scaleInPlaceK, { p: { n, alpha }, y: x }, gpu.grid(scaleInPlaceK, n));
    return x;
  }
  const y = out ?? gpu.empty(x.shape, 'scale output');
  sameLength('blas.scale', x, y);
  gpu.dispatch(scaleK, { p: { n, alpha }, x, y }, gpu.grid(scaleK, n));
  return y;
}

/** y[offY + i] = x[offX + i] for n elements (whole vectors by default). */
export function copy(gpu: Gpu, x: RawTensor, y: RawTensor, r: Range = {}): void {
  const { n, offX, offY } = range('blas.copy', x, y, r);
  if (offX === 0 && offY === 0) {
    if (n > 0) gpu.copy(x, y, n * 4);
    return;
  }
  gpu.dispatch(copyK, { p: { n, offX, offY }, x, y }, gpu.grid(copyK, n));
}

/** A new tensor holding a copy of x. */
export function clone(gpu: Gpu, x: RawTensor, what = 'clone'): RawTensor {
  const y = gpu.empty(x.shape, what);
  copy(gpu, x, y);
  return y;
}
