// Float64 references for batch norm and instance norm, from the math (PyTorch semantics).
//   y = (x − μ)/√(σ² + ε)·w + b, with μ, σ² (biased) over the group: per channel over (N,H,W) for batch
//   norm in training, per (n,c) over (H,W) for instance norm; fixed running statistics in batch-norm eval.
// With batch statistics, for a group of M elements, x̂ = (x − μ)·s, s = 1/√(σ² + ε):
//   ∂L/∂x = w·s·(dy − mean(dy) − x̂·mean(dy·x̂)),  ∂L/∂w = Σ dy·x̂,  ∂L/∂b = Σ dy.
// With fixed statistics: ∂L/∂x = w·s·dy.
import type { RefOut } from '../helpers/opcheck.js';

/** Flat indices of each group and the channel each group belongs to. */
export function groups(shape: number[], perChannel: boolean): { idx: number[][]; ch: number[] } {
  const [N, C, H, W] = shape;
  const hw = H * W;
  const idx: number[][] = [];
  const ch: number[] = [];
  if (perChannel) {
    for (let c = 0; c < C; c++) {
      const g: number[] = [];
      for (let n = 0; n < N; n++) for (let i = 0; i < hw; i++) g.push((n * C + c) * hw + i);
      idx.push(g);
      ch.push(c);
    }
  } else {
    for (let n = 0; n < N; n++)
      for (let c = 0; c < C; c++) {
        const g: number[] = [];
        for (let i = 0; i < hw; i++) g.push((n * C + c) * hw + i);
        idx.push(g);
        ch.push(c);
      }
  }
  return { idx, ch };
}

/** Two-pass mean and biased variance of x over each group. */
export function groupStats(x: Float64Array, idx: number[][]): { mean: number[]; var: number[] } {
  const mean = idx.map((g) => g.reduce((s, i) => s + x[i], 0) / g.length);
  const var_ = idx.map((g, k) => g.reduce((s, i) => s + (x[i] - mean[k]) ** 2, 0) / g.length);
  return { mean, var: var_ };
}

export interface NormRefOpts {
  shape: number[];
  perChannel: boolean;
  eps: number;
  /** Fixed statistics (batch-norm eval): mean and variance per channel; otherwise batch statistics. */
  fixed?: { mean: Float64Array; var: Float64Array };
}

function stats(x: Float64Array, o: NormRefOpts) {
  const { idx, ch } = groups(o.shape, o.perChannel);
  const st = o.fixed ? { mean: [...o.fixed.mean], var: [...o.fixed.var] } : groupStats(x, idx);
  const s = st.var.map((v) => 1 / Math.sqrt(v + o.eps));
  return { idx, ch, mean: st.mean, s };
}

export function normRef(x: Float64Array, w: Float64Array | null, b: Float64Array | null, o: NormRefOpts): RefOut {
  const { idx, ch, mean, s } = stats(x, o);
  const y = new Float64Array(x.length);
  idx.forEach((g, k) => {
    const c = ch[k];
    for (const i of g) y[i] = (x[i] - mean[k]) * s[k] * (w ? w[c] : 1) + (b ? b[c] : 0);
  });
  return { y, shape: o.shape };
}

/** Gradients w.r.t. x, w, b (w/b null when absent). */
export function normVjp(x: Float64Array, w: Float64Array | null, b: Float64Array | null, dy: Float64Array, o: NormRefOpts) {
  const { idx, ch, mean, s } = stats(x, o);
  const C = o.shape[1];
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(C);
  const db = new Float64Array(C);
  idx.forEach((g, k) => {
    const c = ch[k];
    const M = g.length;
    let sdy = 0;
    let sdyx = 0;
    for (const i of g) {
      const xh = (x[i] - mean[k]) * s[k];
      sdy += dy[i];
      sdyx += dy[i] * xh;
    }
    dw[c] += sdyx;
    db[c] += sdy;
    const wc = w ? w[c] : 1;
    for (const i of g) {
      const xh = (x[i] - mean[k]) * s[k];
      dx[i] = o.fixed ? wc * s[k] * dy[i] : wc * s[k] * (dy[i] - sdy / M - (xh * sdyx) / M);
    }
  });
  return { dx, dw: w ? dw : null, db: b ? db : null };
}

/** PyTorch running statistics after one training step on x. */
export function runningUpdate(x: Float64Array, shape: number[], rm: Float64Array, rv: Float64Array, momentum: number) {
  const { idx } = groups(shape, true);
  const st = groupStats(x, idx);
  const n = idx[0].length;
  return {
    mean: rm.map((r, c) => (1 - momentum) * r + momentum * st.mean[c]),
    var: rv.map((r, c) => (1 - momentum) * r + (momentum * st.var[c] * n) / (n - 1)),
  };
}
