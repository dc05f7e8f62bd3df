// Instance-norm statistics carried across video frames: an exponential moving average over the frames of a batch
// (in order) and across batches. For channel c, frame n: m ← (1 − α)·m + α·mean[n, c] (the variance alike), and
// frame n is normalised with that m. The state [2, C] (mean row, variance row) stays on the GPU, so a driver keeps
// no readback in its loop; `fresh` starts it from the first frame's own statistics.
import { kernel, type Gpu, type RawTensor } from '../gpu/index.js';

const scan = kernel('temporalNorm.scan', /* wgsl */ `
struct P { N: u32, C: u32, alpha: f32, fresh: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> mean_: array<f32>;
@group(0) @binding(2) var<storage, read> var_: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;
@group(0) @binding(4) var<storage, read_write> outMean: array<f32>;
@group(0) @binding(5) var<storage, read_write> outVar: array<f32>;
override WG: u32 = 64;
@compute @workgroup_size(WG) fn main(@builtin(global_invocation_id) g: vec3u) {
  let c = g.x;
  if (c >= p.C) { return; }
  var m = state[c];
  var v = state[p.C + c];
  for (var n = 0u; n < p.N; n++) {
    let i = n * p.C + c;
    if (n == 0u && p.fresh == 1u) {
      m = mean_[i];
      v = var_[i];
    } else {
      m = mix(m, mean_[i], p.alpha);
      v = mix(v, var_[i], p.alpha);
    }
    outMean[i] = m;
    outVar[i] = v;
  }
  state[c] = m;
  state[p.C + c] = v;
}`);

/** Per-frame statistics [N·C] of a batch in → the averaged ones [N·C] out; `state` [2, C] is updated in place. */
export function temporalNormScan(gpu: Gpu, mean: RawTensor, var_: RawTensor, state: RawTensor, N: number, alpha: number, fresh: boolean): { mean: RawTensor; var: RawTensor } {
  const C = state.shape[1];
  const outMean = gpu.empty([N * C], 'temporalNorm mean');
  const outVar = gpu.empty([N * C], 'temporalNorm variance');
  gpu.dispatch(scan, { p: { N, C, alpha, fresh: fresh ? 1 : 0 }, mean_: mean, var_, state, outMean, outVar }, gpu.grid(scan, C));
  return { mean: outMean, var: outVar };
}
