// Pixel shuffle (PyTorch F.pixel_shuffle, "sub-pixel convolution", Shi et al. 2016): the r² channel groups of
// x [N, C·r², H, W] become r×r sub-pixel positions of y [N, C, H·r, W·r]:
//     y[n, c, h·r + i, w·r + j] = x[n, c·r² + i·r + j, h, w]
// A permutation, so the backward is the inverse gather.
import { kernel, numel, type Gpu, type RawTensor } from '../gpu/index.js';

const HEAD = /* wgsl */ `
// n: elements; C: output channels; H, W: input plane; r: factor.
struct P { n: u32, C: u32, H: u32, W: u32, r: u32 }
@group(0) @binding(0) var<uniform> p: P;
override WG: u32 = 256;
fn src(i: u32) -> u32 {
  // i indexes y [N, C, H·r, W·r]; the x element it comes from.
  let Wo = p.W * p.r;
  let Ho = p.H * p.r;
  let ox = i % Wo;
  let oy = (i / Wo) % Ho;
  let c = (i / (Wo * Ho)) % p.C;
  let n = i / (Wo * Ho * p.C);
  let ci = (c * p.r + oy % p.r) * p.r + ox % p.r;
  return ((n * p.C * p.r * p.r + ci) * p.H + oy / p.r) * p.W + ox / p.r;
}
`;
const ARGS = '@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u';

const forward = kernel('pixelShuffle.forward', `${HEAD}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(WG) fn main(${ARGS}) {
  let i = g.x + g.y * nw.x * WG;
  if (i >= p.n) { return; }
  y[i] = x[src(i)];
}`);

const backward = kernel('pixelShuffle.backward', `${HEAD}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(WG) fn main(${ARGS}) {
  let i = g.x + g.y * nw.x * WG;
  if (i >= p.n) { return; }
  dx[src(i)] = dy[i];
}`);

export function pixelShuffleForward(gpu: Gpu, x: RawTensor, r: number): RawTensor {
  const [N, Cr, H, W] = x.shape;
  const C = Cr / (r * r);
  const y = gpu.empty([N, C, H * r, W * r], 'pixelShuffle output', x.dtype);
  const n = numel(y.shape);
  gpu.dispatch(forward, { p: { n, C, H, W, r }, x, y }, gpu.grid(forward, n));
  return y;
}

/** dx [N, C·r², H, W] from dy [N, C, H·r, W·r]: every dx element is written once (a bijection). */
export function pixelShuffleBackward(gpu: Gpu, xShape: readonly number[], dy: RawTensor, r: number): RawTensor {
  const [, Cr, H, W] = xShape;
  const dx = gpu.empty(xShape, 'pixelShuffle dx');
  const n = numel(dy.shape);
  gpu.dispatch(backward, { p: { n, C: Cr / (r * r), H, W, r }, dy, dx }, gpu.grid(backward, n));
  return dx;
}
