// Affine bilinear warp of NCHW images: y[n,c,oy,ox] = bilinear sample of x[n,c] at A_n·(ox, oy, 1), A_n a 2×3 map
// of pixel coordinates (pixel centres at integers) per sample. Taps outside the source read 0 ('zeros') or the
// sample point is clamped into it first ('border', PyTorch grid_sample's padding modes).
// The backward pass (zeros only) is a gather, not a scatter (WGSL has no float atomics): input pixel (ix, iy)
// receives dy·(1 − |sx − ix|)(1 − |sy − iy|) from every output pixel whose sample point lies within one pixel of it.
// Those output pixels lie in the preimage of the square (ix ± 1, iy ± 1), a parallelogram whose bounding box comes
// from the inverse map; each one's weight is computed from the forward map again, so points of the box outside
// the parallelogram add exactly zero.
import { kernel, type Gpu, type RawTensor } from '../gpu/index.js';

const HEAD = /* wgsl */ `
struct P { C: u32, Hi: u32, Wi: u32, Ho: u32, Wo: u32, border: u32 }
@group(0) @binding(0) var<uniform> p: P;
override WG: u32 = 64;
`;

/** WGSL: the point that map `m` (an [N, 6] buffer of (a, b, c, d, e, f)) gives (ox, oy) of sample n. */
const mapFn = (name: string, m: string) => /* wgsl */ `
fn ${name}(n: u32, ox: f32, oy: f32) -> vec2f {
  let t = n * 6u;
  return vec2f(${m}[t] * ox + ${m}[t + 1u] * oy + ${m}[t + 2u], ${m}[t + 3u] * ox + ${m}[t + 4u] * oy + ${m}[t + 5u]);
}`;

// Grid: x covers a row of the output, y its rows, z its planes (n·C + c): no per-invocation division.
const forward = kernel('affineWarp.forward', `${HEAD}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> theta: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
${mapFn('source', 'theta')}
fn tap(base: u32, ix: i32, iy: i32) -> f32 {
  if (ix < 0 || iy < 0 || ix >= i32(p.Wi) || iy >= i32(p.Hi)) { return 0.0; }
  return x[base + u32(iy) * p.Wi + u32(ix)];
}
@compute @workgroup_size(WG) fn main(@builtin(global_invocation_id) g: vec3u) {
  let ox = g.x;
  let oy = g.y;
  let plane = g.z;
  if (ox >= p.Wo) { return; }
  var s = source(plane / p.C, f32(ox), f32(oy));
  if (p.border == 1u) { s = clamp(s, vec2f(0.0), vec2f(f32(p.Wi - 1u), f32(p.Hi - 1u))); }
  let f = floor(s);
  let a = s - f;
  let x0 = i32(f.x);
  let y0 = i32(f.y);
  let base = plane * p.Hi * p.Wi;
  let top = (1.0 - a.x) * tap(base, x0, y0) + a.x * tap(base, x0 + 1, y0);
  let bottom = (1.0 - a.x) * tap(base, x0, y0 + 1) + a.x * tap(base, x0 + 1, y0 + 1);
  y[(plane * p.Ho + oy) * p.Wo + ox] = (1.0 - a.y) * top + a.y * bottom;
}`);

const backward = kernel('affineWarp.backward', `${HEAD}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> theta: array<f32>;
@group(0) @binding(3) var<storage, read> inverse: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
${mapFn('source', 'theta')}
${mapFn('back', 'inverse')}
@compute @workgroup_size(WG) fn main(@builtin(global_invocation_id) g: vec3u) {
  let ix = g.x;
  let iy = g.y;
  let plane = g.z;
  if (ix >= p.Wi) { return; }
  let n = plane / p.C;
  // Bounding box of the preimage of (ix ± 1, iy ± 1): the inverse map of its four corners.
  var lo = vec2f(1e30);
  var hi = vec2f(-1e30);
  for (var k = 0u; k < 4u; k++) {
    let c = back(n, f32(ix) + select(-1.0, 1.0, (k & 1u) == 1u), f32(iy) + select(-1.0, 1.0, k >= 2u));
    lo = min(lo, c);
    hi = max(hi, c);
  }
  let x0 = u32(clamp(floor(lo.x), 0.0, f32(p.Wo)));
  let x1 = u32(clamp(ceil(hi.x) + 1.0, 0.0, f32(p.Wo)));
  let y0 = u32(clamp(floor(lo.y), 0.0, f32(p.Ho)));
  let y1 = u32(clamp(ceil(hi.y) + 1.0, 0.0, f32(p.Ho)));
  var acc = 0.0;
  for (var oy = y0; oy < y1; oy++) {
    for (var ox = x0; ox < x1; ox++) {
      let s = source(n, f32(ox), f32(oy));
      let w = max(vec2f(0.0), 1.0 - abs(s - vec2f(f32(ix), f32(iy))));
      acc += w.x * w.y * dy[(plane * p.Ho + oy) * p.Wo + ox];
    }
  }
  dx[(plane * p.Hi + iy) * p.Wi + ix] = acc;
}`);

function grid(gpu: Gpu, what: string, W: number, H: number, planes: number): [number, number, number] {
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (H > max || planes > max) throw new Error(`${what}: ${H} rows × ${planes} planes exceed the device's dispatch limits (${max} per dimension)`);
  return [Math.ceil(W / 64), H, planes];
}

/** theta: [N, 6] maps of output pixels to source points; border: clamp sample points into the source. */
export function affineWarpForward(gpu: Gpu, x: RawTensor, theta: RawTensor, Ho: number, Wo: number, border: boolean): RawTensor {
  const [N, C, Hi, Wi] = x.shape;
  const y = gpu.empty([N, C, Ho, Wo], 'affineWarp output');
  gpu.dispatch(forward, { p: { C, Hi, Wi, Ho, Wo, border: border ? 1 : 0 }, x, theta, y }, grid(gpu, forward.name, Wo, Ho, N * C));
  return y;
}

/** Gradient w.r.t. x (zero padding); inverse: [N, 6], the inverse maps of theta. */
export function affineWarpBackward(gpu: Gpu, xShape: readonly number[], dy: RawTensor, theta: RawTensor, inverse: RawTensor): RawTensor {
  const [N, C, Hi, Wi] = xShape;
  const [, , Ho, Wo] = dy.shape;
  const dx = gpu.empty(xShape, 'affineWarp dx');
  gpu.dispatch(backward, { p: { C, Hi, Wi, Ho, Wo, border: 0 }, dy, theta, inverse, dx }, grid(gpu, backward.name, Wi, Hi, N * C));
  return dx;
}
