// Normalisation kernels shared by batch norm and instance norm. Both normalise "groups" of elements: a
// group g is `cnt` elements made of segments of `hw` contiguous values, segment s starting at
// g·hw + s·seg. Batch norm: one group per channel, cnt = N·H·W, seg = C·H·W. Instance norm: one group per
// (n, c), cnt = H·W. An element at flat index i belongs to group (i / hw) % G.
//
// Statistics are reduced in two passes over a grid (chunks, groups): each workgroup turns one chunk of a
// group into (count, mean, M2) with per-invocation Welford updates and a shared-memory tree of Chan merges;
// a finalize pass merges a group's chunks the same way. No E[x²] − E[x]² anywhere (inputs in 0..255 keep
// full precision). The backward sums Σdy and Σdy·x̂ use the same chunked two-pass layout.
import { kernel, numel, type Gpu, type RawTensor } from '../gpu/index.js';

const WG = 256;
const HEAD = /* wgsl */ `
override WG: u32 = ${WG};
fn merge(a: vec3f, b: vec3f) -> vec3f {
  if (b.x == 0.0) { return a; }
  if (a.x == 0.0) { return b; }
  let n = a.x + b.x;
  let d = b.y - a.y;
  let f = b.x / n;
  return vec3f(n, a.y + d * f, a.z + b.z + d * d * a.x * f);
}`;
const RED = /* wgsl */ `
struct P { G: u32, hw: u32, cnt: u32, seg: u32, per: u32, chunks: u32 }
@group(0) @binding(0) var<uniform> p: P;
fn at(g: u32, j: u32) -> u32 { let s = j / p.hw; return g * p.hw + s * p.seg + (j - s * p.hw); }`;
const RED_ARGS = '@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) t: u32';
/** Tree reduction of sh[0..WG) into sh[0] (every invocation must reach it). */
const tree = (combine: string) => /* wgsl */ `
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) { sh[t] = ${combine}; }
    workgroupBarrier();
  }`;
const ELEM_ARGS = '@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u';
const ELEM_INDEX = 'let i = gid.x + gid.y * nwg.x * WG; if (i >= p.n) { return; }';

const statsPartial = kernel('norm.stats_partial', `${HEAD}${RED}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;
var<workgroup> sh: array<vec3f, WG>;
@compute @workgroup_size(WG) fn main(${RED_ARGS}) {
  let g = wid.y + wid.z * nwg.y;
  if (g >= p.G) { return; }
  let start = wid.x * WG * p.per;
  let end = min(start + WG * p.per, p.cnt);
  var a = vec3f(0.0);
  for (var j = start + t; j < end; j += WG) {
    let v = x[at(g, j)];
    a.x += 1.0;
    let d = v - a.y;
    a.y += d / a.x;
    a.z += d * (v - a.y);
  }
  sh[t] = a;${tree('merge(sh[t], sh[t + s])')}
  if (t == 0u) { let o = (g * p.chunks + wid.x) * 3u; part[o] = sh[0].x; part[o + 1u] = sh[0].y; part[o + 2u] = sh[0].z; }
}`);

