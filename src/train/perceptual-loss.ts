// The paper's losses on a frozen loss network φ (§3.1–3.2):
//   feature reconstruction  l_feat^j(ŷ, y) = ||φ_j(ŷ) − φ_j(y)||² / (C_j H_j W_j)     → mseLoss of the features
//   style reconstruction    l_style^j(ŷ, y_s) = ||G_j(ŷ) − G_j(y_s)||²                → mseLoss of the Grams
//   pixel                   ||ŷ − y||² / (CHW)                                           → mseLoss of the images
//   total variation         squared anisotropic TV of ŷ (summed)
// Every term is averaged over the batch. The style term is the mean over the C×C Gram entries, as in the
// authors' fast-neural-style code (whose weights content 1, style 5, TV 1e-6 are our defaults); that is the
// paper's squared Frobenius norm divided by C_j², so the layers' terms have comparable scales.
import { Tensor, keep, noGrad, tidy } from '../autograd/tensor.js';
import { add, mulScalar } from '../layers/elementwise.js';
import { gram } from '../layers/gram.js';
import { mseLoss, totalVariation } from '../layers/loss.js';
import { concat } from '../layers/spatial.js';
import { check } from '../layers/check.js';
import type { LossNetwork } from '../nets/loss-network.js';

/** Layer name → weight. A plain list gives every layer weight 1. */
export type LayerWeights = Record<string, number> | readonly string[];

export function layerWeights(l: LayerWeights): [string, number][] {
  return Array.isArray(l) ? (l as string[]).map((k) => [k, 1]) : Object.entries(l as Record<string, number>);
}

/** Σ w_i·t_i; an empty list (no layers of that kind) is a zero loss on `like`'s device. */
function weightedSum(terms: Tensor[], weights: number[], like: Tensor): Tensor {
  if (!terms.length) return Tensor.zeros(like.gpu, [1]);
  let total = mulScalar(terms[0], weights[0]);
  for (let i = 1; i < terms.length; i++) total = add(total, mulScalar(terms[i], weights[i]));
  return total;
}

/** Σ_j w_j · ||f_j − target_j||² / (C_j H_j W_j), from features f of ŷ already computed. */
function featureTerms(f: Map<string, Tensor>, target: Map<string, Tensor>, lw: [string, number][], yhat: Tensor): Tensor {
  return weightedSum(
    lw.map(([k]) => mseLoss(f.get(k)!, target.get(k)!)),
    lw.map(([, w]) => w),
    yhat,
  );
}

/** Σ_j w_j · ||G(f_j) − grams_j||², the style Grams broadcast over the batch when they have a batch of 1. */
function styleTerms(f: Map<string, Tensor>, grams: Map<string, Tensor>, lw: [string, number][], yhat: Tensor): Tensor {
  const N = yhat.shape[0];
  return weightedSum(
    lw.map(([k]) => {
      let g = grams.get(k)!;
      if (g.shape[0] !== N) {
        check(g.shape[0] === 1, 'styleLoss', `style Gram of ${k} must have a batch of 1 or ${N}`, { gram: g, yhat });
        g = concat(Array.from({ length: N }, () => g), 0);
      }
      return mseLoss(gram(f.get(k)!), g);
    }),
    lw.map(([, w]) => w),
    yhat,
  );
}

/** Σ_j w_j · l_feat^j(ŷ, y). `target` holds φ_j(y), e.g. from `targetFeatures(net, y, layers)`. */
export function featureLoss(net: LossNetwork, yhat: Tensor, target: Map<string, Tensor>, layers: LayerWeights): Tensor {
  const lw = layerWeights(layers);
  return featureTerms(net.features(yhat, lw.map(([k]) => k)), target, lw, yhat);
}

