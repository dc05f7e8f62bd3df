// L-BFGS on GPU buffers with torch.optim.LBFGS semantics (itself a port of torch/optim's lbfgs.lua, which
// Johnson's neural-style used for the Gatys et al. baseline): history 100, two-loop recursion, curvature pairs
// skipped when y·s ≤ 1e-10, initial inverse Hessian H_diag = y·s / y·y, stopping tests on max|g|, max|t·d|, the
// loss change and g·d, `maxIter` iterations per step() and `maxEval` evaluations.
//
// Step length (`lineSearch`):
//  - 'none' (default, torch's line_search_fn=None, lua optim.lbfgs without lineSearch): a fixed step t = lr,
//    the very first one scaled by min(1, 1/|g|₁). Each iteration costs exactly one evaluation; this is what
//    neural-style ran (with tolX = tolFun = -1, i.e. no early stopping: pass toleranceGrad/Change = -1).
//  - 'strong_wolfe': torch's _strong_wolfe (cubic interpolation, c1 1e-4, c2 0.9, 25 evaluations at most).
//
// All parameters form one flat vector; the history (2·historySize vectors), the direction and the gradients are
// GPU buffers, and every dot product and axpy runs as a kernel (kernels/blas.ts). The two-loop recursion takes
// its coefficients from the dot products on the GPU, so only scalars come back: per iteration one readback of
// [loss, max|g|, y·s, y·y] after the evaluation and one of [g·d, max|d|] (plus |g|₁ on the first iteration)
// before the step; the strong-Wolfe search reads [f, g·d] per trial point.
//
// The closure computes the loss from the parameters and calls backward() on it. The optimiser clears the
// parameters' gradients before each call (torch leaves that to the closure), runs it inside a tidy scope, reads
// the returned loss tensor and disposes it.
import { tidyAsync, type Tensor } from '../autograd/tensor.js';
import type { Gpu, RawTensor } from '../gpu/index.js';
import { axpy, copy, dot, maxAbs, scale, sumAbs } from '../kernels/blas.js';
import { linComb } from '../kernels/elementwise.js';

export interface LbfgsOptions {
  /** Step length (default 1). */
  lr?: number;
  /** Iterations per step() call (default 20). */
  maxIter?: number;
  /** Evaluations per step() call (default floor(maxIter · 5/4)). */
  maxEval?: number;
  /** Stop when max|g| ≤ this (default 1e-7; -1 never stops). */
  toleranceGrad?: number;
  /** Stop when max|t·d|, |Δloss| or -g·d fall below this (default 1e-9; -1 never stops). */
  toleranceChange?: number;
  /** Curvature pairs kept (default 100). */
  historySize?: number;
  lineSearch?: 'none' | 'strong_wolfe';
}

export type LossClosure = () => Tensor | Promise<Tensor>;

interface Pending {
  y: RawTensor;
  s: RawTensor;
  ys: number;
  yy: number;
}

export class Lbfgs {
  readonly lr: number;
  readonly maxIter: number;
  readonly maxEval: number;
  readonly toleranceGrad: number;
  readonly toleranceChange: number;
  readonly historySize: number;
  readonly lineSearch: 'none' | 'strong_wolfe';
  /** Evaluations and iterations over all step() calls. */
  funcEvals = 0;
  nIter = 0;
  private readonly gpu: Gpu;
  private readonly n: number;
  private readonly offsets: number[];
  private d: RawTensor | null = null;
  private t = 0;
  private dirs: RawTensor[] = []; // y_i
  private stps: RawTensor[] = []; // s_i
  private ro: number[] = [];
  private hDiag = 1;
  private prevFlatGrad: RawTensor | null = null;
  private prevLoss = NaN;

