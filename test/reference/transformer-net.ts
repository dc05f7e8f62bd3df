// Float64 forward references of the style-transfer network, written from the architecture descriptions
// (pytorch/examples fast_neural_style `TransformerNet`; Johnson et al.'s supplementary material), on the
// per-op float64 references. Never derived from src/nets/transformer-net.ts.
import { conv2dRef, convTranspose2dRef } from './conv.js';
import { normRef } from './norm.js';
import { cropRef, reflectionPadRef, upsampleRef, type Shape4 } from './spatial.js';

export type State = Map<string, { data: Float32Array; shape: readonly number[] }>;

export interface A {
  data: Float64Array;
  shape: Shape4;
}

function get(state: State, name: string): Float64Array {
  const t = state.get(name);
  if (!t) throw new Error(`reference: no tensor ${name}`);
  return Float64Array.from(t.data);
}

function conv(state: State, x: A, name: string, stride: number, padding: number): A {
  const w = state.get(`${name}.weight`)!;
  const [Cout, Cin, kH, kW] = w.shape;
  const [N, C, H, W] = x.shape;
  if (C !== Cin) throw new Error(`reference: ${name} expects ${Cin} channels, got ${C}`);
  const { y, shape } = conv2dRef({ N, Cin, Cout, H, W, kH, kW, stride, padding }, x.data, get(state, `${name}.weight`), get(state, `${name}.bias`));
  return { data: y, shape: shape as Shape4 };
}

/** Transposed conv: weight [Cin, Cout, k, k]. */
function convT(state: State, x: A, name: string, stride: number, padding: number, outputPadding: number): A {
  const w = state.get(`${name}.weight`)!;
  const [Cin, Cout, kH, kW] = w.shape;
  const [N, , H, W] = x.shape;
  const g = { N, Cin, Cout, H, W, kH, kW, stride, padding };
  const { y, shape } = convTranspose2dRef(g, outputPadding, x.data, get(state, `${name}.weight`), get(state, `${name}.bias`));
  return { data: y, shape: shape as Shape4 };
}

export type NormMode = 'instance' | 'batch-train' | 'batch-eval';

/** Batch statistics (per channel over N, H, W; biased variance) of each norm's input, by norm name. */
export type Stats = Map<string, { mean: number[]; var: number[] }>;

function channelStats(x: A): { mean: number[]; var: number[] } {
  const [N, C, H, W] = x.shape;
  const S = H * W;
  const mean: number[] = [];
  const var_: number[] = [];
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) for (let i = 0; i < S; i++) s += x.data[(n * C + c) * S + i];
    const m = s / (N * S);
    let v = 0;
    for (let n = 0; n < N; n++) for (let i = 0; i < S; i++) v += (x.data[(n * C + c) * S + i] - m) ** 2;
    mean.push(m);
    var_.push(v / (N * S));
  }
  return { mean, var: var_ };
}

function norm(state: State, x: A, name: string, mode: NormMode, stats?: Stats): A {
  stats?.set(name, channelStats(x));
  const w = get(state, `${name}.weight`);
  const b = get(state, `${name}.bias`);
  const fixed = mode === 'batch-eval' ? { mean: get(state, `${name}.running_mean`), var: get(state, `${name}.running_var`) } : undefined;
  const { y } = normRef(x.data, w, b, { shape: x.shape, perChannel: mode !== 'instance', eps: 1e-5, fixed });
  return { data: y, shape: x.shape };
}

const relu = (x: A): A => ({ data: x.data.map((v) => Math.max(v, 0)), shape: x.shape });

function add(a: A, b: A): A {
  if (a.shape.some((d, i) => d !== b.shape[i])) throw new Error(`reference add: ${a.shape} vs ${b.shape}`);
  return { data: a.data.map((v, i) => v + b.data[i]), shape: a.shape };
}

function pad(x: A, p: number): A {
  const r = reflectionPadRef(x.shape, [p, p, p, p]);
  const { y, shape } = r.ref(x.data);
  return { data: y, shape: shape as Shape4 };
}

function upsample(x: A, s: number): A {
  const { y, shape } = upsampleRef(x.shape, s).ref(x.data);
  return { data: y, shape: shape as Shape4 };
}

export function crop(x: A, c: [number, number, number, number]): A {
  const { y, shape } = cropRef(x.shape, c).ref(x.data);
  return { data: y, shape: shape as Shape4 };
}

/** Whole-sample symmetric extension: index i of a length-n signal, reflected about 0 and n − 1 repeatedly
 *  (period 2(n − 1)); for |pad| < n this is PyTorch's ReflectionPad2d. */
