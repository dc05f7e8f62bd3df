// Gram matrices G[n] = F[n]·F[n]ᵀ · scale, F[n] a C×K matrix (K = H·W), and the backward
// dF[n] = (dG[n] + dG[n]ᵀ)·F[n] · scale. Both are tiled matrix products: a workgroup of TS×TS invocations
// owns a T×T output tile (T = TS·TM, each invocation a TM×TM register tile) and walks the reduction
// dimension in chunks of KT staged in workgroup memory.
// Forward: only tiles on or above the diagonal are computed (G is symmetric), and the K dimension is
// split into S slices when there are too few tiles to fill the GPU (C = 64 at K = 65536 is one tile);
// `gram.reduce` sums the slices and mirrors the upper tiles into the lower triangle.
import { kernel, type Gpu, type RawTensor } from '../gpu/index.js';

const TS = 16;
const TM = 4;
const T = TS * TM;
const KT = 16;
/** Fewest reduction terms per K slice, and the workgroup count the split aims for. */
const MIN_SLICE = 256;
const TARGET_GROUPS = 256;

const COMMON = /* wgsl */ `
override TS: u32 = ${TS};
override KT: u32 = ${KT};
const TM: u32 = ${TM};
var<workgroup> As: array<f32, KT * TS * ${TM}>;
var<workgroup> Bs: array<f32, KT * TS * ${TM}>;

// acc[r·TM + q] += Σ_c As[c][ty + r·TS] · Bs[c][tx + q·TS]
fn mac(acc: ptr<function, array<f32, ${TM * TM}>>, tx: u32, ty: u32) {
  let T = TS * TM;
  for (var c = 0u; c < KT; c++) {
    var a: array<f32, ${TM}>;
    var b: array<f32, ${TM}>;
    for (var r = 0u; r < TM; r++) { a[r] = As[c * T + ty + r * TS]; b[r] = Bs[c * T + tx + r * TS]; }
    for (var r = 0u; r < TM; r++) {
      for (var q = 0u; q < TM; q++) { (*acc)[r * TM + q] += a[r] * b[q]; }
    }
  }
}`;

const forwardK = kernel(
  'gram.forward',
  /* wgsl */ `
struct P { C: u32, K: u32, nb: u32, kPer: u32, N: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;
${COMMON}

@compute @workgroup_size(TS, TS)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let bi = wid.x / p.nb;
  let bj = wid.x % p.nb;
  if (bi > bj) { return; }
  let T = TS * TM;
  let s = wid.y;
  let n = wid.z;
  let i0 = bi * T;
  let j0 = bj * T;
  let kBeg = s * p.kPer;
  let kEnd = min(kBeg + p.kPer, p.K);
  let xb = n * p.C * p.K;
  let l = lid.y * TS + lid.x;
  var acc: array<f32, ${TM * TM}>;
  for (var k0 = kBeg; k0 < kEnd; k0 += KT) {
    // Rows of the tile along e / KT, k along e % KT: neighbouring invocations read neighbouring k.
    for (var e = l; e < T * KT; e += TS * TS) {
      let r = e / KT;
      let c = e % KT;
      let k = k0 + c;
      var va = 0.0;
      var vb = 0.0;
      if (k < kEnd) {
        if (i0 + r < p.C) { va = x[xb + (i0 + r) * p.K + k]; }
        if (j0 + r < p.C) { vb = x[xb + (j0 + r) * p.K + k]; }
      }
      As[c * T + r] = va;
      Bs[c * T + r] = vb;
    }
    workgroupBarrier();
    mac(&acc, lid.x, lid.y);
    workgroupBarrier();
  }
  let pb = (s * p.N + n) * p.C * p.C;
  for (var r = 0u; r < TM; r++) {
    let i = i0 + lid.y + r * TS;
    for (var q = 0u; q < TM; q++) {
      let j = j0 + lid.x + q * TS;
      if (i < p.C && j < p.C) { part[pb + i * p.C + j] = acc[r * TM + q]; }
    }
  }
}`,
);

const reduceK = kernel(
  'gram.reduce',
  /* wgsl */ `
struct P { C: u32, N: u32, S: u32, tile: u32, total: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> g: array<f32>;
override WG: u32 = 256;
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= p.total) { return; }
  let cc = p.C * p.C;
  let n = idx / cc;
  let i = (idx % cc) / p.C;
  let j = idx % p.C;
  // Only tiles with block(i) <= block(j) were computed: read the mirror otherwise.
  var src = i * p.C + j;
  if (i / p.tile > j / p.tile) { src = j * p.C + i; }
  var s = 0.0;
  for (var k = 0u; k < p.S; k++) { s += part[(k * p.N + n) * cc + src]; }
  g[idx] = s * p.scale;
}`,
);

