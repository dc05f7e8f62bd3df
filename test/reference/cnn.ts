// Float64 references for whole CNNs (VGG-16, SqueezeNet 1.1) and the per-channel affine op, written from the
// definitions. A tiny reverse-mode tape over the per-op references of conv.ts and spatial.ts gives each network's
// VJP w.r.t. its input.
import { conv2dRef, conv2dVjp } from './conv.js';
import { avgPoolGlobalRef, concatRef, maxPoolRef, type Shape4 } from './spatial.js';

/** y[n,c] = scale[c] · x[n, perm[c]] + shift[c] over x [N, C, ...rest]. */
export function channelAffineRef(shape: number[], scale: number[], shift: number[], perm: number[] = scale.map((_, c) => c)) {
  const [N, C] = shape;
  const S = shape.slice(2).reduce((a, b) => a * b, 1);
  const Co = perm.length;
  const outShape = [N, Co, ...shape.slice(2)];
  return {
    ref: (x: Float64Array) => {
      const y = new Float64Array(N * Co * S);
      for (let n = 0; n < N; n++)
        for (let c = 0; c < Co; c++) for (let s = 0; s < S; s++) y[(n * Co + c) * S + s] = scale[c] * x[(n * C + perm[c]) * S + s] + shift[c];
      return { y, shape: outShape };
    },
    vjp: (_x: Float64Array, dy: Float64Array) => {
      const dx = new Float64Array(N * C * S);
      for (let n = 0; n < N; n++)
        for (let c = 0; c < Co; c++) for (let s = 0; s < S; s++) dx[(n * C + perm[c]) * S + s] += scale[c] * dy[(n * Co + c) * S + s];
      return dx;
    },
  };
}

/** Input preprocessings from their definitions (RGB 0..255 in). */
export const PREPROCESS_REF = {
  rgb01_imagenet_norm: (rgb: number[], c: number) => (rgb[c] / 255 - [0.485, 0.456, 0.406][c]) / [0.229, 0.224, 0.225][c],
  bgr255_mean_sub: (rgb: number[], c: number) => rgb[2 - c] - [103.939, 116.779, 123.68][c],
};

/** Applies a preprocessing to an NCHW RGB batch. */
export function preprocessRef(name: keyof typeof PREPROCESS_REF, x: Float64Array, shape: number[]): Float64Array {
  const [N, , H, W] = shape;
  const S = H * W;
  const y = new Float64Array(x.length);
  for (let n = 0; n < N; n++)
    for (let s = 0; s < S; s++) {
      const rgb = [0, 1, 2].map((c) => x[(n * 3 + c) * S + s]);
      for (let c = 0; c < 3; c++) y[(n * 3 + c) * S + s] = PREPROCESS_REF[name](rgb, c);
    }
  return y;
}

/** A value on the tape: data, shape, and the gradient accumulated during backward. */
export interface V {
  data: Float64Array;
  shape: number[];
  grad?: Float64Array;
}

export class Tape {
  private back: (() => void)[] = [];

  private node(data: Float64Array, shape: number[], inputs: V[], vjp: (dy: Float64Array) => Float64Array[]): V {
    const v: V = { data, shape };
    this.back.push(() => {
      if (!v.grad) return;
      vjp(v.grad).forEach((g, k) => {
        const t = inputs[k];
        if (!t.grad) t.grad = new Float64Array(t.data.length);
        for (let i = 0; i < g.length; i++) t.grad[i] += g[i];
      });
    });
    return v;
  }

  /** Gradient of Σ dy · out w.r.t. every value on the tape (read `.grad`). */
  backward(out: V, dy: Float64Array): void {
    out.grad = Float64Array.from(dy);
    for (let i = this.back.length - 1; i >= 0; i--) this.back[i]();
  }

  affine(x: V, scale: number[], shift: number[], perm?: number[]): V {
    const r = channelAffineRef(x.shape, scale, shift, perm);
    const { y, shape } = r.ref(x.data);
    return this.node(y, shape, [x], (dy) => [r.vjp(x.data, dy)]);
  }

  preprocess(x: V, name: keyof typeof PREPROCESS_REF): V {
    const [N, , H, W] = x.shape;
    const S = H * W;
    return this.node(preprocessRef(name, x.data, x.shape), x.shape, [x], (dy) => {
      const dx = new Float64Array(dy.length);
      for (let n = 0; n < N; n++)
        for (let c = 0; c < 3; c++)
          for (let s = 0; s < S; s++) {
            const o = (n * 3 + c) * S + s;
            // rgb01: d/dx of (x/255 − m)/σ is 1/(255σ); bgr255: output c is input 2 − c, slope 1.
            if (name === 'rgb01_imagenet_norm') dx[o] += dy[o] / (255 * [0.229, 0.224, 0.225][c]);
            else dx[(n * 3 + 2 - c) * S + s] += dy[o];
          }
      return [dx];
    });
  }