  constructor(
    readonly params: Tensor[],
    opts: LbfgsOptions = {},
  ) {
    if (params.length === 0) throw new Error('Lbfgs: no parameters to optimise');
    this.gpu = params[0].gpu;
    this.lr = opts.lr ?? 1;
    this.maxIter = opts.maxIter ?? 20;
    this.maxEval = opts.maxEval ?? Math.floor((this.maxIter * 5) / 4);
    this.toleranceGrad = opts.toleranceGrad ?? 1e-7;
    this.toleranceChange = opts.toleranceChange ?? 1e-9;
    this.historySize = opts.historySize ?? 100;
    this.lineSearch = opts.lineSearch ?? 'none';
    if (!(this.lr > 0)) throw new Error(`Lbfgs: invalid learning rate ${this.lr}`);
    if (!(Number.isInteger(this.maxIter) && this.maxIter >= 1)) throw new Error(`Lbfgs: invalid maxIter ${this.maxIter}`);
    if (!(Number.isInteger(this.historySize) && this.historySize >= 1)) throw new Error(`Lbfgs: invalid historySize ${this.historySize}`);
    if (this.lineSearch !== 'none' && this.lineSearch !== 'strong_wolfe') throw new Error(`Lbfgs: unknown line search '${String(this.lineSearch)}' (none, strong_wolfe)`);
    this.offsets = [];
    let n = 0;
    for (const p of params) {
      this.offsets.push(n);
      n += p.size;
    }
    this.n = n;
  }

  /** Curvature pairs currently stored. */
  get historyLength(): number {
    return this.dirs.length;
  }

  private async read(ts: RawTensor[]): Promise<number[]> {
    const vals = await Promise.all(ts.map((t) => this.gpu.read(t)));
    return vals.map((v) => v[0]);
  }

  /** Runs the closure (gradients cleared first) and gathers the gradient into a new flat buffer. */
  private async evaluate(closure: LossClosure): Promise<{ loss: Tensor; g: RawTensor }> {
    for (const p of this.params) p.zeroGrad();
    const loss = await tidyAsync(async () => closure());
    const gpu = this.gpu;
    const missing = this.params.some((p) => !p.grad);
    const g = missing ? gpu.zeros([this.n], 'lbfgs gradient') : gpu.empty([this.n], 'lbfgs gradient');
    this.params.forEach((p, k) => {
      if (!p.grad) return;
      if (p.grad.size !== p.size) throw new Error(`Lbfgs: gradient [${p.grad.shape.join(',')}] does not match parameter ${p.name ?? k} [${p.shape.join(',')}]`);
      copy(gpu, p.grad.raw, g, { n: p.size, offY: this.offsets[k] });
    });
    return { loss, g };
  }

  /** params += t·d */
  private addGrad(t: number, d: RawTensor): void {
    this.params.forEach((p, k) => axpy(this.gpu, p.raw, d, t, { n: p.size, offX: this.offsets[k] }));
  }

  private gatherParams(): RawTensor {
    const x = this.gpu.empty([this.n], 'lbfgs x');
    this.params.forEach((p, k) => copy(this.gpu, p.raw, x, { n: p.size, offY: this.offsets[k] }));
    return x;
  }

  private setParams(x: RawTensor): void {
    this.params.forEach((p, k) => copy(this.gpu, x, p.raw, { n: p.size, offX: this.offsets[k] }));
  }

  /**
   * After an evaluation giving gradient g: reads [loss?, max|g|] and, when a previous direction exists, prepares
   * the next curvature pair y = g − g_prev, s = t·d with y·s and y·y, all in one readback.
   */
  private async afterEval(g: RawTensor, loss: Tensor | null): Promise<{ loss: number; gmax: number; pending: Pending | null }> {
    const gpu = this.gpu;
    const gmaxT = maxAbs(gpu, g);
    let pend: { y: RawTensor; s: RawTensor; ysT: RawTensor; yyT: RawTensor } | null = null;
    if (this.d && this.prevFlatGrad) {
      const y = linComb(gpu, g, this.prevFlatGrad, 1, -1);
      const s = scale(gpu, this.d, this.t);
      pend = { y, s, ysT: dot(gpu, y, s), yyT: dot(gpu, y, y) };
    }
    const ts = [gmaxT, ...(pend ? [pend.ysT, pend.yyT] : []), ...(loss ? [loss.raw] : [])];
    const vals = await this.read(ts);
    gpu.release(gmaxT);
    loss?.dispose();
    let pending: Pending | null = null;
    if (pend) {
      gpu.release(pend.ysT);
      gpu.release(pend.yyT);
      pending = { y: pend.y, s: pend.s, ys: vals[1], yy: vals[2] };
    }
    return { gmax: vals[0], loss: loss ? vals[ts.length - 1] : NaN, pending };
  }