const backwardK = kernel(
  'gram.backward',
  /* wgsl */ `
struct P { C: u32, K: u32, kBlocks: u32, rBlocks: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dg: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
${COMMON}

@compute @workgroup_size(TS, TS)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let kb = wid.x + wid.y * nwg.x;
  if (kb >= p.kBlocks) { return; }
  let T = TS * TM;
  let n = wid.z / p.rBlocks;
  let i0 = (wid.z % p.rBlocks) * T;
  let k0 = kb * T;
  let xb = n * p.C * p.K;
  let gb = n * p.C * p.C;
  let l = lid.y * TS + lid.x;
  var acc: array<f32, ${TM * TM}>;
  for (var j0 = 0u; j0 < p.C; j0 += KT) {
    for (var e = l; e < T * KT; e += TS * TS) {
      // As[c][r] = dG[i0+r, j0+c] + dG[j0+c, i0+r]
      let r = e / KT;
      let c = e % KT;
      let i = i0 + r;
      let j = j0 + c;
      var sv = 0.0;
      if (i < p.C && j < p.C) { sv = dg[gb + i * p.C + j] + dg[gb + j * p.C + i]; }
      As[c * T + r] = sv;
      // Bs[c][q] = F[j0+c, k0+q], neighbouring invocations along k.
      let c2 = e / T;
      let q = e % T;
      var fv = 0.0;
      if (j0 + c2 < p.C && k0 + q < p.K) { fv = x[xb + (j0 + c2) * p.K + k0 + q]; }
      Bs[c2 * T + q] = fv;
    }
    workgroupBarrier();
    mac(&acc, lid.x, lid.y);
    workgroupBarrier();
  }
  for (var r = 0u; r < TM; r++) {
    let i = i0 + lid.y + r * TS;
    for (var q = 0u; q < TM; q++) {
      let k = k0 + lid.x + q * TS;
      if (i < p.C && k < p.K) { dx[xb + i * p.K + k] = acc[r * TM + q] * p.scale; }
    }
  }
}`,
);

/** How many K slices the forward splits into, and their length (a multiple of KT). */
export function gramSplit(N: number, C: number, K: number): { S: number; kPer: number } {
  const nb = Math.ceil(C / T);
  const tiles = N * ((nb * (nb + 1)) / 2);
  let S = Math.max(1, Math.min(Math.ceil(K / MIN_SLICE), Math.ceil(TARGET_GROUPS / tiles)));
  const kPer = Math.max(KT, Math.ceil(Math.ceil(K / S) / KT) * KT);
  S = Math.max(1, Math.ceil(K / kPer));
  return { S, kPer };
}

/** x [N,C,H,W] → G [N,C,C], G[n] = F·Fᵀ · scale. */
export function gramForward(gpu: Gpu, x: RawTensor, scale: number): RawTensor {
  const [N, C, H, W] = x.shape;
  const K = H * W;
  const g = gpu.empty([N, C, C], 'gram output');
  const total = N * C * C;
  if (total === 0) return g;
  const nb = Math.ceil(C / T);
  const { S, kPer } = gramSplit(N, C, K);
  const part = K > 0 ? gpu.empty([S, N, C, C], 'gram partial products') : gpu.zeros([S, N, C, C], 'gram partial products');
  if (K > 0) gpu.dispatch(forwardK, { p: { C, K, nb, kPer, N }, x, part }, [nb * nb, S, N]);
  gpu.dispatch(reduceK, { p: { C, N, S, tile: T, total, scale }, part, g }, gpu.grid(reduceK, total));
  gpu.release(part);
  return g;
}

/** dx = (dG + dGᵀ)·F · scale, shaped like x. */
export function gramBackward(gpu: Gpu, x: RawTensor, dg: RawTensor, scale: number): RawTensor {
  const [N, C, H, W] = x.shape;
  const K = H * W;
  const dx = gpu.empty(x.shape, 'gram dx');
  if (N * C * K === 0) return dx;
  const kBlocks = Math.ceil(K / T);
  const rBlocks = Math.ceil(C / T);
  gpu.dispatch(backwardK, { p: { C, K, kBlocks, rBlocks, scale }, x, dg, dx }, gpu.fold(kBlocks, 'gram backward', N * rBlocks));
  return dx;
}
