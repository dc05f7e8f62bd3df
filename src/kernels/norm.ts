// Normalisation kernels shared by batch norm and instance norm. Both normalise "groups" of elements: a
// group g is `cnt` elements made of segments of `hw` contiguous values, segment s starting at
// g·hw + s·seg. Batch norm: one group per channel, cnt = N·H·W, seg = C·H·W. Instance norm: one group per
// (n, c), cnt = H·W. An element at flat index i belongs to group (i / hw) % G.
//
// Statistics are reduced in two passes over a grid (chunk, segment·group): each workgroup turns one chunk of
// one segment into (count, mean, M2) with per-invocation Welford updates and a shared-memory tree of Chan
// merges; a finalize pass merges a group's chunks the same way. No E[x²] − E[x]² anywhere (inputs in 0..255
// keep full precision). The backward sums Σdy and Σdy·x̂ use the same chunked two-pass layout.
// Index arithmetic is per workgroup, not per element: on CPU adapters (lavapipe) a per-lane integer division
// is a scalar loop over the SIMD lanes, which made these kernels run at a tenth of copy speed.
import { kernel, numel, type Gpu, type Kernel, type RawTensor } from '../gpu/index.js';

/** Reductions: invocations per workgroup (a power of two) and elements each one folds before the tree. */
const RWG = 64;
const PER = 32;
/** Per group, what the elementwise passes need (norm.coef writes it). */
const COEF = 'struct Coef { mean: f32, invstd: f32, scale: f32, bias: f32 }';
// Welford states are vec3f (count, mean, M2), so that a tree merges them in workgroup memory.
const MERGE = /* wgsl */ `
fn merge(a: vec3f, b: vec3f) -> vec3f {
  if (b.x == 0.0) { return a; }
  if (a.x == 0.0) { return b; }
  let n = a.x + b.x;
  let d = b.y - a.y;
  let f = b.x / n;
  return vec3f(n, a.y + d * f, a.z + b.z + d * d * a.x * f);
}`;
// Workgroup (cx, sg): chunk cx of segment s of group g, sg = g·nseg + s (folded into y, z). Its elements are
// x[base + r] for r in [r0, r1), read r0 + t, r0 + t + WG, ... by invocation t.
const RED = /* wgsl */ `
struct P { G: u32, hw: u32, nseg: u32, seg: u32, cps: u32 }
@group(0) @binding(0) var<uniform> p: P;
override WG: u32 = ${RWG};
override PER: u32 = ${PER};
struct Chunk { g: u32, base: u32, r0: u32, r1: u32, out: u32, live: bool }
fn chunk(wid: vec3u, nwg: vec3u) -> Chunk {
  let sg = wid.y + wid.z * nwg.y;
  let g = sg / p.nseg;
  let r0 = wid.x * WG * PER;
  let live = g < p.G;
  return Chunk(g, g * p.hw + (sg % p.nseg) * p.seg, r0, select(r0, min(r0 + WG * PER, p.hw), live), sg * p.cps + wid.x, live);
}`;
const RED_ARGS = '@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) t: u32';
/** Tree reduction of sh[0..WG) into sh[0] (every invocation must reach it). */
const tree = (combine: string) => /* wgsl */ `
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) { sh[t] = ${combine}; }
    workgroupBarrier();
  }`;
// Elementwise kernels: workgroup (cx, plane) covers elements plane·hw + cx·WG + [0, WG) of one (n, c) plane,
// whose group is plane % G (planes folded into y, z).
const ARGS = '@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u';
const ELEM_ARGS = '@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) t: u32';
const ELEM_INDEX = 'let plane = wid.y + wid.z * nwg.y; let r = wid.x * WG + t; if (r >= p.hw || plane >= p.planes) { return; } let i = plane * p.hw + r; let g = plane % p.G;';

const statsPartial = kernel('norm.stats_partial', `${MERGE}${RED}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;
var<workgroup> sh: array<vec3f, WG>;
@compute @workgroup_size(WG) fn main(${RED_ARGS}) {
  let c = chunk(wid, nwg);
  var a = vec3f(0.0);
  for (var r = c.r0 + t; r < c.r1; r += WG) {
    let v = x[c.base + r];
    a.x += 1.0;
    let d = v - a.y;
    a.y += d / a.x;
    a.z += d * (v - a.y);
  }
  sh[t] = a;${tree('merge(sh[t], sh[t + s])')}
  if (t == 0u && c.live) { let o = c.out * 3u; part[o] = sh[0].x; part[o + 1u] = sh[0].y; part[o + 2u] = sh[0].z; }
}`);

