// y[c] = Σ_s w[s]·p[s, c] for p [S, C] and constant weights w [S] (a blend of rows, e.g. the per-style γ and β
// of conditional instance norm), and its gradient dp[s, c] = w[s]·dy[c].
import { kernel, type Gpu, type RawTensor } from '../gpu/index.js';

const HEAD = /* wgsl */ `
struct P { S: u32, C: u32 }
@group(0) @binding(0) var<uniform> u: P;
override WG: u32 = 64;`;

const forward = kernel('mixRows.forward', `${HEAD}
@group(0) @binding(1) var<storage, read> p: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(WG) fn main(@builtin(global_invocation_id) g: vec3u) {
  let c = g.x;
  if (c >= u.C) { return; }
  var acc = 0.0;
  for (var s = 0u; s < u.S; s++) { acc += w[s] * p[s * u.C + c]; }
  y[c] = acc;
}`);

const backward = kernel('mixRows.backward', `${HEAD}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> dp: array<f32>;
@compute @workgroup_size(WG) fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = g.x + g.y * nw.x * WG;
  if (i >= u.S * u.C) { return; }
  dp[i] = w[i / u.C] * dy[i % u.C];
}`);

export function mixRowsForward(gpu: Gpu, p: RawTensor, w: RawTensor): RawTensor {
  const [S, C] = p.shape;
  const y = gpu.empty([C], 'mixRows output');
  gpu.dispatch(forward, { u: { S, C }, p, w, y }, gpu.grid(forward, C));
  return y;
}

export function mixRowsBackward(gpu: Gpu, dy: RawTensor, w: RawTensor, S: number): RawTensor {
  const C = dy.shape[0];
  const dp = gpu.empty([S, C], 'mixRows dp');
  gpu.dispatch(backward, { u: { S, C }, dy, w, dp }, gpu.grid(backward, S * C));
  return dp;
}
