// Reflection padding and cropping of NCHW planes. Both backward passes are gathers over the input
// (one invocation per input pixel reads every output pixel copied from it): deterministic, no atomics.
import { kernel, numel, type Gpu, type RawTensor } from '../gpu/index.js';

/** Pixels removed (crop) or added (pad) on each side: [left, right, top, bottom]. */
export type Sides = readonly [number, number, number, number];

const HEAD = /* wgsl */ `
// n: output (forward) or input (backward) elements; H, W: input plane; Ho, Wo: output plane.
struct P { n: u32, H: u32, W: u32, Ho: u32, Wo: u32, left: u32, right: u32, top: u32, bottom: u32 }
@group(0) @binding(0) var<uniform> p: P;
override WG: u32 = 256;
`;
const ARGS = '@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u';
const INDEX = 'let i = g.x + g.y * nw.x * WG; if (i >= p.n) { return; }';

// PyTorch ReflectionPad2d: the edge pixel is not repeated; one reflection suffices since pad < size.
const padForward = kernel('reflectionPad2d.forward', `${HEAD}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
fn reflect(o: u32, before: u32, size: u32) -> u32 {
  let t = i32(o) - i32(before);
  var r = abs(t);
  if (r >= i32(size)) { r = 2 * (i32(size) - 1) - t; }
  return u32(r);
}
@compute @workgroup_size(WG) fn main(${ARGS}) {
  ${INDEX}
  let ox = i % p.Wo;
  let oy = (i / p.Wo) % p.Ho;
  let plane = i / (p.Wo * p.Ho);
  y[i] = x[(plane * p.H + reflect(oy, p.top, p.H)) * p.W + reflect(ox, p.left, p.W)];
}`);

// Input pixel iy is copied to output rows: iy + top (always), top − iy (reflected on the top side, for
// 1 ≤ iy ≤ top) and top + 2(H−1) − iy (reflected on the bottom side, for H−1−bottom ≤ iy ≤ H−2).
// The same holds for columns: at most 3 × 3 output pixels per input pixel.
const padBackward = kernel('reflectionPad2d.backward', `${HEAD}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
// Output coordinates copied from input coordinate c along one axis; count in .w.
fn sources(c: u32, before: u32, after: u32, size: u32) -> vec4u {
  var r = vec4u(c + before, 0u, 0u, 1u);
  if (c >= 1u && c <= before) { r[r.w] = before - c; r.w += 1u; }
  if (c + 2u <= size && c + 1u + after >= size) { r[r.w] = before + 2u * (size - 1u) - c; r.w += 1u; }
  return r;
}
@compute @workgroup_size(WG) fn main(${ARGS}) {
  ${INDEX}
  let ix = i % p.W;
  let iy = (i / p.W) % p.H;
  let plane = i / (p.W * p.H);
  let ys = sources(iy, p.top, p.bottom, p.H);
  let xs = sources(ix, p.left, p.right, p.W);
  var s = 0.0;
  for (var a = 0u; a < ys.w; a++) {
    let row = (plane * p.Ho + ys[a]) * p.Wo;
    for (var b = 0u; b < xs.w; b++) { s += dy[row + xs[b]]; }
  }
  dx[i] = s;
}`);

const cropForward = kernel('centerCrop2d.forward', `${HEAD}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(WG) fn main(${ARGS}) {
  ${INDEX}
  let ox = i % p.Wo;
  let oy = (i / p.Wo) % p.Ho;
  let plane = i / (p.Wo * p.Ho);
  y[i] = x[(plane * p.H + oy + p.top) * p.W + ox + p.left];
}`);

// The scatter into zeros written as a gather: every input pixel reads its output pixel or is 0.
const cropBackward = kernel('centerCrop2d.backward', `${HEAD}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(WG) fn main(${ARGS}) {
  ${INDEX}
  let ix = i % p.W;
  let iy = (i / p.W) % p.H;
  let plane = i / (p.W * p.H);
  var v = 0.0;
  if (ix >= p.left && ix < p.left + p.Wo && iy >= p.top && iy < p.top + p.Ho) {
    v = dy[(plane * p.Ho + iy - p.top) * p.Wo + ix - p.left];
  }
  dx[i] = v;
}`);

function uniforms(n: number, xShape: readonly number[], yShape: readonly number[], s: Sides) {
  return { n, H: xShape[2], W: xShape[3], Ho: yShape[2], Wo: yShape[3], left: s[0], right: s[1], top: s[2], bottom: s[3] };
}

/** x [N,C,H,W] → [N,C,H+top+bottom,W+left+right]; requires each pad < the padded dimension. */
export function reflectionPad2dForward(gpu: Gpu, x: RawTensor, pad: Sides): RawTensor {
  const [N, C, H, W] = x.shape;
  const y = gpu.empty([N, C, H + pad[2] + pad[3], W + pad[0] + pad[1]], 'reflectionPad2d output', x.dtype);
  const n = numel(y.shape);
  gpu.dispatch(padForward, { p: uniforms(n, x.shape, y.shape, pad), x, y }, gpu.grid(padForward, n));
  return y;
}

export function reflectionPad2dBackward(gpu: Gpu, xShape: readonly number[], dy: RawTensor, pad: Sides): RawTensor {
  const dx = gpu.empty(xShape, 'reflectionPad2d dx');
  const n = numel(xShape);
  gpu.dispatch(padBackward, { p: uniforms(n, xShape, dy.shape, pad), dy, dx }, gpu.grid(padBackward, n));
  return dx;
}

/** x [N,C,H,W] → [N,C,H−top−bottom,W−left−right]. */
export function centerCrop2dForward(gpu: Gpu, x: RawTensor, crop: Sides): RawTensor {
  const [N, C, H, W] = x.shape;
  const y = gpu.empty([N, C, H - crop[2] - crop[3], W - crop[0] - crop[1]], 'centerCrop2d output', x.dtype);
  const n = numel(y.shape);
  gpu.dispatch(cropForward, { p: uniforms(n, x.shape, y.shape, crop), x, y }, gpu.grid(cropForward, n));
  return y;
}

export function centerCrop2dBackward(gpu: Gpu, xShape: readonly number[], dy: RawTensor, crop: Sides): RawTensor {
  const dx = gpu.empty(xShape, 'centerCrop2d dx');
  const n = numel(xShape);
  gpu.dispatch(cropBackward, { p: uniforms(n, xShape, dy.shape, crop), dy, dx }, gpu.grid(cropBackward, n));
  return dx;
}