const statsFinal = kernel('norm.stats_finalize', `${MERGE}
override WG: u32 = 256;
struct P { G: u32, chunks: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> mean_: array<f32>;
@group(0) @binding(3) var<storage, read_write> var_: array<f32>;
var<workgroup> sh: array<vec3f, WG>;
@compute @workgroup_size(WG) fn main(${RED_ARGS}) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= p.G) { return; }
  var a = vec3f(0.0);
  for (var k = t; k < p.chunks; k += WG) {
    let o = (g * p.chunks + k) * 3u;
    a = merge(a, vec3f(part[o], part[o + 1u], part[o + 2u]));
  }
  sh[t] = a;${tree('merge(sh[t], sh[t + s])')}
  if (t == 0u) { mean_[g] = sh[0].y; var_[g] = sh[0].z / max(sh[0].x, 1.0); }
}`);

/** Per group: (mean, invstd, scale = w·invstd, bias), from a mean and a (biased or running) variance. */
const coefK = kernel('norm.coef', `${COEF}
struct P { G: u32, C: u32, hasW: u32, hasB: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> mean_: array<f32>;
@group(0) @binding(2) var<storage, read> var_: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> b: array<f32>;
@group(0) @binding(5) var<storage, read_write> coef: array<Coef>;
override WG: u32 = 64;
@compute @workgroup_size(WG) fn main(${ARGS}) {
  let g = gid.x + gid.y * nw.x * WG;
  if (g >= p.G) { return; }
  let c = g % p.C;
  let invstd = 1.0 / sqrt(var_[g] + p.eps);
  var scale = invstd;
  if (p.hasW != 0u) { scale = w[c] * invstd; }
  var bias = 0.0;
  if (p.hasB != 0u) { bias = b[c]; }
  coef[g] = Coef(mean_[g], invstd, scale, bias);
}`);

/** Batch norm running statistics, in place: r ← (1−m)·r + m·batch (variance unbiased by n/(n−1)). */
const runningK = kernel('batchNorm.update_running', `
struct P { C: u32, m: f32, unbias: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> mean_: array<f32>;
@group(0) @binding(2) var<storage, read> var_: array<f32>;
@group(0) @binding(3) var<storage, read_write> rm: array<f32>;
@group(0) @binding(4) var<storage, read_write> rv: array<f32>;
override WG: u32 = 64;
@compute @workgroup_size(WG) fn main(${ARGS}) {
  let c = gid.x + gid.y * nw.x * WG;
  if (c >= p.C) { return; }
  rm[c] = (1.0 - p.m) * rm[c] + p.m * mean_[c];
  rv[c] = (1.0 - p.m) * rv[c] + p.m * var_[c] * p.unbias;
}`);

const applyK = kernel('norm.forward', `${COEF}
struct P { planes: u32, hw: u32, G: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> coef: array<Coef>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
override WG: u32 = 256;
@compute @workgroup_size(WG) fn main(${ELEM_ARGS}) {
  ${ELEM_INDEX}
  let c = coef[g];
  y[i] = (x[i] - c.mean) * c.scale + c.bias;
}`);

// Gradient sums are vec2f (Σdy, Σdy·x̂), added as one in the trees.
const bwdPartial = kernel('norm.backward_partial', `${COEF}${RED}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> coef: array<Coef>;
@group(0) @binding(4) var<storage, read_write> part: array<vec2f>;
var<workgroup> sh: array<vec2f, WG>;
@compute @workgroup_size(WG) fn main(${RED_ARGS}) {
  let c = chunk(wid, nwg);
  let k = coef[min(c.g, p.G - 1u)];
  var a = vec2f(0.0);
  for (var r = c.r0 + t; r < c.r1; r += WG) {
    let d = dy[c.base + r];
    a += vec2f(d, d * (x[c.base + r] - k.mean) * k.invstd);
  }
  sh[t] = a;${tree('sh[t] + sh[t + s]')}
  if (t == 0u && c.live) { part[c.out] = sh[0]; }
}`);