  private dropPending(p: Pending | null): void {
    if (!p) return;
    this.gpu.release(p.y);
    this.gpu.release(p.s);
  }

  /**
   * Up to maxIter iterations (see the file header). Returns the loss of the first evaluation, as torch does.
   */
  async step(closure: LossClosure): Promise<number> {
    const gpu = this.gpu;
    const tolC = this.toleranceChange;
    const first = await this.evaluate(closure);
    let g = first.g;
    let { loss, gmax, pending } = await this.afterEval(g, first.loss);
    const origLoss = loss;
    let currentEvals = 1;
    this.funcEvals++;
    let optCond = gmax <= this.toleranceGrad;
    const owned = () => g !== this.prevFlatGrad;
    try {
      if (optCond) return origLoss;
      let nIter = 0;
      while (nIter < this.maxIter) {
        nIter++;
        this.nIter++;
        // direction
        if (this.nIter === 1) {
          this.releaseState();
          this.d = scale(gpu, g, -1);
          this.hDiag = 1;
        } else {
          const p = pending!;
          pending = null;
          if (p.ys > 1e-10) {
            if (this.dirs.length === this.historySize) {
              gpu.release(this.dirs.shift()!);
              gpu.release(this.stps.shift()!);
              this.ro.shift();
            }
            this.dirs.push(p.y);
            this.stps.push(p.s);
            this.ro.push(1 / p.ys);
            this.hDiag = p.ys / p.yy;
          } else this.dropPending(p);
          const d = twoLoop(gpu, g, this.dirs, this.stps, this.ro, this.hDiag);
          gpu.release(this.d!);
          this.d = d;
        }
        if (this.prevFlatGrad && this.prevFlatGrad !== g) gpu.release(this.prevFlatGrad);
        this.prevFlatGrad = g;
        this.prevLoss = loss;
        // step length and directional derivative
        const d = this.d!;
        const firstIter = this.nIter === 1;
        const gtdT = dot(gpu, g, d);
        const dmaxT = maxAbs(gpu, d);
        const g1T = firstIter ? sumAbs(gpu, g) : null;
        const [gtd, dmax, g1] = await this.read(g1T ? [gtdT, dmaxT, g1T] : [gtdT, dmaxT]);
        for (const t of [gtdT, dmaxT, g1T]) if (t) gpu.release(t);
        this.t = firstIter ? Math.min(1, 1 / g1) * this.lr : this.lr;
        if (gtd > -tolC) break;

        let lsEvals = 0;
        if (this.lineSearch === 'strong_wolfe') {
          const x0 = this.gatherParams();
          const r = await this.strongWolfe(closure, x0, this.t, d, dmax, loss, g, gtd);
          gpu.release(x0);
          loss = r.f;
          this.t = r.t;
          lsEvals = r.evals;
          g = r.g;
          this.addGrad(this.t, d);
          const a = await this.afterEval(g, null);
          pending = a.pending;
          optCond = a.gmax <= this.toleranceGrad;
        } else {
          this.addGrad(this.t, d);
          if (nIter !== this.maxIter) {
            const e = await this.evaluate(closure);
            g = e.g;
            const a = await this.afterEval(g, e.loss);
            loss = a.loss;
            pending = a.pending;
            optCond = a.gmax <= this.toleranceGrad;
            lsEvals = 1;
          }
        }
        currentEvals += lsEvals;
        this.funcEvals += lsEvals;
        if (nIter === this.maxIter) break;
        if (currentEvals >= this.maxEval) break;
        if (optCond) break;
        if (Math.abs(this.t) * dmax <= tolC) break;
        if (Math.abs(loss - this.prevLoss) < tolC) break;
      }
      return origLoss;
    } finally {
      this.dropPending(pending);
      if (owned()) gpu.release(g);
    }
  }

