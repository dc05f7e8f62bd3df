// Per-channel affine map with a channel gather: y[n,c,...] = scale[c] · x[n, src[c], ...] + shift[c].
// It turns 0..255 RGB images into what a loss network's weights expect (RGB→BGR, mean, std) in one pass.
// Backward is a gather too: each input channel j sums scale[c] · dy[n,c] over the output channels c that
// read it, listed in CSR form (off[j]..off[j+1] index into lst), so no atomics are needed.
import { kernel, numel, type Gpu, type RawTensor } from '../gpu/index.js';

const ARGS = '@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u';

const HEAD = /* wgsl */ `
// n: output (forward) or input (backward) elements; S: elements per channel plane;
// Ci, Co: input and output channels.
struct P { n: u32, S: u32, Ci: u32, Co: u32 }
@group(0) @binding(0) var<uniform> p: P;
override WG: u32 = 256;
`;

// sc = [scale(Co), shift(Co)]; src[c] = the input channel output channel c reads.
const forward = kernel('channelAffine.forward', `${HEAD}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> sc: array<f32>;
@group(0) @binding(3) var<storage, read> src: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(WG) fn main(${ARGS}) {
  let i = g.x + g.y * nw.x * WG;
  if (i >= p.n) { return; }
  let s = i % p.S;
  let c = (i / p.S) % p.Co;
  let b = i / (p.S * p.Co);
  y[i] = sc[c] * x[(b * p.Ci + src[c]) * p.S + s] + sc[p.Co + c];
}`);

// idx = [off(Ci + 1), lst(Co)]: the output channels reading input channel j are lst[off[j]..off[j+1]).
const backward = kernel('channelAffine.backward', `${HEAD}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> sc: array<f32>;
@group(0) @binding(3) var<storage, read> idx: array<u32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(WG) fn main(${ARGS}) {
  let i = g.x + g.y * nw.x * WG;
  if (i >= p.n) { return; }
  let s = i % p.S;
  let j = (i / p.S) % p.Ci;
  let b = i / (p.S * p.Ci);
  var acc = 0.0;
  for (var k = idx[j]; k < idx[j + 1u]; k++) {
    let c = idx[p.Ci + 1u + k];
    acc += sc[c] * dy[(b * p.Co + c) * p.S + s];
  }
  dx[i] = acc;
}`);

function uploadU32(gpu: Gpu, values: readonly number[], what: string): RawTensor {
  return gpu.upload(Uint32Array.from(values), [values.length], what);
}

/** x [N, Ci, ...] → y [N, Co, ...] with Co = scale.length = shift.length = src.length; src[c] < Ci (checked by the layer). */
export function channelAffineForward(gpu: Gpu, x: RawTensor, scale: readonly number[], shift: readonly number[], src: readonly number[]): RawTensor {
  const [N, Ci] = x.shape;
  const Co = src.length;
  const S = numel(x.shape.slice(2));
  const y = gpu.empty([N, Co, ...x.shape.slice(2)], 'channelAffine output', x.dtype);
  const sc = gpu.upload([...scale, ...shift], [2 * Co], 'channelAffine scale/shift');
  const si = uploadU32(gpu, src, 'channelAffine channels');
  const n = numel(y.shape);
  gpu.dispatch(forward, { p: { n, S, Ci, Co }, x, sc, src: si, y }, gpu.grid(forward, n));
  gpu.release(sc);
  gpu.release(si);
  return y;
}

/** dx [N, Ci, ...] from dy [N, Co, ...]: dx[n,j] = Σ_{c: src[c] = j} scale[c] · dy[n,c]. */
export function channelAffineBackward(gpu: Gpu, xShape: readonly number[], dy: RawTensor, scale: readonly number[], src: readonly number[]): RawTensor {
  const [N, Ci] = xShape;
  const Co = src.length;
  const S = numel(xShape.slice(2));
  const off = new Array<number>(Ci + 1).fill(0);
  for (const j of src) off[j + 1]++;
  for (let j = 0; j < Ci; j++) off[j + 1] += off[j];
  const lst = new Array<number>(Co);
  const fill = off.slice(0, Ci);
  src.forEach((j, c) => (lst[fill[j]++] = c));
  const dx = gpu.empty(xShape, 'channelAffine dx');
  const sc = gpu.upload(scale, [Co], 'channelAffine scale');
  const idx = uploadU32(gpu, [...off, ...lst], 'channelAffine channel lists');
  const n = N * Ci * S;
  gpu.dispatch(backward, { p: { n, S, Ci, Co }, dy, sc, idx, dx }, gpu.grid(backward, n));
  gpu.release(sc);
  gpu.release(idx);
  return dx;
}
