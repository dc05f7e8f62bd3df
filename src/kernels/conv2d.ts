// 2-D convolution (cross-correlation, PyTorch's Conv2d): NCHW input, OIHW weight, zero padding, any stride.
//     y[n, o, oh, ow] = b[o] + Σ_{i, kh, kw} x[n, i, oh·s − p + kh, ow·s − p + kw] · w[o, i, kh, kw]
// Forward is an implicit GEMM [Cout × Cin·kH·kW]·[Cin·kH·kW × N·OH·OW]. The weight is first repacked to
// [Cin·kH·kW, Cout] (conv-common.ts), so the weights of 4 output channels are one vec4 load. Each
// invocation accumulates a register tile of 4·TV output channels × TP consecutive output pixels of one row,
// looping over Cin·kH·kW; per input row it loads the window of (TP − 1)·s + kW input values once and
// reuses it for all kW taps. A workgroup shares one channel tile, so its weight loads are uniform.
// kH, kW and the stride are override constants (one pipeline per geometry) so the tap loops unroll.
// Backward: the input gradient is convTranspose2d's forward kernel with the same weight and conv2d's input
// size (the layer calls it); the weight and bias gradients are the shared kernels of conv-common.ts.
import { kernel, type Gpu, type RawTensor } from '../gpu/index.js';
import { convBiasGrad, convWeightGrad, repackWeight, type WeightLayout } from './conv-common.js';

/** vec4 groups of output channels per invocation (4·TV channels). */
const TV = 2;
/** Output pixels per invocation, along a row. */
const TP = 8;
/** Longest input window an invocation keeps in registers; wider kernels are walked in column chunks. */
const MAXWIN = 48;

const forward = kernel('conv2d.forward', /* wgsl */ `
struct P {
  C: u32, H: u32, W: u32, K: u32, OH: u32, OW: u32, padH: u32, padW: u32,
  tilesW: u32, coTiles: u32, Kv: u32, hasBias: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<vec4f>; // [Cin·kH·kW][Kv] vec4s of output channels
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
override WG: u32 = 64; // gpu.tileWorkgroup
override TV: u32 = ${TV}; // vec4 channel groups per invocation, at most 4
override TP: u32 = ${TP}; // output pixels per invocation, at most 16
override KH: u32 = 3;
override KW: u32 = 3;
override S: u32 = 1;
override KWC: u32 = 3; // kernel columns per input window, (TP − 1)·S + KWC ≤ ${MAXWIN}
const MAXV = 4u;
const MAXT = 16u;
const MAXWIN = ${MAXWIN}u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  // No early return: every lane runs the same loops (no divergent control flow), idle lanes just don't store.
  let tiles = p.OH * p.tilesW;
  let t0 = (wid.x + wid.y * nwg.x) * WG + lid;
  let live = t0 < tiles;
  let t = min(t0, tiles - 1u);
  let n = wid.z / p.coTiles;
  let v0 = (wid.z % p.coTiles) * TV;
  let oh = t / p.tilesW;
  let ow0 = (t % p.tilesW) * TP;
  let ih0 = i32(oh * S) - i32(p.padH);
  let iw0 = i32(ow0 * S) - i32(p.padW);
  let H = i32(p.H);
  let W = i32(p.W);
  var acc: array<array<vec4f, MAXT>, MAXV>;
  for (var v = 0u; v < TV; v++) { for (var j = 0u; j < TP; j++) { acc[v][j] = vec4f(0.0); } }

  for (var ci = 0u; ci < p.C; ci++) {
    let xoff = (n * p.C + ci) * p.H * p.W;
    for (var kh = 0u; kh < KH; kh++) {
      let ih = ih0 + i32(kh);
      let rowOk = ih >= 0 && ih < H;
      let xrow = xoff + u32(clamp(ih, 0, H - 1)) * p.W;
      let wrow = (ci * KH + kh) * KW * p.Kv + v0;
      for (var kc = 0u; kc < KW; kc += KWC) {
        var xw: array<f32, MAXWIN>;
        for (var q = 0u; q < (TP - 1u) * S + KWC; q++) {
          let iw = iw0 + i32(kc + q);
          xw[q] = select(0.0, x[xrow + u32(clamp(iw, 0, W - 1))], rowOk && iw >= 0 && iw < W);
        }
        for (var kw = 0u; kw < KWC; kw++) {
          if (kc + kw < KW) {
            for (var v = 0u; v < TV; v++) {
              let wv = wt[wrow + (kc + kw) * p.Kv + v];
              for (var j = 0u; j < TP; j++) { acc[v][j] = fma(vec4f(xw[j * S + kw]), wv, acc[v][j]); }
            }
          }
        }
      }
    }
  }
  if (!live) { return; }
  for (var v = 0u; v < TV; v++) {
    for (var c = 0u; c < 4u; c++) {
      let co = (v0 + v) * 4u + c;
      if (co >= p.K) { return; }
      let bias = select(0.0, b[co], p.hasBias != 0u);
      let yrow = ((n * p.K + co) * p.OH + oh) * p.OW;
      for (var j = 0u; j < TP; j++) {
        if (ow0 + j < p.OW) { y[yrow + ow0 + j] = acc[v][j][c] + bias; }
      }
    }
  }
}`);