/** Σ_j w_j · l_style^j(ŷ, y_s); `grams` holds G_j(y_s) with a batch of 1 or of ŷ's batch. */
export function styleLoss(net: LossNetwork, yhat: Tensor, grams: Map<string, Tensor>, layers: LayerWeights): Tensor {
  const lw = layerWeights(layers);
  return styleTerms(net.features(yhat, lw.map(([k]) => k)), grams, lw, yhat);
}

/** φ_j(x) for the layers, without gradients (targets); they belong to the enclosing tidy scope. */
export function targetFeatures(net: LossNetwork, x: Tensor, layers: LayerWeights): Map<string, Tensor> {
  return noGrad(() => net.features(x, layerWeights(layers).map(([k]) => k)));
}

export interface StyleLossOptions {
  contentLayers?: LayerWeights;
  styleLayers?: LayerWeights;
  contentWeight?: number;
  styleWeight?: number;
  tvWeight?: number;
}

export interface StyleLossTerms {
  total: Tensor;
  content: Tensor;
  style: Tensor;
  tv: Tensor;
}

/** λ_c l_feat(ŷ, y_c) + λ_s Σ_j l_style^j(ŷ, y_s) + λ_TV l_TV(ŷ), with the style image's Grams cached. */
export class StyleTransferLoss {
  readonly contentLayers: Record<string, number>;
  readonly styleLayers: Record<string, number>;
  readonly contentWeight: number;
  readonly styleWeight: number;
  readonly tvWeight: number;
  private grams: Map<string, Tensor>;

  constructor(
    readonly net: LossNetwork,
    style: Tensor,
    opts: StyleLossOptions = {},
  ) {
    this.contentLayers = Object.fromEntries(layerWeights(opts.contentLayers ?? net.defaultContentLayers));
    this.styleLayers = Object.fromEntries(layerWeights(opts.styleLayers ?? net.defaultStyleLayers));
    this.contentWeight = opts.contentWeight ?? 1;
    this.styleWeight = opts.styleWeight ?? 5;
    this.tvWeight = opts.tvWeight ?? 1e-6;
    const missing = [...Object.keys(this.contentLayers), ...Object.keys(this.styleLayers)].filter((k) => !net.taps.includes(k));
    if (missing.length) throw new Error(`StyleTransferLoss: ${net.name} has no layer ${missing.join(', ')}; it offers ${net.taps.join(', ')}`);
    if (!Object.keys(this.contentLayers).length && !Object.keys(this.styleLayers).length) throw new Error('StyleTransferLoss: no content or style layer');
    // The style image's Grams are computed once and owned by this object.
    this.grams = new Map();
    tidy(() => {
      for (const [k, f] of targetFeatures(net, style, this.styleLayers)) this.grams.set(k, keep(noGrad(() => gram(f))));
    });
  }

  /** The loss terms for a batch of outputs ŷ and their content images y_c (RGB 0..255, [N,3,H,W]). */
  compute(yhat: Tensor, content: Tensor): StyleLossTerms {
    return this.computeWithTargets(yhat, this.contentTargets(content));
  }

  /** φ_j(y_c) for the content layers (no gradients); reusable when the content does not change (Gatys). */
  contentTargets(content: Tensor): Map<string, Tensor> {
    return targetFeatures(this.net, content, this.contentLayers);
  }

  computeWithTargets(yhat: Tensor, target: Map<string, Tensor>): StyleLossTerms {
    // One pass of ŷ through the loss network serves both terms.
    const cl = layerWeights(this.contentLayers);
    const sl = layerWeights(this.styleLayers);
    const f = this.net.features(yhat, [...new Set([...cl, ...sl].map(([k]) => k))]);
    const c = featureTerms(f, target, cl, yhat);
    const s = styleTerms(f, this.grams, sl, yhat);
    const tv = totalVariation(yhat);
    const total = add(add(mulScalar(c, this.contentWeight), mulScalar(s, this.styleWeight)), mulScalar(tv, this.tvWeight));
    return { total, content: c, style: s, tv };
  }

  dispose(): void {
    for (const g of this.grams.values()) g.dispose();
  }
}
