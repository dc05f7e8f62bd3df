// Float64 references for spatial ops, written from the definitions (PyTorch semantics). Forward passes
// loop over output pixels; VJPs scatter each output gradient onto the input pixel it came from.
import type { RefOut } from '../helpers/opcheck.js';

export type Shape4 = [number, number, number, number];
/** [left, right, top, bottom] */
export type Sides4 = [number, number, number, number];

const at = (s: Shape4, n: number, c: number, h: number, w: number) => ((n * s[1] + c) * s[2] + h) * s[3] + w;

/** Loops over every pixel of an NCHW shape. */
function each(s: Shape4, f: (n: number, c: number, h: number, w: number) => void): void {
  for (let n = 0; n < s[0]; n++) for (let c = 0; c < s[1]; c++) for (let h = 0; h < s[2]; h++) for (let w = 0; w < s[3]; w++) f(n, c, h, w);
}

/** Reflection without repeating the edge: index −1 maps to 1, index size maps to size − 2. */
function reflectIndex(i: number, size: number): number {
  if (i < 0) return -i;
  if (i >= size) return 2 * (size - 1) - i;
  return i;
}

/** For each output pixel, the input pixel (flat index) its value is copied from. */
function padSources(s: Shape4, pad: Sides4): { out: Shape4; src: Int32Array } {
  const [l, r, t, b] = pad;
  const out: Shape4 = [s[0], s[1], s[2] + t + b, s[3] + l + r];
  const src = new Int32Array(out.reduce((a, v) => a * v, 1));
  each(out, (n, c, h, w) => {
    src[at(out, n, c, h, w)] = at(s, n, c, reflectIndex(h - t, s[2]), reflectIndex(w - l, s[3]));
  });
  return { out, src };
}

function gatherRef(x: Float64Array, out: Shape4, src: Int32Array): RefOut {
  return { y: Float64Array.from(src, (j) => x[j]), shape: out };
}

function scatterVjp(n: number, dy: Float64Array, src: Int32Array): Float64Array {
  const dx = new Float64Array(n);
  src.forEach((j, i) => (dx[j] += dy[i]));
  return dx;
}

export function reflectionPadRef(s: Shape4, pad: Sides4) {
  const { out, src } = padSources(s, pad);
  return {
    ref: (x: Float64Array): RefOut => gatherRef(x, out, src),
    vjp: (x: Float64Array, dy: Float64Array) => scatterVjp(x.length, dy, src),
  };
}

export function cropRef(s: Shape4, crop: Sides4) {
  const [l, r, t, b] = crop;
  const out: Shape4 = [s[0], s[1], s[2] - t - b, s[3] - l - r];
  const src = new Int32Array(out.reduce((a, v) => a * v, 1));
  each(out, (n, c, h, w) => (src[at(out, n, c, h, w)] = at(s, n, c, h + t, w + l)));
  return {
    ref: (x: Float64Array): RefOut => gatherRef(x, out, src),
    vjp: (x: Float64Array, dy: Float64Array) => scatterVjp(x.length, dy, src),
  };
}

export function upsampleRef(s: Shape4, scale: number) {
  const out: Shape4 = [s[0], s[1], s[2] * scale, s[3] * scale];
  const src = new Int32Array(out.reduce((a, v) => a * v, 1));
  each(out, (n, c, h, w) => (src[at(out, n, c, h, w)] = at(s, n, c, Math.floor(h / scale), Math.floor(w / scale))));
  return {
    ref: (x: Float64Array): RefOut => gatherRef(x, out, src),
    vjp: (x: Float64Array, dy: Float64Array) => scatterVjp(x.length, dy, src),
  };
}

/** PyTorch pooling output length: ceil or floor of (L + 2p − k)/s, plus one; in ceil mode a window that
 *  would start in the right padding (or beyond) is dropped. */
export function poolLen(L: number, k: number, s: number, p: number, ceil: boolean): number {
  const q = (L + 2 * p - k) / s;
  let out = (ceil ? Math.ceil(q) : Math.floor(q)) + 1;
  if (ceil && (out - 1) * s >= L + p) out -= 1;
  return out;
}

/** Max pooling with −inf padding; argmax = first maximum in row-major window order. */
export function maxPoolRef(s: Shape4, k: number, stride: number, pad: number, ceil: boolean) {
  const out: Shape4 = [s[0], s[1], poolLen(s[2], k, stride, pad, ceil), poolLen(s[3], k, stride, pad, ceil)];
  const argmax = (x: Float64Array): Int32Array => {
    const src = new Int32Array(out.reduce((a, v) => a * v, 1));
    each(out, (n, c, oh, ow) => {
      let best = -Infinity;
      let arg = -1;
      for (let a = 0; a < k; a++) {
        for (let b = 0; b < k; b++) {
          const h = oh * stride - pad + a;
          const w = ow * stride - pad + b;
          const inside = h >= 0 && h < s[2] && w >= 0 && w < s[3];
          const v = inside ? x[at(s, n, c, h, w)] : -Infinity;
          if (inside && (arg < 0 || v > best)) {
            best = v;
            arg = at(s, n, c, h, w);
          }
        }
      }
      if (arg < 0) throw new Error('maxPoolRef: a window holds no input pixel');
      src[at(out, n, c, oh, ow)] = arg;
    });
    return src;
  };
  return {
    out,
    ref: (x: Float64Array): RefOut => gatherRef(x, out, argmax(x)),
    vjp: (x: Float64Array, dy: Float64Array) => scatterVjp(x.length, dy, argmax(x)),
  };
}

export function avgPoolGlobalRef(s: Shape4) {
  const hw = s[2] * s[3];
  return {
    ref: (x: Float64Array): RefOut => {
      const y = new Float64Array(s[0] * s[1]);
      for (let i = 0; i < x.length; i++) y[Math.floor(i / hw)] += x[i];
      return { y: y.map((v) => v / hw), shape: [s[0], s[1], 1, 1] };
    },
    vjp: (x: Float64Array, dy: Float64Array) => x.map((_, i) => dy[Math.floor(i / hw)] / hw),
  };
}

/** Concatenation of arbitrary-rank tensors along dim, by multi-index. */
export function concatRef(shapes: number[][], dim: number) {
  const outShape = [...shapes[0]];
  outShape[dim] = shapes.reduce((a, s) => a + s[dim], 0);
  // For each output element: [which input, flat index in it].
  const total = outShape.reduce((a, v) => a * v, 1);
  const which = new Int32Array(total);
  const idx = new Int32Array(total);
  for (let i = 0; i < total; i++) {
    const m: number[] = [];
    let r = i;
    for (let d = outShape.length - 1; d >= 0; d--) {
      m[d] = r % outShape[d];
      r = Math.floor(r / outShape[d]);
    }
    let t = 0;
    while (m[dim] >= shapes[t][dim]) m[dim] -= shapes[t++][dim];
    which[i] = t;
    idx[i] = m.reduce((a, v, d) => a * shapes[t][d] + v, 0);
  }
  return {
    ref: (xs: Float64Array[]): RefOut => ({ y: Float64Array.from(which, (t, i) => xs[t][idx[i]]), shape: outShape }),
    vjp: (xs: Float64Array[], dy: Float64Array) => {
      const g = xs.map((x) => new Float64Array(x.length));
      which.forEach((t, i) => (g[t][idx[i]] += dy[i]));
      return g;
    },
  };
}