  conv(x: V, w: V, b: V, stride: number, padding: number): V {
    const [N, Cin, H, W] = x.shape;
    const [Cout, , kH, kW] = w.shape;
    const g = { N, Cin, Cout, H, W, kH, kW, stride, padding };
    const { y, shape } = conv2dRef(g, x.data, w.data, b.data);
    return this.node(y, shape, [x], (dy) => [conv2dVjp(g, x.data, w.data, b.data, dy)[0]!]);
  }

  relu(x: V): V {
    return this.node(
      x.data.map((v) => Math.max(v, 0)),
      x.shape,
      [x],
      (dy) => [dy.map((g, i) => (x.data[i] > 0 ? g : 0))],
    );
  }

  maxPool(x: V, k: number, s: number, ceil: boolean): V {
    const r = maxPoolRef(x.shape as Shape4, k, s, 0, ceil);
    const { y, shape } = r.ref(x.data);
    return this.node(y, shape, [x], (dy) => [r.vjp(x.data, dy)]);
  }

  concat(xs: V[]): V {
    const r = concatRef(
      xs.map((x) => x.shape),
      1,
    );
    const { y, shape } = r.ref(xs.map((x) => x.data));
    return this.node(y, shape, xs, (dy) => r.vjp(
      xs.map((x) => x.data),
      dy,
    ));
  }

  avgPoolGlobal(x: V): V {
    const r = avgPoolGlobalRef(x.shape as Shape4);
    const { y } = r.ref(x.data);
    // Flattened to [N, C], as the classifier's output.
    return this.node(y, [x.shape[0], x.shape[1]], [x], (dy) => [r.vjp(x.data, dy)]);
  }
}

export type State = Map<string, { data: Float32Array; shape: number[] }>;

function param(state: State, name: string): V {
  const t = state.get(name);
  if (!t) throw new Error(`reference: no tensor ${name}`);
  return { data: Float64Array.from(t.data), shape: t.shape };
}

/** torchvision's `features` layouts, written out by index from torchvision/models/vgg.py's cfgs "D" and "E":
 *  conv indices and pool indices (every other index is a ReLU). */
export const VGG_LAYOUT = {
  vgg16: { convs: [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28], pools: [4, 9, 16, 23, 30] },
  vgg19: { convs: [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34], pools: [4, 9, 18, 27, 36] },
};

/** torchvision vgg16()/vgg19().features[0..last] on x; returns the output of every layer (index → value). */
export function vggRef(tape: Tape, state: State, x: V, last: number, arch: keyof typeof VGG_LAYOUT = 'vgg16'): V[] {
  const { convs, pools } = VGG_LAYOUT[arch];
  const outs: V[] = [];
  let h = x;
  for (let i = 0; i <= last; i++) {
    if (convs.includes(i)) h = tape.conv(h, param(state, `features.${i}.weight`), param(state, `features.${i}.bias`), 1, 1);
    else if (pools.includes(i)) h = tape.maxPool(h, 2, 2, false);
    else h = tape.relu(h);
    outs.push(h);
  }
  return outs;
}

/** torchvision squeezenet1_1 on x: the output of features[0..12] and the logits [N, classes]. */
export function squeezenetRef(tape: Tape, state: State, x: V, last = 12, logits = true): { features: V[]; logits?: V } {
  const conv = (h: V, name: string, stride = 1, padding = 0) => tape.conv(h, param(state, `${name}.weight`), param(state, `${name}.bias`), stride, padding);
  const features: V[] = [];
  let h = x;
  for (let i = 0; i <= last; i++) {
    if (i === 0) h = conv(h, 'features.0', 2, 0);
    else if (i === 1) h = tape.relu(h);
    else if (i === 2 || i === 5 || i === 8) h = tape.maxPool(h, 3, 2, true);
    else {
      const s = tape.relu(conv(h, `features.${i}.squeeze`));
      h = tape.concat([tape.relu(conv(s, `features.${i}.expand1x1`)), tape.relu(conv(s, `features.${i}.expand3x3`, 1, 1))]);
    }
    features.push(h);
  }
  if (!logits) return { features };
  return { features, logits: tape.avgPoolGlobal(tape.relu(conv(h, 'classifier.1'))) };
}
