// MATLAB imresize(x, s, 'bicubic') for integer upscaling s, in float64, written from MATLAB's rule (no antialiasing
// when enlarging): output pixel x (1-based) maps to u = x/s + 0.5·(1 − 1/s); taps floor(u − 2) + 1 … + 4 with Keys'
// cubic (a = −0.5) weights of u − tap, normalised to sum 1; tap indices clamped to the image (edge replicate);
// height first, then width. Independent of src/io/bicubic.ts.
const cubic = (d: number): number => {
  const t = Math.abs(d);
  if (t <= 1) return 1.5 * t ** 3 - 2.5 * t ** 2 + 1;
  if (t < 2) return -0.5 * t ** 3 + 2.5 * t ** 2 - 4 * t + 2;
  return 0;
};

function upAxis(x: Float64Array, outer: number, n: number, inner: number, s: number): Float64Array {
  const m = n * s;
  const y = new Float64Array(outer * m * inner);
  for (let o = 1; o <= m; o++) {
    const u = o / s + 0.5 * (1 - 1 / s);
    const first = Math.floor(u - 2) + 1;
    const taps = [0, 1, 2, 3].map((k) => first + k);
    const w = taps.map((t) => cubic(u - t));
    const sum = w.reduce((a, b) => a + b, 0);
    for (let a = 0; a < outer; a++)
      for (let i = 0; i < inner; i++) {
        let v = 0;
        taps.forEach((t, k) => (v += (w[k] / sum) * x[(a * n + Math.min(n, Math.max(1, t)) - 1) * inner + i]));
        y[(a * m + o - 1) * inner + i] = v;
      }
  }
  return y;
}

/** x [N, C, H, W] enlarged s times: [N, C, H·s, W·s]. */
export function bicubicUpRef(x: Float64Array, [N, C, H, W]: readonly number[], s: number): Float64Array {
  return upAxis(upAxis(x, N * C, H, W, s), N * C * H * s, W, 1, s);
}