  /** torch.optim.lbfgs._strong_wolfe on GPU buffers. `g` stays the caller's; the returned gradient is new or g. */
  private async strongWolfe(
    closure: LossClosure,
    x: RawTensor,
    t: number,
    d: RawTensor,
    dNorm: number,
    f: number,
    g: RawTensor,
    gtd: number,
    c1 = 1e-4,
    c2 = 0.9,
    maxLs = 25,
  ): Promise<{ f: number; g: RawTensor; t: number; evals: number }> {
    const gpu = this.gpu;
    const tolC = this.toleranceChange;
    const created = new Set<RawTensor>();
    const objFunc = async (tt: number): Promise<{ f: number; g: RawTensor; gtd: number }> => {
      this.addGrad(tt, d);
      const e = await this.evaluate(closure);
      this.setParams(x);
      created.add(e.g);
      const gtdT = dot(gpu, e.g, d);
      const [fv, gv] = await this.read([e.loss.raw, gtdT]);
      e.loss.dispose();
      gpu.release(gtdT);
      return { f: fv, g: e.g, gtd: gv };
    };
    const gc = (live: RawTensor[]) => {
      for (const b of [...created]) {
        if (!live.includes(b)) {
          gpu.release(b);
          created.delete(b);
        }
      }
    };

    let { f: fNew, g: gNew, gtd: gtdNew } = await objFunc(t);
    let evals = 1;
    let [tPrev, fPrev, gPrev, gtdPrev] = [0, f, g, gtd];
    let done = false;
    let lsIter = 0;
    let bracket: number[] = [];
    let bf: number[] = [];
    let bg: RawTensor[] = [];
    let bgtd: number[] = [];
    while (lsIter < maxLs) {
      if (fNew > f + c1 * t * gtd || (lsIter > 1 && fNew >= fPrev)) {
        [bracket, bf, bg, bgtd] = [[tPrev, t], [fPrev, fNew], [gPrev, gNew], [gtdPrev, gtdNew]];
        break;
      }
      if (Math.abs(gtdNew) <= -c2 * gtd) {
        [bracket, bf, bg, bgtd] = [[t], [fNew], [gNew], [gtdNew]];
        done = true;
        break;
      }
      if (gtdNew >= 0) {
        [bracket, bf, bg, bgtd] = [[tPrev, t], [fPrev, fNew], [gPrev, gNew], [gtdPrev, gtdNew]];
        break;
      }
      const minStep = t + 0.01 * (t - tPrev);
      const maxStep = t * 10;
      const tmp = t;
      t = cubicInterpolate(tPrev, fPrev, gtdPrev, t, fNew, gtdNew, [minStep, maxStep]);
      [tPrev, fPrev, gPrev, gtdPrev] = [tmp, fNew, gNew, gtdNew];
      ({ f: fNew, g: gNew, gtd: gtdNew } = await objFunc(t));
      gc([gPrev, gNew]);
      evals++;
      lsIter++;
    }
    if (lsIter === maxLs) {
      [bracket, bf, bg, bgtd] = [[0, t], [f, fNew], [g, gNew], [gtd, gtdNew]];
    }
    gc(bg);

    let insufProgress = false;
    let [low, high] = bf[0] <= bf[bf.length - 1] ? [0, 1] : [1, 0];
    while (!done && lsIter < maxLs) {
      if (Math.abs(bracket[1] - bracket[0]) * dNorm < tolC) break;
      t = cubicInterpolate(bracket[0], bf[0], bgtd[0], bracket[1], bf[1], bgtd[1]);
      const bmax = Math.max(...bracket);
      const bmin = Math.min(...bracket);
      const eps = 0.1 * (bmax - bmin);
      if (Math.min(bmax - t, t - bmin) < eps) {
        if (insufProgress || t >= bmax || t <= bmin) {
          t = Math.abs(t - bmax) < Math.abs(t - bmin) ? bmax - eps : bmin + eps;
          insufProgress = false;
        } else insufProgress = true;
      } else insufProgress = false;

      ({ f: fNew, g: gNew, gtd: gtdNew } = await objFunc(t));
      evals++;
      lsIter++;
      if (fNew > f + c1 * t * gtd || fNew >= bf[low]) {
        [bracket[high], bf[high], bg[high], bgtd[high]] = [t, fNew, gNew, gtdNew];
        [low, high] = bf[0] <= bf[1] ? [0, 1] : [1, 0];
      } else {
        if (Math.abs(gtdNew) <= -c2 * gtd) done = true;
        else if (gtdNew * (bracket[high] - bracket[low]) >= 0) {
          [bracket[high], bf[high], bg[high], bgtd[high]] = [bracket[low], bf[low], bg[low], bgtd[low]];
        }
        [bracket[low], bf[low], bg[low], bgtd[low]] = [t, fNew, gNew, gtdNew];
      }
      gc(bg);
    }
    const gOut = bg[low];
    gc([gOut]);
    return { f: bf[low], g: gOut, t: bracket[low], evals };
  }

