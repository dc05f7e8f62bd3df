// Transposed 2-D convolution (PyTorch's ConvTranspose2d): NCHW input, IOHW weight [Cin, Cout, kH, kW].
//     y[n, o, oy, ox] = b[o] + Σ_{i, iy, ix, kh, kw : oy = iy·s − p + kh, ox = ix·s − p + kw} x[n, i, iy, ix] · w[i, o, kh, kw]
// with output size (H − 1)·s − 2p + kH + outputPadding. Written as a gather: an output pixel receives only
// the taps kh ≡ (oy + p) mod s (likewise kw), so output pixels are grouped by phase (oy mod s, ox mod s)
// and each workgroup works in one phase, where the taps are the same for every lane (uniform loops).
// Each invocation computes 4·TV output channels × TP output pixels ox, ox + s, ox + 2s, ... of one row:
// for a tap they read TP consecutive input pixels. The weight is repacked to [Cin·kH·kW, Cout] (vec4 loads
// of 4 output channels, see conv-common.ts).
// At stride 1 (padding < k) it runs conv2d's forward kernel instead, with the weight rotated by 180° and
// padding k − 1 − p, which unrolls its taps and reuses input windows.
// This kernel is also conv2d's input gradient (same weight, read as IOHW [in = conv2d's Cout, out = its
// Cin]), for which the output size is given explicitly: rows and columns a strided conv2d never read get 0.
// Backward: the input gradient is conv2d's forward kernel with the same weight (the layer calls it); the
// weight and bias gradients are the shared kernels of conv-common.ts.
import { kernel, type Gpu, type RawTensor } from '../gpu/index.js';
import { convBiasGrad, convWeightGrad, repackWeight } from './conv-common.js';
import { conv2dForward } from './conv2d.js';

const TV = 2;
const TP = 8;

const forward = kernel('convTranspose2d.forward', /* wgsl */ `
struct P {
  C: u32, H: u32, W: u32, K: u32, OH: u32, OW: u32,
  KH: u32, KW: u32, S: u32, pad: u32,
  rowsPP: u32, tilesPR: u32, groupsPP: u32, coTiles: u32, Kv: u32, hasBias: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<vec4f>; // [Cin·kH·kW][Kv] vec4s of output channels
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
override WG: u32 = 64; // gpu.tileWorkgroup
override TV: u32 = ${TV}; // vec4 channel groups per invocation, at most 4
override TP: u32 = ${TP}; // output pixels (same row, same phase) per invocation, at most 16
const MAXV = 4u;
const MAXT = 16u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let S = p.S;
  // Workgroups are phase-major: the phase, and so the taps, are uniform over a workgroup.
  let g = wid.x + wid.y * nwg.x;
  let phase = min(g / p.groupsPP, S * S - 1u);
  let tiles = p.rowsPP * p.tilesPR;
  let t0 = (g % p.groupsPP) * WG + lid;
  let t = min(t0, tiles - 1u);
  let qy = phase / S;
  let qx = phase % S;
  let oy = qy + S * (t / p.tilesPR);
  let ox0 = qx + S * (t % p.tilesPR) * TP;
  let live = g < S * S * p.groupsPP && t0 < tiles && oy < p.OH && ox0 < p.OW;
  let n = wid.z / p.coTiles;
  let v0 = (wid.z % p.coTiles) * TV;
  // Taps kh = kh0 + ty·s read input row iy = iyA − ty (likewise for columns).
  let kh0 = (qy + p.pad) % S;
  let kw0 = (qx + p.pad) % S;
  let nty = select(0u, (p.KH - kh0 + S - 1u) / S, p.KH > kh0);
  let ntx = select(0u, (p.KW - kw0 + S - 1u) / S, p.KW > kw0);
  let iyA = (i32(oy + p.pad) - i32(kh0)) / i32(S); // exact: the numerator is a multiple of s
  let ixA = (i32(ox0 + p.pad) - i32(kw0)) / i32(S);
  let H = i32(p.H);
  let W = i32(p.W);
  var acc: array<array<vec4f, MAXT>, MAXV>;
  for (var v = 0u; v < TV; v++) { for (var j = 0u; j < TP; j++) { acc[v][j] = vec4f(0.0); } }

  for (var ci = 0u; ci < p.C; ci++) {
    let xoff = (n * p.C + ci) * p.H * p.W;
    for (var ty = 0u; ty < nty; ty++) {
      let iy = iyA - i32(ty);
      let rowOk = iy >= 0 && iy < H;
      let xrow = xoff + u32(clamp(iy, 0, H - 1)) * p.W;
      let wrow = (ci * p.KH + kh0 + ty * S) * p.KW;
      for (var tx = 0u; tx < ntx; tx++) {
        var xv: array<f32, MAXT>;
        for (var j = 0u; j < TP; j++) {
          let ix = ixA - i32(tx) + i32(j);
          xv[j] = select(0.0, x[xrow + u32(clamp(ix, 0, W - 1))], rowOk && ix >= 0 && ix < W);
        }
        let wo = (wrow + kw0 + tx * S) * p.Kv + v0;
        for (var v = 0u; v < TV; v++) {
          let wv = wt[wo + v];
          for (var j = 0u; j < TP; j++) { acc[v][j] = fma(vec4f(xv[j]), wv, acc[v][j]); }
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
      let yrow = ((n * p.K + co) * p.OH + oy) * p.OW;
      for (var j = 0u; j < TP; j++) {
        let ox = ox0 + j * S;
        if (ox < p.OW) { y[yrow + ox] = acc[v][j][c] + bias; }
      }
    }
  }
}`);

