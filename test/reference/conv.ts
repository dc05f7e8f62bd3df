// Float64 references for conv2d and convTranspose2d, written from the definitions with nested loops.
import type { RefOut } from '../helpers/opcheck.js';

export interface ConvGeom {
  N: number;
  Cin: number;
  Cout: number;
  H: number;
  W: number;
  kH: number;
  kW: number;
  stride: number;
  padding: number;
}

/** conv2d: y[n,o,oh,ow] = b[o] + Σ_{i,kh,kw} x[n,i,oh·s−p+kh,ow·s−p+kw] · w[o,i,kh,kw] (x is 0 outside). */
export function conv2dShape(g: ConvGeom): number[] {
  const OH = Math.floor((g.H + 2 * g.padding - g.kH) / g.stride) + 1;
  const OW = Math.floor((g.W + 2 * g.padding - g.kW) / g.stride) + 1;
  return [g.N, g.Cout, OH, OW];
}

/** Calls f(yIndex, xIndex, wIndex) for every term of the conv2d sum. */
function eachConvTerm(g: ConvGeom, f: (yi: number, xi: number, wi: number) => void): void {
  const [, , OH, OW] = conv2dShape(g);
  for (let n = 0; n < g.N; n++)
    for (let o = 0; o < g.Cout; o++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          const yi = ((n * g.Cout + o) * OH + oh) * OW + ow;
          for (let i = 0; i < g.Cin; i++)
            for (let kh = 0; kh < g.kH; kh++) {
              const ih = oh * g.stride - g.padding + kh;
              if (ih < 0 || ih >= g.H) continue;
              for (let kw = 0; kw < g.kW; kw++) {
                const iw = ow * g.stride - g.padding + kw;
                if (iw < 0 || iw >= g.W) continue;
                f(yi, ((n * g.Cin + i) * g.H + ih) * g.W + iw, ((o * g.Cin + i) * g.kH + kh) * g.kW + kw);
              }
            }
        }
}

function channelOf(yi: number, shape: number[]): number {
  return Math.floor(yi / (shape[2] * shape[3])) % shape[1];
}

export function conv2dRef(g: ConvGeom, x: Float64Array, w: Float64Array, b: Float64Array | null): RefOut {
  const shape = conv2dShape(g);
  const y = new Float64Array(shape.reduce((a, c) => a * c, 1));
  if (b) for (let k = 0; k < y.length; k++) y[k] = b[channelOf(k, shape)];
  eachConvTerm(g, (yi, xi, wi) => (y[yi] += x[xi] * w[wi]));
  return { y, shape };
}

/** Gradients of Σ dy·y w.r.t. x, w and b. */
export function conv2dVjp(g: ConvGeom, x: Float64Array, w: Float64Array, b: Float64Array | null, dy: Float64Array): (Float64Array | null)[] {
  const shape = conv2dShape(g);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  eachConvTerm(g, (yi, xi, wi) => {
    dx[xi] += dy[yi] * w[wi];
    dw[wi] += dy[yi] * x[xi];
  });
  const out: (Float64Array | null)[] = [dx, dw];
  if (b) {
    const db = new Float64Array(g.Cout);
    for (let k = 0; k < dy.length; k++) db[channelOf(k, shape)] += dy[k];
    out.push(db);
  }
  return out;
}

/** convTranspose2d: every input pixel scatters x[n,i,iy,ix]·w[i,o,kh,kw] to y[n,o,iy·s−p+kh, ix·s−p+kw]. */
export function convTranspose2dShape(g: ConvGeom, outputPadding: number): number[] {
  const OH = (g.H - 1) * g.stride - 2 * g.padding + g.kH + outputPadding;
  const OW = (g.W - 1) * g.stride - 2 * g.padding + g.kW + outputPadding;
  return [g.N, g.Cout, OH, OW];
}

function eachConvTransposeTerm(g: ConvGeom, outputPadding: number, f: (yi: number, xi: number, wi: number) => void): void {
  const [, , OH, OW] = convTranspose2dShape(g, outputPadding);
  for (let n = 0; n < g.N; n++)
    for (let i = 0; i < g.Cin; i++)
      for (let iy = 0; iy < g.H; iy++)
        for (let ix = 0; ix < g.W; ix++) {
          const xi = ((n * g.Cin + i) * g.H + iy) * g.W + ix;
          for (let o = 0; o < g.Cout; o++)
            for (let kh = 0; kh < g.kH; kh++) {
              const oy = iy * g.stride - g.padding + kh;
              if (oy < 0 || oy >= OH) continue;
              for (let kw = 0; kw < g.kW; kw++) {
                const ox = ix * g.stride - g.padding + kw;
                if (ox < 0 || ox >= OW) continue;
                f(((n * g.Cout + o) * OH + oy) * OW + ox, xi, ((i * g.Cout + o) * g.kH + kh) * g.kW + kw);
              }
            }
        }
}

export function convTranspose2dRef(g: ConvGeom, outputPadding: number, x: Float64Array, w: Float64Array, b: Float64Array | null): RefOut {
  const shape = convTranspose2dShape(g, outputPadding);
  const y = new Float64Array(shape.reduce((a, c) => a * c, 1));
  if (b) for (let k = 0; k < y.length; k++) y[k] = b[channelOf(k, shape)];
  eachConvTransposeTerm(g, outputPadding, (yi, xi, wi) => (y[yi] += x[xi] * w[wi]));
  return { y, shape };
}

export function convTranspose2dVjp(
  g: ConvGeom,
  outputPadding: number,
  x: Float64Array,
  w: Float64Array,
  b: Float64Array | null,
  dy: Float64Array,
): (Float64Array | null)[] {
  const shape = convTranspose2dShape(g, outputPadding);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  eachConvTransposeTerm(g, outputPadding, (yi, xi, wi) => {
    dx[xi] += dy[yi] * w[wi];
    dw[wi] += dy[yi] * x[xi];
  });
  const out: (Float64Array | null)[] = [dx, dw];
  if (b) {
    const db = new Float64Array(g.Cout);
    for (let k = 0; k < dy.length; k++) db[channelOf(k, shape)] += dy[k];
    out.push(db);
  }
  return out;
}
