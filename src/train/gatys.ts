// The optimisation baseline of Gatys et al. (2016), as Johnson et al. ran it for Table 1: the pixels of the
// output image are the variables, and L-BFGS (or Adam) minimises the same objective the feed-forward network is
// trained with, λc·l_feat(x, y_c) + λs·Σ_j l_style^j(x, y_s) + λTV·l_TV(x) (train/perceptual-loss.ts: same loss
// functions, same default layers and weights).
//
// Differences from StyleTransferLoss.compute, for speed only (the values are the same, see test/gatys.test.ts):
// the content targets φ_j(y_c) are computed once (the content image does not change), and x goes through the
// loss network ONCE per evaluation for the union of the content and style layers.
//
// The image x is a [1,3,H,W] leaf in RGB 0..255, unconstrained during the optimisation (as in neural-style);
// it is clamped to 0..255 only when returned. L-BFGS follows neural-style: torch.optim.LBFGS semantics, history
// 100, fixed step lr = 1 without line search (first step scaled by min(1, 1/|g|₁)), no early stopping
// (tolerances −1), so `iters` iterations are exactly `iters` loss evaluations. The style image is resized to the
// content's size unless `styleSize` gives its longer side.
import { keep, tidy, tidyAsync, Tensor } from '../autograd/tensor.js';
import type { Gpu } from '../gpu/index.js';
import { createImage, imageToTensor, type Image } from '../io/image.js';
import { resize } from '../io/resize.js';
import type { LossNetwork } from '../nets/loss-network.js';
import { Adam } from './adam.js';
import { Lbfgs } from './lbfgs.js';
import { StyleTransferLoss, type StyleLossOptions, type StyleLossTerms } from './perceptual-loss.js';
import { Rng } from './rng.js';

export interface GatysLosses {
  total: number;
  content: number;
  style: number;
  tv: number;
}

export interface GatysOptions extends StyleLossOptions {
  gpu: Gpu;
  net: LossNetwork;
  content: Image;
  style: Image;
  /** Optimiser iterations (= loss evaluations). */
  iters: number;
  optimizer?: 'lbfgs' | 'adam';
  /** Start from the content image (default) or from uniform noise in 0..255. */
  init?: 'content' | 'noise';
  /** Step size: L-BFGS 1 (torch's default), Adam 10 (neural-style's, in 0..255 pixel units). */
  lr?: number;
  /** Seed of the noise initialisation. */
  seed?: number;
  /** Longer side of the style image in pixels; default: resized to exactly the content's width × height. */
  styleSize?: number;
  /** L-BFGS history (default 100) and line search (default 'none', as neural-style). */
  historySize?: number;
  lineSearch?: 'none' | 'strong_wolfe';
  /**
   * After iteration i (1-based): the losses evaluated at the image iteration i started from (the evaluation that
   * gave its gradient, as torch's and neural-style's closures report them), and the current image x (RGB
   * 0..255, not clamped; owned by gatys, valid during the call).
   */
  onIter?: (i: number, losses: GatysLosses, image: Tensor) => void | Promise<void>;
  signal?: AbortSignal;
}

/** The style-transfer objective on a fixed content image, one loss-network pass per evaluation. */
export class GatysObjective {
  readonly loss: StyleTransferLoss;
  private readonly targets: Map<string, Tensor>;

  constructor(
    readonly net: LossNetwork,
    content: Tensor,
    style: Tensor,
    opts: StyleLossOptions = {},
  ) {
    this.loss = new StyleTransferLoss(net, style, opts);
    // The content never changes during the optimisation: its features are computed once.
    const targets = new Map<string, Tensor>();
    tidy(() => {
      for (const [k, f] of this.loss.contentTargets(content)) targets.set(k, keep(f));
    });
    this.targets = targets;
  }

  /** The loss terms at x [1,3,H,W] (differentiable w.r.t. x). */
  compute(x: Tensor): StyleLossTerms {
    return this.loss.computeWithTargets(x, this.targets);
  }

