// Float64 references for the losses, from the math.
import type { RefOut } from '../helpers/opcheck.js';

/** mean((a − b)²). */
export function mseRef(a: Float64Array, b: Float64Array): RefOut {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return { y: Float64Array.of(s / a.length), shape: [1] };
}

/** [d/da, d/db] of mean((a − b)²)·dy. */
export function mseVjp(a: Float64Array, b: Float64Array, dy: Float64Array): [Float64Array, Float64Array] {
  const n = a.length;
  const da = a.map((v, i) => (2 * (v - b[i]) * dy[0]) / n);
  return [da, da.map((v) => -v)];
}

/** Σ over n,c,h,w of (x[h,w+1] − x[h,w])² + (x[h+1,w] − x[h,w])² for x [N,C,H,W]. */
export function tvRef(x: Float64Array, [N, C, H, W]: number[]): RefOut {
  const at = (p: number, h: number, w: number) => x[(p * H + h) * W + w];
  let s = 0;
  for (let p = 0; p < N * C; p++)
    for (let h = 0; h < H; h++)
      for (let w = 0; w < W; w++) {
        if (w + 1 < W) s += (at(p, h, w + 1) - at(p, h, w)) ** 2;
        if (h + 1 < H) s += (at(p, h + 1, w) - at(p, h, w)) ** 2;
      }
  return { y: Float64Array.of(s), shape: [1] };
}

/** Each squared difference (u − v)² sends 2(u − v)·dy to u and −2(u − v)·dy to v. */
export function tvVjp(x: Float64Array, [N, C, H, W]: number[], dy: Float64Array): Float64Array {
  const g = new Float64Array(x.length);
  const idx = (p: number, h: number, w: number) => (p * H + h) * W + w;
  const pair = (u: number, v: number) => {
    const d = 2 * (x[u] - x[v]) * dy[0];
    g[u] += d;
    g[v] -= d;
  };
  for (let p = 0; p < N * C; p++)
    for (let h = 0; h < H; h++)
      for (let w = 0; w < W; w++) {
        if (w + 1 < W) pair(idx(p, h, w + 1), idx(p, h, w));
        if (h + 1 < H) pair(idx(p, h + 1, w), idx(p, h, w));
      }
  return g;
}