/** Output extent of a convolution along one axis (PyTorch's floor rule). */
export const convOutSize = (n: number, k: number, stride: number, padding: number): number => Math.floor((n + 2 * padding - k) / stride) + 1;

/** x [N, Cin, H, W], w [Cout, Cin, kH, kW], b [Cout] or null → y [N, Cout, OH, OW]. Shapes are checked by the layer.
 *  With layout 'IOHW-flipped' the weight is a transposed convolution's [Cin', Cout', kH, kW] read rotated by
 *  180°: a stride-1 transposed convolution with padding p is that conv2d with padding k − 1 − p. */
export function conv2dForward(
  gpu: Gpu,
  x: RawTensor,
  w: RawTensor,
  b: RawTensor | null,
  stride: number,
  padding: number | readonly [number, number],
  what = 'conv2d',
  layout: WeightLayout = 'OIHW',
): RawTensor {
  const [N, C, H, W] = x.shape;
  const K = layout === 'OIHW' ? w.shape[0] : w.shape[1];
  const [, , KH, KW] = w.shape;
  const [padH, padW] = typeof padding === 'number' ? [padding, padding] : padding;
  const OH = convOutSize(H, KH, stride, padH);
  const OW = convOutSize(W, KW, stride, padW);
  if (N * K * OH * OW === 0 || C === 0) return gpu.zeros([N, K, OH, OW], `${what} output`, x.dtype);
  // Pixels per invocation: as many as fit the window (TP − 1)·s + 1 ≤ MAXWIN; kernel columns per window pass.
  // With one vec4 of output channels (the 3-channel output convs) twice the pixels keep the register tile
  // (measured on lavapipe: 9×9 64→3 @96² 161 → 130 ms).
  const tp = Math.max(1, Math.min(K <= 4 ? 2 * TP : TP, Math.floor((MAXWIN - 1) / stride) + 1));
  const kwc = Math.min(KW, MAXWIN - (tp - 1) * stride);
  const tv = K <= 4 ? 1 : TV;
  const coTiles = Math.ceil(K / (4 * tv));
  const Kv = coTiles * tv;
  // In f16 the repacked weight is f16 too: half the bytes every tap loads.
  const wt = repackWeight(gpu, w, layout, Kv * 4, what, x.dtype);
  const tilesW = Math.ceil(OW / tp);
  const wg = gpu.tileWorkgroup;
  const grid = gpu.fold(Math.ceil((OH * tilesW) / wg), what, N * coTiles);
  const y = gpu.empty([N, K, OH, OW], `${what} output`, x.dtype);
  gpu.dispatch(
    forward,
    { p: { C, H, W, K, OH, OW, padH, padW, tilesW, coTiles, Kv, hasBias: b ? 1 : 0 }, x, wt, b: b ?? x, y },
    grid,
    { KH, KW, S: stride, KWC: kwc, TP: tp, TV: tv, WG: wg },
  );
  gpu.release(wt);
  return y;
}

/** dW [Cout, Cin, kH, kW] = correlation of dy [N, Cout, OH, OW] with x [N, Cin, H, W]. */
export function conv2dBackwardWeight(gpu: Gpu, x: RawTensor, dy: RawTensor, kH: number, kW: number, stride: number, padding: number): RawTensor {
  return convWeightGrad(gpu, dy, x, kH, kW, stride, padding, 'conv2d');
}

/** db [Cout] = Σ dy over N, H, W. */
export function conv2dBackwardBias(gpu: Gpu, dy: RawTensor): RawTensor {
  return convBiasGrad(gpu, dy, 'conv2d');
}