  dispose(): void {
    for (const t of this.targets.values()) t.dispose();
    this.loss.dispose();
  }
}

/** The starting image: the content itself or seeded uniform noise in 0..255. */
export function initialImage(content: Image, init: 'content' | 'noise', seed = 0): Image {
  if (init === 'content') return createImage(content.width, content.height, content.data.slice());
  if (init !== 'noise') throw new Error(`gatys: unknown init '${String(init)}' (content, noise)`);
  const rng = new Rng(seed);
  const d = new Float32Array(content.data.length);
  for (let i = 0; i < d.length; i++) d[i] = 255 * rng.next();
  return createImage(content.width, content.height, d);
}

/** The style image at the size gatys uses: the content's size, or longer side `styleSize`. */
export function styleImageFor(style: Image, content: Image, styleSize?: number): Image {
  if (styleSize === undefined) return resize(style, content.width, content.height);
  if (!(Number.isInteger(styleSize) && styleSize >= 1)) throw new Error(`gatys: invalid styleSize ${styleSize}`);
  const s = styleSize / Math.max(style.width, style.height);
  return resize(style, Math.max(1, Math.round(style.width * s)), Math.max(1, Math.round(style.height * s)));
}

const clampImage = (data: Float32Array, w: number, h: number): Image => createImage(w, h, data.map((v) => (v < 0 ? 0 : v > 255 ? 255 : v)));

/** Optimises the pixels for `iters` iterations; returns the image clamped to 0..255. */
export async function gatys(o: GatysOptions): Promise<Image> {
  const { gpu, net, content } = o;
  if (!(Number.isInteger(o.iters) && o.iters >= 0)) throw new Error(`gatys: iters must be a non-negative integer, got ${o.iters}`);
  const optimizer = o.optimizer ?? 'lbfgs';
  if (optimizer !== 'lbfgs' && optimizer !== 'adam') throw new Error(`gatys: unknown optimizer '${String(optimizer)}' (lbfgs, adam)`);
  const style = styleImageFor(o.style, content, o.styleSize);
  const init = initialImage(content, o.init ?? 'content', o.seed ?? 0);
  const x = Tensor.param(gpu, init.data, [1, 3, content.height, content.width], 'gatys image');
  let objective: GatysObjective | null = null;
  let lbfgs: Lbfgs | null = null;
  let adam: Adam | null = null;
  try {
    const ct = imageToTensor(gpu, content);
    const st = imageToTensor(gpu, style);
    try {
      objective = new GatysObjective(net, ct, st, o);
    } finally {
      ct.dispose();
      st.dispose();
    }
    const obj = objective;
    const report = o.onIter !== undefined;
    // The loss terms of the last evaluation, read in parallel with the optimiser's own readback.
    const last: { terms?: Promise<Float32Array[]> } = {};
    const evaluate = (): Tensor => {
      const t = obj.compute(x);
      t.total.backward();
      if (report) last.terms = Promise.all([t.total, t.content, t.style, t.tv].map((v) => v.data()));
      return t.total;
    };
    if (optimizer === 'lbfgs') {
      lbfgs = new Lbfgs([x], {
        lr: o.lr ?? 1,
        maxIter: 1,
        toleranceGrad: -1,
        toleranceChange: -1,
        historySize: o.historySize ?? 100,
        lineSearch: o.lineSearch ?? 'none',
      });
    } else adam = new Adam([x], { lr: o.lr ?? 10 });
    for (let i = 1; i <= o.iters; i++) {
      o.signal?.throwIfAborted();
      if (lbfgs) await lbfgs.step(evaluate);
      else {
        x.zeroGrad();
        await tidyAsync(async () => {
          evaluate();
        });
        adam!.step();
      }
      if (report) {
        const [total, c, s, tv] = (await last.terms!).map((v) => v[0]);
        await o.onIter!(i, { total, content: c, style: s, tv }, x);
      }
    }
    return clampImage(await x.data(), content.width, content.height);
  } finally {
    lbfgs?.dispose();
    adam?.dispose();
    objective?.dispose();
    x.dispose();
  }
}
