// One fused Adam update per parameter, in place (torch.optim.Adam, single-tensor path):
//   g' = g + wd·p;  m = β1·m + (1−β1)·g';  v = β2·v + (1−β2)·g'²;
//   p −= stepSize · m / (sqrt(v) / bc2Sqrt + eps),  stepSize = lr / (1 − β1^t),  bc2Sqrt = sqrt(1 − β2^t).
// The bias corrections depend only on the step, so the CPU computes them and passes them as uniforms.
import { kernel, numel, type Gpu, type RawTensor } from '../gpu/index.js';


const adamK = kernel(
  'adam.step',
  /* wgsl */ `
// 1 − β is computed in float64 on the CPU (as PyTorch does): 1 − 0.999 in float32 is off by 1e-5 relative.
struct P { n: u32, beta1: f32, beta2: f32, omb1: f32, omb2: f32, eps: f32, weightDecay: f32, stepSize: f32, bc2Sqrt: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
override WG: u32 = 256;
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let w = param[i];
  let g = grad[i] + p.weightDecay * w;
  let mi = p.beta1 * m[i] + p.omb1 * g;
  let vi = p.beta2 * v[i] + p.omb2 * g * g;
  m[i] = mi;
  v[i] = vi;
  param[i] = w - p.stepSize * (mi / (sqrt(vi) / p.bc2Sqrt + p.eps));
}`,
);

export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** The step being taken, from 1. */
  step: number;
}

/** Updates param, m and v in place for step h.step. */
export function adamUpdate(gpu: Gpu, param: RawTensor, grad: RawTensor, m: RawTensor, v: RawTensor, h: AdamHyper): void {
  const n = numel(param.shape);
  const stepSize = h.lr / (1 - h.beta1 ** h.step);
  const bc2Sqrt = Math.sqrt(1 - h.beta2 ** h.step);
  gpu.dispatch(
    adamK,
    { p: { n, beta1: h.beta1, beta2: h.beta2, omb1: 1 - h.beta1, omb2: 1 - h.beta2, eps: h.eps, weightDecay: h.weightDecay, stepSize, bc2Sqrt }, param, grad, m, v },
    gpu.grid(adamK, n),
  );
}
