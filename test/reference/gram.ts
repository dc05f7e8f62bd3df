// Float64 reference for batched Gram matrices, from the math.
import type { RefOut } from '../helpers/opcheck.js';

/** G[n,c,d] = Σ_k F[n,c,k]·F[n,d,k] / (C·H·W) for F of shape [N,C,H,W] (k runs over H·W). */
export function gramRef(f: Float64Array, [N, C, H, W]: number[]): RefOut {
  const K = H * W;
  const y = new Float64Array(N * C * C);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let d = 0; d < C; d++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += f[(n * C + c) * K + k] * f[(n * C + d) * K + k];
        y[(n * C + c) * C + d] = s / (C * K);
      }
  return { y, shape: [N, C, C] };
}

/** Gradient of Σ dG·G w.r.t. F: each term F[c,k]·F[d,k] contributes dG[c,d]·F[d,k] to F[c,k] and
 *  dG[c,d]·F[c,k] to F[d,k], all over C·H·W. */
export function gramVjp(f: Float64Array, [N, C, H, W]: number[], dg: Float64Array): Float64Array {
  const K = H * W;
  const df = new Float64Array(f.length);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let d = 0; d < C; d++) {
        const g = dg[(n * C + c) * C + d] / (C * K);
        for (let k = 0; k < K; k++) {
          df[(n * C + c) * K + k] += g * f[(n * C + d) * K + k];
          df[(n * C + d) * K + k] += g * f[(n * C + c) * K + k];
        }
      }
  return df;
}