const bwdFinal = kernel('norm.backward_finalize', `
override WG: u32 = 256;
struct P { G: u32, chunks: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> part: array<vec2f>;
@group(0) @binding(2) var<storage, read_write> sums: array<vec2f>;
var<workgroup> sh: array<vec2f, WG>;
@compute @workgroup_size(WG) fn main(${RED_ARGS}) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= p.G) { return; }
  var a = vec2f(0.0);
  for (var k = t; k < p.chunks; k += WG) { a += part[g * p.chunks + k]; }
  sh[t] = a;${tree('sh[t] + sh[t + s]')}
  if (t == 0u) { sums[g] = sh[0]; }
}`);

/** dx = scale·(dy − t·(Σdy + x̂·Σdy·x̂)/M); t = 1 with batch statistics, 0 with fixed (running) ones. */
const bwdInput = kernel('norm.backward_input', `${COEF}
struct P { planes: u32, hw: u32, G: u32, invM: f32, t: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> coef: array<Coef>;
@group(0) @binding(4) var<storage, read> sums: array<vec2f>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
override WG: u32 = 256;
@compute @workgroup_size(WG) fn main(${ELEM_ARGS}) {
  ${ELEM_INDEX}
  let c = coef[g];
  var d = dy[i];
  if (p.t != 0.0) {
    let s = sums[g];
    d -= (s.x + (x[i] - c.mean) * c.invstd * s.y) * p.invM;
  }
  dx[i] = c.scale * d;
}`);

/** dweight[c] = Σ_n Σdy·x̂ and dbias[c] = Σ_n Σdy over the groups of channel c (g = n·C + c). */
const bwdParams = kernel('norm.backward_params', `
struct P { C: u32, reps: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> sums: array<vec2f>;
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;
@group(0) @binding(3) var<storage, read_write> db: array<f32>;
override WG: u32 = 64;
@compute @workgroup_size(WG) fn main(${ARGS}) {
  let c = gid.x + gid.y * nw.x * WG;
  if (c >= p.C) { return; }
  var a = vec2f(0.0);
  for (var n = 0u; n < p.reps; n++) { a += sums[n * p.C + c]; }
  dw[c] = a.y;
  db[c] = a.x;
}`);

/** How x [N,C,H,W] splits into groups: per channel (batch norm) or per (n, c) (instance norm). */
export interface Groups {
  /** Number of groups (C, or N·C). */
  G: number;
  /** Channels (weight/bias length). */
  C: number;
  hw: number;
  /** Elements per group. */
  cnt: number;
  /** Distance between a group's segments. */
  seg: number;
}

export function groupsOf(shape: readonly number[], perChannel: boolean): Groups {
  const [N, C, H, W] = shape;
  const hw = H * W;
  return perChannel ? { G: C, C, hw, cnt: N * hw, seg: C * hw } : { G: N * C, C, hw, cnt: hw, seg: 0 };
}

/** Grid of reduction kernel k: (chunks per segment, segments·groups folded into y, z). */
function redGrid(gpu: Gpu, k: Kernel, q: Groups): { p: { G: number; hw: number; nseg: number; seg: number; cps: number }; chunks: number; wg: [number, number, number] } {
  const nseg = q.cnt / q.hw;
  const cps = Math.max(1, Math.ceil(q.hw / (k.workgroupSize[0] * PER)));
  const [y, z] = gpu.fold(q.G * nseg, k.name);
  return { p: { G: q.G, hw: q.hw, nseg, seg: q.seg, cps }, chunks: nseg * cps, wg: [cps, y, z] };
}

/** Grid of elementwise kernel k: (chunks of a plane, planes folded into y, z). */
function elemGrid(gpu: Gpu, k: Kernel, shape: readonly number[], q: Groups): { planes: number; wg: [number, number, number] } {
  const planes = numel(shape) / Math.max(1, q.hw);
  const [y, z] = gpu.fold(planes, k.name);
  return { planes, wg: [Math.ceil(q.hw / k.workgroupSize[0]), y, z] };
}