  private releaseState(): void {
    for (const b of [...this.dirs, ...this.stps]) this.gpu.release(b);
    this.dirs = [];
    this.stps = [];
    this.ro = [];
  }

  /** Frees the history, the direction and the previous gradient. */
  dispose(): void {
    this.releaseState();
    if (this.d) this.gpu.release(this.d);
    if (this.prevFlatGrad) this.gpu.release(this.prevFlatGrad);
    this.d = null;
    this.prevFlatGrad = null;
  }
}

/**
 * The L-BFGS two-loop recursion on the GPU: returns a new d = −H·g, H the inverse-Hessian approximation from the
 * pairs (y_i = dirs[i], s_i = stps[i], ρ_i = ro[i] = 1/(y_i·s_i)), oldest first, with H₀ = hDiag·I. The α_i and β
 * coefficients stay on the GPU (axpy with device scalars): 2 dots and 2 axpys per pair, nothing read back.
 */
export function twoLoop(gpu: Gpu, g: RawTensor, dirs: readonly RawTensor[], stps: readonly RawTensor[], ro: readonly number[], hDiag: number): RawTensor {
  const m = dirs.length;
  const q = scale(gpu, g, -1);
  const al: RawTensor[] = new Array(m);
  for (let i = m - 1; i >= 0; i--) {
    al[i] = dot(gpu, stps[i], q);
    axpy(gpu, q, dirs[i], { a: -ro[i], u: al[i] });
  }
  scale(gpu, q, hDiag, q);
  for (let i = 0; i < m; i++) {
    const be = dot(gpu, dirs[i], q);
    axpy(gpu, q, stps[i], { a: ro[i], u: al[i], b: -ro[i], v: be });
    gpu.release(be);
    gpu.release(al[i]);
  }
  return q;
}

/** torch.optim.lbfgs._cubic_interpolate (two points with values and derivatives), in float64. */
export function cubicInterpolate(x1: number, f1: number, g1: number, x2: number, f2: number, g2: number, bounds?: [number, number]): number {
  const [lo, hi] = bounds ?? (x1 <= x2 ? [x1, x2] : [x2, x1]);
  const d1 = g1 + g2 - (3 * (f1 - f2)) / (x1 - x2);
  const d2sq = d1 * d1 - g1 * g2;
  if (d2sq >= 0) {
    const d2 = Math.sqrt(d2sq);
    const minPos = x1 <= x2 ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2)) : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
    return Math.min(Math.max(minPos, lo), hi);
  }
  return (lo + hi) / 2;
}