/** Output extent of a transposed convolution along one axis. */
export const convTransposeOutSize = (n: number, k: number, stride: number, padding: number, outputPadding: number): number =>
  (n - 1) * stride - 2 * padding + k + outputPadding;

/** x [N, Cin, H, W], w [Cin, Cout, kH, kW], b [Cout] or null → y [N, Cout, OH, OW] with the given output size
 *  (the layer computes it from outputPadding; conv2d's input gradient passes conv2d's input size). */
export function convTranspose2dForward(
  gpu: Gpu,
  x: RawTensor,
  w: RawTensor,
  b: RawTensor | null,
  stride: number,
  padding: number,
  out: readonly [number, number],
  what = 'convTranspose2d',
): RawTensor {
  const [N, C, H, W] = x.shape;
  const [, K, KH, KW] = w.shape;
  const [OH, OW] = out;
  if (N * K * OH * OW === 0 || C === 0) return gpu.zeros([N, K, OH, OW], `${what} output`, x.dtype);
  if (stride === 1 && padding < KH && padding < KW && OH === H + KH - 1 - 2 * padding && OW === W + KW - 1 - 2 * padding) {
    // Stride 1: a plain correlation with the kernel rotated by 180° and padding k − 1 − p (as jax does it).
    return conv2dForward(gpu, x, w, b, 1, [KH - 1 - padding, KW - 1 - padding], what, 'IOHW-flipped');
  }
  const tv = K <= 4 ? 1 : TV;
  const coTiles = Math.ceil(K / (4 * tv));
  const Kv = coTiles * tv;
  const wt = repackWeight(gpu, w, 'IOHW', Kv * 4, what, x.dtype);
  const rowsPP = Math.ceil(OH / stride);
  const tilesPR = Math.ceil(Math.ceil(OW / stride) / TP);
  const wg = gpu.tileWorkgroup;
  const groupsPP = Math.ceil((rowsPP * tilesPR) / wg);
  const grid = gpu.fold(stride * stride * groupsPP, what, N * coTiles);
  const y = gpu.empty([N, K, OH, OW], `${what} output`, x.dtype);
  gpu.dispatch(
    forward,
    {
      p: { C, H, W, K, OH, OW, KH, KW, S: stride, pad: padding, rowsPP, tilesPR, groupsPP, coTiles, Kv, hasBias: b ? 1 : 0 },
      x,
      wt,
      b: b ?? x,
      y,
    },
    grid,
    { TV: tv, WG: wg },
  );
  gpu.release(wt);
  return y;
}

/** dW [Cin, Cout, kH, kW] = correlation of x [N, Cin, H, W] with dy [N, Cout, OH, OW]. */
export function convTranspose2dBackwardWeight(gpu: Gpu, x: RawTensor, dy: RawTensor, kH: number, kW: number, stride: number, padding: number): RawTensor {
  return convWeightGrad(gpu, x, dy, kH, kW, stride, padding, 'convTranspose2d');
}

/** db [Cout] = Σ dy over N, H, W. */
export function convTranspose2dBackwardBias(gpu: Gpu, dy: RawTensor): RawTensor {
  return convBiasGrad(gpu, dy, 'convTranspose2d');
}