/** Per-group mean and biased variance, [G] each. */
export function normStats(gpu: Gpu, x: RawTensor, q: Groups): { mean: RawTensor; var: RawTensor } {
  const { p, chunks, wg } = redGrid(gpu, statsPartial, q);
  const part = gpu.empty([q.G, chunks, 3], 'norm partial statistics');
  gpu.dispatch(statsPartial, { p, x, part }, wg);
  const mean = gpu.empty([q.G], 'norm mean');
  const var_ = gpu.empty([q.G], 'norm variance');
  gpu.dispatch(statsFinal, { p: { G: q.G, chunks }, part, mean_: mean, var_ }, gpu.fold(q.G, statsFinal.name));
  gpu.release(part);
  return { mean, var: var_ };
}

/** [G,4] per group, a WGSL Coef: mean, invstd = 1/√(var + eps), scale = weight·invstd, bias (weight 1, bias 0 if absent). */
export function normCoef(gpu: Gpu, mean: RawTensor, var_: RawTensor, w: RawTensor | null, b: RawTensor | null, q: Groups, eps: number): RawTensor {
  const coef = gpu.empty([q.G, 4], 'norm coefficients');
  const p = { G: q.G, C: q.C, hasW: w ? 1 : 0, hasB: b ? 1 : 0, eps };
  gpu.dispatch(coefK, { p, mean_: mean, var_, w: w ?? mean, b: b ?? mean, coef }, gpu.grid(coefK, q.G));
  return coef;
}

/** In place: running ← (1−momentum)·running + momentum·batch, with the variance unbiased over n values. */
export function updateRunningStats(gpu: Gpu, rm: RawTensor, rv: RawTensor, mean: RawTensor, var_: RawTensor, momentum: number, n: number): void {
  const C = numel(rm.shape);
  gpu.dispatch(runningK, { p: { C, m: momentum, unbias: n / (n - 1) }, mean_: mean, var_, rm, rv }, gpu.grid(runningK, C));
}

/** y = (x − mean)·scale + bias per group. */
export function normApply(gpu: Gpu, x: RawTensor, coef: RawTensor, q: Groups, what: string): RawTensor {
  const y = gpu.empty(x.shape, `${what} output`, x.dtype);
  const { planes, wg } = elemGrid(gpu, applyK, x.shape, q);
  gpu.dispatch(applyK, { p: { planes, hw: q.hw, G: q.G }, x, coef, y }, wg);
  return y;
}

/** [G,2] per group: Σdy and Σdy·x̂. */
export function normBackwardSums(gpu: Gpu, x: RawTensor, dy: RawTensor, coef: RawTensor, q: Groups): RawTensor {
  const { p, chunks, wg } = redGrid(gpu, bwdPartial, q);
  const part = gpu.empty([q.G, chunks, 2], 'norm partial gradient sums');
  gpu.dispatch(bwdPartial, { p, x, dy, coef, part }, wg);
  const sums = gpu.empty([q.G, 2], 'norm gradient sums');
  gpu.dispatch(bwdFinal, { p: { G: q.G, chunks }, part, sums }, gpu.fold(q.G, bwdFinal.name));
  gpu.release(part);
  return sums;
}

/** Gradient w.r.t. x. With `sums` (batch statistics) the gradient flows through the mean and variance;
 *  without (fixed running statistics) it is scale·dy. */
export function normBackwardInput(gpu: Gpu, x: RawTensor, dy: RawTensor, coef: RawTensor, sums: RawTensor | null, q: Groups, what: string): RawTensor {
  const dx = gpu.empty(x.shape, `${what} dx`);
  const { planes, wg } = elemGrid(gpu, bwdInput, x.shape, q);
  const p = { planes, hw: q.hw, G: q.G, invM: 1 / q.cnt, t: sums ? 1 : 0 };
  gpu.dispatch(bwdInput, { p, x, dy, coef, sums: sums ?? coef, dx }, wg);
  return dx;
}

/** Gradients w.r.t. weight and bias, [C] each, from the per-group sums. */
export function normBackwardParams(gpu: Gpu, sums: RawTensor, q: Groups, what: string): { dw: RawTensor; db: RawTensor } {
  const dw = gpu.empty([q.C], `${what} dweight`);
  const db = gpu.empty([q.C], `${what} dbias`);
  gpu.dispatch(bwdParams, { p: { C: q.C, reps: q.G / q.C }, sums, dw, db }, gpu.grid(bwdParams, q.C));
  return { dw, db };
}
