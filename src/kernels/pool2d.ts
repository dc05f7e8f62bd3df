// Pooling over NCHW planes: max pooling (PyTorch semantics, argmax saved for backward) and global average
// pooling. Backward passes are gathers over the input: deterministic, no atomics.
import { kernel, numel, type Gpu, type RawTensor } from '../gpu/index.js';

const ARGS = '@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u';

export interface Pool2dGeometry {
  kernelSize: number;
  stride: number;
  padding: number;
}

const MAX_HEAD = /* wgsl */ `
// n: output (forward) or input (backward) elements; H, W: input plane; Ho, Wo: output plane.
struct P { n: u32, H: u32, W: u32, Ho: u32, Wo: u32, k: u32, s: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
override WG: u32 = 256;
`;

// Padding counts as −inf. The window is scanned row-major with a strict >, so the first maximum wins on
// ties, as in PyTorch; NaN propagates (the last NaN is the argmax, as in PyTorch's loop). argmax is the index within the plane.
const maxForward = kernel('maxPool2d.forward', `${MAX_HEAD}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> argmax: array<u32>;
@compute @workgroup_size(WG) fn main(${ARGS}) {
  let i = g.x + g.y * nw.x * WG;
  if (i >= p.n) { return; }
  let ox = i % p.Wo;
  let oy = (i / p.Wo) % p.Ho;
  let base = (i / (p.Wo * p.Ho)) * p.H * p.W;
  let hs = i32(oy * p.s) - i32(p.pad);
  let ws = i32(ox * p.s) - i32(p.pad);
  let h0 = u32(max(hs, 0));
  let w0 = u32(max(ws, 0));
  let h1 = u32(min(hs + i32(p.k), i32(p.H)));
  let w1 = u32(min(ws + i32(p.k), i32(p.W)));
  // Every window holds an input pixel (padding ≤ k/2, and PyTorch's output size), so −inf padding never
  // wins: start from the window's first input pixel.
  var am = h0 * p.W + w0;
  var m = x[base + am];
  for (var h = h0; h < h1; h++) {
    for (var w = w0; w < w1; w++) {
      let v = x[base + h * p.W + w];
      if (v > m || v != v) { m = v; am = h * p.W + w; }
    }
  }
  y[i] = m;
  argmax[i] = am;
}`);

// Input pixel (iy, ix) lies in the windows oy ∈ [ceil((iy + pad − k + 1)/s), floor((iy + pad)/s)] ∩ [0, Ho);
// it receives the gradient of each of those whose argmax it is, summed in a fixed order.
const maxBackward = kernel('maxPool2d.backward', `${MAX_HEAD}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> argmax: array<u32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
fn first(c: u32) -> u32 {
  let t = c + p.pad + 1u;
  return select(0u, (t - p.k + p.s - 1u) / p.s, t > p.k);
}
@compute @workgroup_size(WG) fn main(${ARGS}) {
  let i = g.x + g.y * nw.x * WG;
  if (i >= p.n) { return; }
  let ix = i % p.W;
  let iy = (i / p.W) % p.H;
  let plane = i / (p.W * p.H);
  let me = iy * p.W + ix;
  let y1 = min((iy + p.pad) / p.s + 1u, p.Ho);
  let x1 = min((ix + p.pad) / p.s + 1u, p.Wo);
  var s = 0.0;
  for (var oy = first(iy); oy < y1; oy++) {
    let row = (plane * p.Ho + oy) * p.Wo;
    for (var ox = first(ix); ox < x1; ox++) {
      if (argmax[row + ox] == me) { s += dy[row + ox]; }
    }
  }
  dx[i] = s;
}`);

/** y [N,C,Ho,Wo] and the argmax within each plane (u32 in a buffer of y's shape; not float data). */
export function maxPool2dForward(gpu: Gpu, x: RawTensor, g: Pool2dGeometry, outHW: readonly [number, number]): { y: RawTensor; argmax: RawTensor } {
  const [N, C, H, W] = x.shape;
  const shape = [N, C, outHW[0], outHW[1]];
  const y = gpu.empty(shape, 'maxPool2d output');
  const argmax = gpu.empty(shape, 'maxPool2d argmax');
  const n = numel(shape);
  const p = { n, H, W, Ho: outHW[0], Wo: outHW[1], k: g.kernelSize, s: g.stride, pad: g.padding };
  gpu.dispatch(maxForward, { p, x, y, argmax }, gpu.grid(maxForward, n));
  return { y, argmax };
}

export function maxPool2dBackward(gpu: Gpu, xShape: readonly number[], dy: RawTensor, argmax: RawTensor, g: Pool2dGeometry): RawTensor {
  const [, , H, W] = xShape;
  const dx = gpu.empty(xShape, 'maxPool2d dx');
  const n = numel(xShape);
  const p = { n, H, W, Ho: dy.shape[2], Wo: dy.shape[3], k: g.kernelSize, s: g.stride, pad: g.padding };
  gpu.dispatch(maxBackward, { p, dy, argmax, dx }, gpu.grid(maxBackward, n));
  return dx;
}

// ---- global average pooling: one workgroup per (n, c) plane -----------------------------------------

const AVG_HEAD = /* wgsl */ `
// planes: N·C; hw: pixels per plane; scale: 1/hw.
struct P { planes: u32, hw: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: P;
override WG: u32 = 256;
`;

const avgForward = kernel('avgPool2dGlobal.forward', `${AVG_HEAD}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
var<workgroup> part: array<f32, WG>;
@compute @workgroup_size(WG) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nw: vec3u,
                                     @builtin(local_invocation_index) t: u32) {
  let plane = wid.x + wid.y * nw.x;
  // The whole workgroup returns together, so the barriers below stay in uniform control flow.
  if (plane >= p.planes) { return; }
  let base = plane * p.hw;
  var s = 0.0;
  for (var j = t; j < p.hw; j += WG) { s += x[base + j]; }
  part[t] = s;
  for (var h = WG / 2u; h > 0u; h /= 2u) {
    workgroupBarrier();
    if (t < h) { part[t] += part[t + h]; }
  }
  if (t == 0u) { y[plane] = part[0] * p.scale; }
}`);

const avgBackward = kernel('avgPool2dGlobal.backward', `${AVG_HEAD}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(WG) fn main(${ARGS}) {
  let i = g.x + g.y * nw.x * WG;
  if (i >= p.planes * p.hw) { return; }
  dx[i] = dy[i / p.hw] * p.scale;
}`);

/** x [N,C,H,W] → [N,C,1,1], the mean of each plane. */
export function avgPool2dGlobalForward(gpu: Gpu, x: RawTensor): RawTensor {
  const [N, C, H, W] = x.shape;
  const y = gpu.empty([N, C, 1, 1], 'avgPool2dGlobal output');
  const planes = N * C;
  // WG must be a power of two for the tree reduction.
  gpu.dispatch(avgForward, { p: { planes, hw: H * W, scale: 1 / (H * W) }, x, y }, gpu.fold(planes, 'avgPool2dGlobal'));
  return y;
}

export function avgPool2dGlobalBackward(gpu: Gpu, xShape: readonly number[], dy: RawTensor): RawTensor {
  const [N, C, H, W] = xShape;
  const dx = gpu.empty(xShape, 'avgPool2dGlobal dx');
  const n = numel(xShape);
  gpu.dispatch(avgBackward, { p: { planes: N * C, hw: H * W, scale: 1 / (H * W) }, dy, dx }, gpu.grid(avgBackward, n));
  return dx;
}
