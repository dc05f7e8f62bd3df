// Fused scalar losses. The forward of each is the first pass of the tree reduction (kernels/reduce.ts)
// summing a per-element term, so the inputs are read once; the backward is one elementwise kernel
// scaled by the upstream gradient dy[0], read on the GPU.
//   mse:  mean((a − b)²);  d/da = 2(a − b)/n, d/db = −2(a − b)/n.
//   tv:   Σ (x[.., w+1] − x[.., w])² + (x[.., h+1, :] − x[.., h, :])² (squared anisotropic total variation).
import { kernel, numel, type Gpu, type RawTensor } from '../gpu/index.js';
import { reduceAll, reductionKernel } from './reduce.js';

const ARGS = '@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u';
const INDEX = 'let i = gid.x + gid.y * nwg.x * WG; if (i >= p.n) { return; }';

const mseK = reductionKernel(
  'mse.forward',
  '',
  `@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;`,
  'let d = a[i] - b[i]; return d * d;',
);

const mseBackK = kernel(
  'mse.backward',
  /* wgsl */ `
struct P { n: u32, s: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
override WG: u32 = 256;
@compute @workgroup_size(WG) fn main(${ARGS}) { ${INDEX} dx[i] = p.s * dy[0] * (a[i] - b[i]); }`,
);

// Index i of an [.., H, W] tensor: w = i % W, h = (i / W) % H.
const tvK = reductionKernel(
  'tv.forward',
  'H: u32, W: u32',
  '@group(0) @binding(2) var<storage, read> x: array<f32>;',
  `let w = i % p.W;
  let h = (i / p.W) % p.H;
  let v = x[i];
  var s = 0.0;
  if (w + 1u < p.W) { let d = x[i + 1u] - v; s += d * d; }
  if (h + 1u < p.H) { let d = x[i + p.W] - v; s += d * d; }
  return s;`,
);

const tvBackK = kernel(
  'tv.backward',
  /* wgsl */ `
struct P { n: u32, H: u32, W: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
override WG: u32 = 256;
@compute @workgroup_size(WG) fn main(${ARGS}) {
  ${INDEX}
  let w = i % p.W;
  let h = (i / p.W) % p.H;
  let v = x[i];
  // x[i] appears in the differences to its right/lower neighbour (as −) and its left/upper one (as +).
  var g = 0.0;
  if (w + 1u < p.W) { g -= x[i + 1u] - v; }
  if (w > 0u) { g += v - x[i - 1u]; }
  if (h + 1u < p.H) { g -= x[i + p.W] - v; }
  if (h > 0u) { g += v - x[i - p.W]; }
  dx[i] = 2.0 * dy[0] * g;
}`,
);

/** mean((a − b)²) as a [1] tensor; a and b have the same shape. */
export function mseForward(gpu: Gpu, a: RawTensor, b: RawTensor): RawTensor {
  const n = numel(a.shape);
  return reduceAll(gpu, mseK, { a, b }, {}, n, 1 / n, 'mse');
}

/** Gradient of mean((a − b)²)·dy[0] w.r.t. a (sign 1) or b (sign −1). */
export function mseBackward(gpu: Gpu, a: RawTensor, b: RawTensor, dy: RawTensor, sign: 1 | -1): RawTensor {
  const n = numel(a.shape);
  const dx = gpu.empty(a.shape, 'mse grad');
  gpu.dispatch(mseBackK, { p: { n, s: (2 * sign) / n }, a, b, dy, dx }, gpu.grid(mseBackK, n));
  return dx;
}

function hw(x: RawTensor): { H: number; W: number } {
  const s = x.shape;
  return { H: s.length >= 2 ? s[s.length - 2] : 1, W: s.length >= 1 ? s[s.length - 1] : 1 };
}

/** Squared anisotropic total variation over the last two dimensions, summed, as a [1] tensor. */
export function tvForward(gpu: Gpu, x: RawTensor): RawTensor {
  return reduceAll(gpu, tvK, { x }, hw(x), numel(x.shape), 1, 'tv');
}

export function tvBackward(gpu: Gpu, x: RawTensor, dy: RawTensor): RawTensor {
  const n = numel(x.shape);
  const dx = gpu.empty(x.shape, 'tv dx');
  gpu.dispatch(tvBackK, { p: { n, ...hw(x) }, x, dy, dx }, gpu.grid(tvBackK, n));
  return dx;
}
