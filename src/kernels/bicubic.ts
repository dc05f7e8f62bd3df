// Separable resampling on the GPU: one 1-D pass along the height or the width of an NCHW tensor, with a
// resampling matrix in ELL form (every output reads `taps` inputs: indices and weights in two buffers).
// The matrix is computed on the CPU in float64 and passed as float32 (io/bicubic.ts): MATLAB's bicubic kernel
// with antialiasing when downscaling, or a Gaussian blur, or their transposes (the backward pass of a linear
// resampling is the resampling by the transposed matrix, again a gather). Clamped borders are folded into the
// indices. Taps are summed in order, as MATLAB does; with the dyadic ×2/×4 bicubic weights every product and
// partial sum is exact in float32, so the result equals the float64 one. `round` rounds each output half away
// from zero and clips it to 0..255 (MATLAB's uint8 intermediate).
import { kernel, numel, type Gpu, type RawTensor } from '../gpu/index.js';


const resampleK = kernel('resample1d.forward', /* wgsl */ `
// n: output elements; the tensor is seen as [outer, len, inner] with len = lin (input) or lout (output).
struct P { n: u32, lin: u32, lout: u32, inner: u32, taps: u32, round: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
override WG: u32 = 256;
@compute @workgroup_size(WG) fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = g.x + g.y * nw.x * WG;
  if (i >= p.n) { return; }
  let r = i % p.inner;
  let t = i / p.inner;
  let o = t % p.lout;
  let base = (t / p.lout) * p.lin * p.inner + r;
  var acc = 0.0;
  for (var k = 0u; k < p.taps; k++) {
    let j = o * p.taps + k;
    acc += w[j] * x[base + idx[j] * p.inner];
  }
  if (p.round != 0u) { acc = clamp(floor(acc + 0.5), 0.0, 255.0); }
  y[i] = acc;
}`);

/** A 1-D resampling on the CPU: output o = Σ_k weights[o·taps + k] · input[indices[o·taps + k]]. */
export interface ResampleSpec {
  inSize: number;
  outSize: number;
  taps: number;
  indices: ArrayLike<number>;
  weights: ArrayLike<number>;
}

/** The same on the GPU (indices as u32, weights as f32). */
export interface ResampleMatrix {
  inSize: number;
  outSize: number;
  taps: number;
  idx: RawTensor;
  w: RawTensor;
}

export function uploadResample(gpu: Gpu, m: ResampleSpec, what = 'resample'): ResampleMatrix {
  const n = m.outSize * m.taps;
  if (m.indices.length !== n || m.weights.length !== n) {
    throw new Error(`${what}: ${m.outSize} outputs × ${m.taps} taps need ${n} indices and weights, got ${m.indices.length} and ${m.weights.length}`);
  }
  for (let i = 0; i < n; i++) {
    const j = m.indices[i];
    if (!(Number.isInteger(j) && j >= 0 && j < m.inSize)) throw new Error(`${what}: index ${j} out of range 0..${m.inSize - 1}`);
  }
  // The runtime uploads Float32Array bytes as they are: the u32 indices travel as their bit pattern.
  const idx = gpu.upload(Uint32Array.from(m.indices), [n], `${what} indices`);
  const w = gpu.upload(Float32Array.from(m.weights), [n], `${what} weights`);
  return { inSize: m.inSize, outSize: m.outSize, taps: m.taps, idx, w };
}

export function releaseResample(gpu: Gpu, m: ResampleMatrix): void {
  gpu.release(m.idx);
  gpu.release(m.w);
}

/**
 * Resamples x [N, C, H, W] along `axis` (2: height, 3: width) with m (m.inSize must equal that dimension).
 * Returns [N, C, m.outSize, W] or [N, C, H, m.outSize].
 */
export function resampleAxis(gpu: Gpu, x: RawTensor, axis: 2 | 3, m: ResampleMatrix, round = false, what = 'resample1d output'): RawTensor {
  const [N, C, H, W] = x.shape;
  const lin = axis === 2 ? H : W;
  if (lin !== m.inSize) throw new Error(`resample1d: matrix for length ${m.inSize} applied to a dimension of ${lin} (x [${x.shape.join(',')}])`);
  const shape = axis === 2 ? [N, C, m.outSize, W] : [N, C, H, m.outSize];
  const y = gpu.empty(shape, what, x.dtype);
  const n = numel(shape);
  const p = { n, lin, lout: m.outSize, inner: axis === 2 ? W : 1, taps: m.taps, round: round ? 1 : 0 };
  gpu.dispatch(resampleK, { p, x, idx: m.idx, w: m.w, y }, gpu.grid(resampleK, n));
  return y;
}

/** Both passes in order, freeing the intermediate; each pass is rounded when `round`. */
export function resampleSeparable(gpu: Gpu, x: RawTensor, passes: readonly { axis: 2 | 3; m: ResampleSpec }[], round = false, what = 'resample'): RawTensor {
  let cur = x;
  for (const [i, { axis, m }] of passes.entries()) {
    const g = uploadResample(gpu, m, what);
    const next = resampleAxis(gpu, cur, axis, g, round, i === passes.length - 1 ? `${what} output` : `${what} intermediate`);
    releaseResample(gpu, g);
    if (cur !== x) gpu.release(cur);
    cur = next;
  }
  if (cur === x) {
    const y = gpu.empty(x.shape, `${what} output`, x.dtype);
    gpu.copy(x, y);
    return y;
  }
  return cur;
}