function mirror(i: number, n: number): number {
  if (n === 1) return 0;
  const p = 2 * (n - 1);
  const m = ((i % p) + p) % p;
  return m < n ? m : p - m;
}

/** Mirror padding of any size: [left, right, top, bottom]. */
export function mirrorPad(x: A, [l, r, t, b]: [number, number, number, number]): A {
  const [N, C, H, W] = x.shape;
  const OH = H + t + b;
  const OW = W + l + r;
  const y = new Float64Array(N * C * OH * OW);
  for (let nc = 0; nc < N * C; nc++)
    for (let h = 0; h < OH; h++)
      for (let w = 0; w < OW; w++) y[(nc * OH + h) * OW + w] = x.data[(nc * H + mirror(h - t, H)) * W + mirror(w - l, W)];
  return { data: y, shape: [N, C, OH, OW] };
}

/** pytorch/examples TransformerNet.forward (exact upstream semantics: no size matching). */
export function pytorchExamplesRef(state: State, x: A): A {
  // ConvLayer: ReflectionPad2d(k // 2), Conv2d(stride) ; UpsampleConvLayer: nearest ×up first.
  const convLayer = (h: A, name: string, stride: number, up = 1) => {
    const k = state.get(`${name}.conv2d.weight`)!.shape[2];
    const u = up > 1 ? upsample(h, up) : h;
    return conv(state, pad(u, Math.floor(k / 2)), `${name}.conv2d`, stride, 0);
  };
  let y = relu(norm(state, convLayer(x, 'conv1', 1), 'in1', 'instance'));
  y = relu(norm(state, convLayer(y, 'conv2', 2), 'in2', 'instance'));
  y = relu(norm(state, convLayer(y, 'conv3', 2), 'in3', 'instance'));
  for (let i = 1; i <= 5; i++) {
    const r = `res${i}`;
    let o = relu(norm(state, convLayer(y, `${r}.conv1`, 1), `${r}.in1`, 'instance'));
    o = norm(state, convLayer(o, `${r}.conv2`, 1), `${r}.in2`, 'instance');
    y = add(o, y);
  }
  y = relu(norm(state, convLayer(y, 'deconv1', 1, 2), 'in4', 'instance'));
  y = relu(norm(state, convLayer(y, 'deconv2', 1, 2), 'in5', 'instance'));
  return convLayer(y, 'deconv3', 1);
}

/** The paper's network (supplementary, final version), every stage's output in `trace`, each norm's input
 *  statistics in `stats`. */
export function paperRef(state: State, x: A, mode: NormMode, trace: A[] = [], stats?: Stats): A {
  const t = (a: A) => (trace.push(a), a);
  const norm_ = (a: A, name: string, m: NormMode) => norm(state, a, name, m, stats);
  let y = t(mirrorPad(x, [40, 40, 40, 40]));
  y = t(relu(norm_(conv(state, y, 'conv1', 1, 4), 'norm1', mode)));
  y = t(relu(norm_(conv(state, y, 'conv2', 2, 1), 'norm2', mode)));
  y = t(relu(norm_(conv(state, y, 'conv3', 2, 1), 'norm3', mode)));
  for (let i = 1; i <= 5; i++) {
    const r = `res${i}`;
    let o = relu(norm_(conv(state, y, `${r}.conv1`, 1, 0), `${r}.norm1`, mode));
    o = norm_(conv(state, o, `${r}.conv2`, 1, 0), `${r}.norm2`, mode);
    y = t(add(crop(y, [2, 2, 2, 2]), o));
  }
  y = t(relu(norm_(convT(state, y, 'deconv1', 2, 1, 1), 'norm4', mode)));
  y = t(relu(norm_(convT(state, y, 'deconv2', 2, 1, 1), 'norm5', mode)));
  y = conv(state, y, 'conv4', 1, 4);
  return t({ data: y.data.map((v) => 127.5 * Math.tanh(v) + 127.5), shape: y.shape });
}

/** Size matching as documented: mirror-pad right/bottom to a multiple of 4, run, crop back. */
export function matchSize(x: A, f: (x: A) => A): A {
  const [, , H, W] = x.shape;
  const ph = (4 - (H % 4)) % 4;
  const pw = (4 - (W % 4)) % 4;
  const y = f(mirrorPad(x, [0, pw, 0, ph]));
  return crop(y, [0, y.shape[3] - W, 0, y.shape[2] - H]);
}