const statsFinal = kernel('norm.stats_finalize', `${HEAD}
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
const coefK = kernel('norm.coef', `
struct P { G: u32, C: u32, hasW: u32, hasB: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> mean_: array<f32>;
@group(0) @binding(2) var<storage, read> var_: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> b: array<f32>;
@group(0) @binding(5) var<storage, read_write> coef: array<vec4f>;
override WG: u32 = 64;
@compute @workgroup_size(WG) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let g = gid.x;
  if (g >= p.G) { return; }
  let c = g % p.C;
  let invstd = 1.0 / sqrt(var_[g] + p.eps);
  var scale = invstd;
  if (p.hasW != 0u) { scale = w[c] * invstd; }
  var bias = 0.0;
  if (p.hasB != 0u) { bias = b[c]; }
  coef[g] = vec4f(mean_[g], invstd, scale, bias);
}`);

/** Batch norm running statistics, in place: r ← (1−m)·r + m·batch (variance unbiased by n/(n−1)). */
const runningK = kernel('batch_norm.update_running', `
struct P { C: u32, m: f32, unbias: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> mean_: array<f32>;
@group(0) @binding(2) var<storage, read> var_: array<f32>;
@group(0) @binding(3) var<storage, read_write> rm: array<f32>;
@group(0) @binding(4) var<storage, read_write> rv: array<f32>;
override WG: u32 = 64;
@compute @workgroup_size(WG) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.C) { return; }
  rm[c] = (1.0 - p.m) * rm[c] + p.m * mean_[c];
  rv[c] = (1.0 - p.m) * rv[c] + p.m * var_[c] * p.unbias;
}`);

const applyK = kernel('norm.forward', `
struct P { n: u32, hw: u32, G: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> coef: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
override WG: u32 = ${WG};
@compute @workgroup_size(WG) fn main(${ELEM_ARGS}) {
  ${ELEM_INDEX}
  let c = coef[(i / p.hw) % p.G];
  y[i] = (x[i] - c.x) * c.z + c.w;
}`);

const bwdPartial = kernel('norm.backward_partial', `${HEAD}${RED}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> coef: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> part: array<vec2f>;
var<workgroup> sh: array<vec2f, WG>;
@compute @workgroup_size(WG) fn main(${RED_ARGS}) {
  let g = wid.y + wid.z * nwg.y;
  if (g >= p.G) { return; }
  let c = coef[g];
  let start = wid.x * WG * p.per;
  let end = min(start + WG * p.per, p.cnt);
  var a = vec2f(0.0);
  for (var j = start + t; j < end; j += WG) {
    let k = at(g, j);
    let d = dy[k];
    a += vec2f(d, d * (x[k] - c.x) * c.y);
  }
  sh[t] = a;${tree('sh[t] + sh[t + s]')}
  if (t == 0u) { part[g * p.chunks + wid.x] = sh[0]; }
}`);

const bwdFinal = kernel('norm.backward_finalize', `
override WG: u32 = ${WG};
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
const bwdInput = kernel('norm.backward_input', `
struct P { n: u32, hw: u32, G: u32, invM: f32, t: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> coef: array<vec4f>;
@group(0) @binding(4) var<storage, read> sums: array<vec2f>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
override WG: u32 = ${WG};
@compute @workgroup_size(WG) fn main(${ELEM_ARGS}) {
  ${ELEM_INDEX}
  let g = (i / p.hw) % p.G;
  let c = coef[g];
  var d = dy[i];
  if (p.t != 0.0) {
    let s = sums[g];
    d -= (s.x + (x[i] - c.x) * c.y * s.y) * p.invM;
  }
  dx[i] = c.z * d;
}`);

/** dweight[c] = Σ_n Σdy·x̂ and dbias[c] = Σ_n Σdy over the groups of channel c (g = n·C + c). */
const bwdParams = kernel('norm.backward_params', `
struct P { C: u32, reps: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> sums: array<vec2f>;
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;
@group(0) @binding(3) var<storage, read_write> db: array<f32>;
override WG: u32 = 64;
@compute @workgroup_size(WG) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
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

function redGrid(gpu: Gpu, q: Groups): { per: number; chunks: number; wg: [number, number, number] } {
  const per = Math.max(4, Math.ceil(q.cnt / (WG * 4096)));
  const chunks = Math.max(1, Math.ceil(q.cnt / (WG * per)));
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  return { per, chunks, wg: [chunks, Math.min(q.G, max), Math.ceil(q.G / max)] };
}

/** Per-group mean and biased variance, [G] each. */
export function normStats(gpu: Gpu, x: RawTensor, q: Groups): { mean: RawTensor; var: RawTensor } {
  const { per, chunks, wg } = redGrid(gpu, q);
  const part = gpu.empty([q.G, chunks, 3], 'norm partial statistics');
  gpu.dispatch(statsPartial, { p: { G: q.G, hw: q.hw, cnt: q.cnt, seg: q.seg, per, chunks }, x, part }, wg);
  const mean = gpu.empty([q.G], 'norm mean');
  const var_ = gpu.empty([q.G], 'norm variance');
  gpu.dispatch(statsFinal, { p: { G: q.G, chunks }, part, mean_: mean, var_ }, gpu.grid(q.G, 1));
  gpu.release(part);
  return { mean, var: var_ };
}

/** [G,4] per group: mean, invstd = 1/√(var + eps), scale = weight·invstd, bias (weight 1, bias 0 if absent). */
export function normCoef(gpu: Gpu, mean: RawTensor, var_: RawTensor, w: RawTensor | null, b: RawTensor | null, q: Groups, eps: number): RawTensor {
  const coef = gpu.empty([q.G, 4], 'norm coefficients');
  const p = { G: q.G, C: q.C, hasW: w ? 1 : 0, hasB: b ? 1 : 0, eps };
  gpu.dispatch(coefK, { p, mean_: mean, var_, w: w ?? mean, b: b ?? mean, coef }, [Math.ceil(q.G / 64), 1, 1]);
  return coef;
}

/** In place: running ← (1−momentum)·running + momentum·batch, with the variance unbiased over n values. */
export function updateRunningStats(gpu: Gpu, rm: RawTensor, rv: RawTensor, mean: RawTensor, var_: RawTensor, momentum: number, n: number): void {
  const C = numel(rm.shape);
  gpu.dispatch(runningK, { p: { C, m: momentum, unbias: n / (n - 1) }, mean_: mean, var_, rm, rv }, [Math.ceil(C / 64), 1, 1]);
}

/** y = (x − mean)·scale + bias per group. */
export function normApply(gpu: Gpu, x: RawTensor, coef: RawTensor, q: Groups, what: string): RawTensor {
  const n = numel(x.shape);
  const y = gpu.empty(x.shape, `${what} output`);
  gpu.dispatch(applyK, { p: { n, hw: q.hw, G: q.G }, x, coef, y }, gpu.grid(n, WG));
  return y;
}

/** [G,2] per group: Σdy and Σdy·x̂. */
export function normBackwardSums(gpu: Gpu, x: RawTensor, dy: RawTensor, coef: RawTensor, q: Groups): RawTensor {
  const { per, chunks, wg } = redGrid(gpu, q);
  const part = gpu.empty([q.G, chunks, 2], 'norm partial gradient sums');
  gpu.dispatch(bwdPartial, { p: { G: q.G, hw: q.hw, cnt: q.cnt, seg: q.seg, per, chunks }, x, dy, coef, part }, wg);
  const sums = gpu.empty([q.G, 2], 'norm gradient sums');
  gpu.dispatch(bwdFinal, { p: { G: q.G, chunks }, part, sums }, gpu.grid(q.G, 1));
  gpu.release(part);
  return sums;
}

/** Gradient w.r.t. x. With `sums` (batch statistics) the gradient flows through the mean and variance;
 *  without (fixed running statistics) it is scale·dy. */
export function normBackwardInput(gpu: Gpu, x: RawTensor, dy: RawTensor, coef: RawTensor, sums: RawTensor | null, q: Groups, what: string): RawTensor {
  const n = numel(x.shape);
  const dx = gpu.empty(x.shape, `${what} dx`);
  const p = { n, hw: q.hw, G: q.G, invM: 1 / q.cnt, t: sums ? 1 : 0 };
  gpu.dispatch(bwdInput, { p, x, dy, coef, sums: sums ?? coef, dx }, gpu.grid(n, WG));
  return dx;
}

/** Gradients w.r.t. weight and bias, [C] each, from the per-group sums. */
export function normBackwardParams(gpu: Gpu, sums: RawTensor, q: Groups, what: string): { dw: RawTensor; db: RawTensor } {
  const dw = gpu.empty([q.C], `${what} dweight`);
  const db = gpu.empty([q.C], `${what} dbias`);
  gpu.dispatch(bwdParams, { p: { C: q.C, reps: q.G / q.C }, sums, dw, db }, [Math.ceil(q.C / 64), 1, 1]);
  return { dw, db };
}
