// Kernels shared by conv2d and convTranspose2d: weight repacking for the forward kernels, the weight
// gradient (one correlation kernel for both ops, with the roles of input and upstream gradient swapped),
// and the bias gradient.
//
// Weight gradient, as a correlation of a "small-grid" tensor A [N, Ca, Ha, Wa] with a "large-grid" tensor
// B [N, Cb, Hb, Wb]:
//     dW[a, b, kh, kw] = Σ_{n, i, j} A[n, a, i, j] · B[n, b, i·s − p + kh, j·s − p + kw]   (B is 0 outside)
//   conv2d:          A = dy, B = x   → dW [Cout, Cin, kH, kW]  (OIHW)
//   convTranspose2d: A = x,  B = dy  → dW [Cin, Cout, kH, kW]  (IOHW)
// It is a GEMM [Ca × R]·[R × Cb·kH·kW] with R = N·Ha·Wa. Each invocation owns a register tile of TA rows
// (a; the same for the whole workgroup, so A loads are uniform) × TQ columns (flattened b, kh, kw) and
// walks the pixels of one chunk of R; chunks run in parallel workgroups and a second kernel sums them.
import { kernel, numel, type Dtype, type Gpu, type RawTensor } from '../gpu/index.js';

const repack = kernel('conv2d.repack_weight', /* wgsl */ `
struct P { n: u32, O: u32, KK: u32, so: u32, si: u32, Kp: u32, flip: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> wt: array<f32>;
override WG: u32 = 256;
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let idx = g.x + g.y * nw.x * WG;
  if (idx >= p.n) { return; }
  let o = idx % p.Kp;
  let r = idx / p.Kp;
  let k = select(r % p.KK, p.KK - 1u - r % p.KK, p.flip != 0u);
  let i = r / p.KK;
  wt[idx] = select(0.0, w[min(o, p.O - 1u) * p.so + i * p.si + k], o < p.O);
}`);

export type WeightLayout = 'OIHW' | 'IOHW' | 'IOHW-flipped';

/** A weight with output channels O and input channels I (OIHW: w [O, I, kH, kW]; IOHW: w [I, O, kH, kW];
 *  IOHW-flipped: IOHW rotated by 180° in (kH, kW)) repacked to [I·kH·kW, Kp]: the output channels of one tap
 *  contiguous, zero-padded to Kp ≥ O. */
export function repackWeight(gpu: Gpu, w: RawTensor, layout: WeightLayout, Kp: number, what: string, dtype: Dtype = 'f32'): RawTensor {
  const [d0, d1, kH, kW] = w.shape;
  const [O, I] = layout === 'OIHW' ? [d0, d1] : [d1, d0];
  const KK = kH * kW;
  const wt = gpu.empty([I * KK, Kp], `${what} repacked weight`, dtype);
  const n = numel(wt.shape);
  const [so, si] = layout === 'OIHW' ? [I * KK, KK] : [KK, O * KK];
  gpu.dispatch(repack, { p: { n, O, KK, so, si, Kp, flip: layout === 'IOHW-flipped' ? 1 : 0 }, w, wt }, gpu.grid(repack, n));
  return wt;
}

const DW_TA = 8;
const DW_TQ = 8;
/** Pixels of A per workgroup before the reduction is split across workgroups. */
const DW_CHUNK = 1024;
/** Cap on the partial-sum buffer (floats). */
const DW_MAX_PARTIAL = 1 << 24;

const weightGrad = kernel('conv2d.backward_weight', /* wgsl */ `
struct P {
  N: u32, Ca: u32, Ha: u32, Wa: u32,
  Cb: u32, Hb: u32, Wb: u32,
  KH: u32, KW: u32, stride: u32, pad: u32,
  qGroups: u32, rowsPer: u32, total: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;
override WG: u32 = 64; // gpu.tileWorkgroup
override TA: u32 = ${DW_TA}; // rows of dW (channels of A) per invocation, at most 16
override TQ: u32 = ${DW_TQ}; // columns of dW (flattened b, kh, kw) per invocation, at most 8
const MAXA = 16u;
const MAXQ = 8u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let Q = p.Cb * p.KH * p.KW;
  let g = wid.x + wid.y * nwg.x;
  let a0 = (g / p.qGroups) * TA;
  let qb = ((g % p.qGroups) * WG + lid) * TQ;
  let live = a0 < p.Ca && qb < Q;
  let HWa = p.Ha * p.Wa;
  let HWb = p.Hb * p.Wb;
  var boff: array<u32, MAXQ>;
  var kh: array<i32, MAXQ>;
  var kw: array<i32, MAXQ>;
  for (var t = 0u; t < TQ; t++) {
    let q = min(qb + t, Q - 1u);
    let k = q % (p.KH * p.KW);
    kh[t] = i32(k / p.KW);
    kw[t] = i32(k % p.KW);
    boff[t] = (q / (p.KH * p.KW)) * HWb;
  }
  var aoff: array<u32, MAXA>;
  for (var u = 0u; u < TA; u++) { aoff[u] = min(a0 + u, p.Ca - 1u) * HWa; }
  var acc: array<array<f32, MAXQ>, MAXA>;
  for (var u = 0u; u < TA; u++) { for (var t = 0u; t < TQ; t++) { acc[u][t] = 0.0; } }

  let s = i32(p.stride);
  let pd = i32(p.pad);
  let Hb = i32(p.Hb);
  let Wb = i32(p.Wb);
  let row0 = wid.z * p.rowsPer;
  let row1 = min(p.N * p.Ha, row0 + p.rowsPer);
  // Uniform loops over the pixels of this chunk: every lane reads the same A values.
  for (var row = row0; row < row1; row++) {
    let n = row / p.Ha;
    let i = row % p.Ha;
    let abase = n * p.Ca * HWa + i * p.Wa;
    let y0 = i32(i) * s - pd;
    var brow: array<u32, MAXQ>;
    var rowOk: array<bool, MAXQ>;
    for (var t = 0u; t < TQ; t++) {
      let yy = y0 + kh[t];
      rowOk[t] = yy >= 0 && yy < Hb;
      brow[t] = n * p.Cb * HWb + boff[t] + u32(clamp(yy, 0, Hb - 1) * Wb);
    }
    for (var j = 0u; j < p.Wa; j++) {
      let x0 = i32(j) * s - pd;
      var av: array<f32, MAXA>;
      for (var u = 0u; u < TA; u++) { av[u] = A[abase + aoff[u] + j]; }
      for (var t = 0u; t < TQ; t++) {
        let xx = x0 + kw[t];
        let bv = select(0.0, B[brow[t] + u32(clamp(xx, 0, Wb - 1))], rowOk[t] && xx >= 0 && xx < Wb);
        for (var u = 0u; u < TA; u++) { acc[u][t] = fma(av[u], bv, acc[u][t]); }
      }
    }
  }
  if (!live) { return; }
  for (var u = 0u; u < TA; u++) {
    let a = a0 + u;
    if (a >= p.Ca) { return; }
    for (var t = 0u; t < TQ; t++) {
      if (qb + t < Q) { part[wid.z * p.total + a * Q + qb + t] = acc[u][t]; }
    }
  }
}`);

const sumSplits = kernel('conv2d.backward_weight_sum', /* wgsl */ `
struct P { total: u32, splits: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;
override WG: u32 = 256;
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = g.x + g.y * nw.x * WG;
  if (i >= p.total) { return; }
  var s = 0.0;
  for (var k = 0u; k < p.splits; k++) { s += part[k * p.total + i]; }
  dw[i] = s;
}`);

/** dW [Ca, Cb, kH, kW] from A [N, Ca, Ha, Wa] and B [N, Cb, Hb, Wb] (see the top of this file). */
export function convWeightGrad(gpu: Gpu, a: RawTensor, b: RawTensor, kH: number, kW: number, stride: number, padding: number, what: string): RawTensor {
  const [N, Ca, Ha, Wa] = a.shape;
  const [, Cb, Hb, Wb] = b.shape;
  const Q = Cb * kH * kW;
  const total = Ca * Q;
  const rows = N * Ha;
  if (rows * Wa === 0 || total === 0) return gpu.zeros([Ca, Cb, kH, kW], `${what} weight grad`);
  const maxZ = gpu.limits.maxComputeWorkgroupsPerDimension;
  const wanted = Math.ceil((rows * Wa) / DW_CHUNK);
  const splitsCap = Math.max(1, Math.min(maxZ, Math.floor(DW_MAX_PARTIAL / total)));
  const rowsPer = Math.ceil(rows / Math.min(wanted, splitsCap, rows));
  const splits = Math.ceil(rows / rowsPer);
  const wg = gpu.tileWorkgroup;
  // Fewer rows than the tile (the 3-channel dy of an output conv) take a shorter tile, not idle registers.
  const ta = Math.min(DW_TA, Ca);
  const qGroups = Math.ceil(Q / (DW_TQ * wg));
  const grid = gpu.fold(Math.ceil(Ca / ta) * qGroups, what, splits);
  const dw = gpu.empty([Ca, Cb, kH, kW], `${what} weight grad`);
  const out = splits === 1 ? dw : gpu.empty([splits, total], `${what} weight grad partials`);
  gpu.dispatch(
    weightGrad,
    { p: { N, Ca, Ha, Wa, Cb, Hb, Wb, KH: kH, KW: kW, stride, pad: padding, qGroups, rowsPer, total }, A: a, B: b, part: out },
    grid,
    { WG: wg, TA: ta },
  );
  if (splits > 1) {
    gpu.dispatch(sumSplits, { p: { total, splits }, part: out, dw }, gpu.grid(sumSplits, total));
    gpu.release(out);
  }
  return dw;
}

const biasGrad = kernel('conv2d.backward_bias', /* wgsl */ `
struct P { N: u32, C: u32, HW: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;
override WG: u32 = 256; // a power of two (tree reduction)
var<workgroup> red: array<f32, WG>;
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x + wid.y * nwg.x;
  var s = 0.0;
  if (c < p.C) {
    for (var n = 0u; n < p.N; n++) {
      let base = (n * p.C + c) * p.HW;
      for (var i = lid; i < p.HW; i += WG) { s += dy[base + i]; }
    }
  }
  red[lid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k / 2u) {
    if (lid < k) { red[lid] += red[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u && c < p.C) { db[c] = red[0]; }
}`);

/** db[c] = Σ_{n,h,w} dy[n, c, h, w]. */
export function convBiasGrad(gpu: Gpu, dy: RawTensor, what: string): RawTensor {
  const [N, C, H, W] = dy.shape;
  const db = gpu.empty([C], `${what} bias grad`);
  gpu.dispatch(biasGrad, { p: { N, C, HW: H * W }, dy, db }, gpu.fold(C, what));
  return db;
}
