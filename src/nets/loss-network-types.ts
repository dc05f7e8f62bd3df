// What every loss network offers (VGG, SqueezeNet): taps by name, differentiable w.r.t. the input image.
// Its own file so the networks and the loader that picks between them do not import each other.
import type { Tensor } from '../autograd/tensor.js';
import type { Preprocess } from '../layers/channel-affine.js';

export type LossNetworkName = 'vgg16' | 'vgg19' | 'squeezenet1_1';
export const LOSS_NETWORK_NAMES: readonly LossNetworkName[] = ['vgg16', 'vgg19', 'squeezenet1_1'];

export interface FeatureOptions {
  /** x is already in the weights' input space (skips the RGB 0..255 preprocessing). */
  preprocessed?: boolean;
}

export interface LossNetwork {
  readonly name: LossNetworkName;
  /** The input the weights expect; features() maps RGB 0..255 to it unless told the input is preprocessed. */
  readonly preprocess: Preprocess;
  /** The taps this weight file can serve (canonical names; see each network for accepted aliases). */
  readonly taps: readonly string[];
  readonly defaultContentLayers: readonly string[];
  readonly defaultStyleLayers: readonly string[];
  /**
   * Activations at the requested taps, keyed by the names as given. Runs only as far as the deepest tap.
   * The weights are frozen; the result is differentiable w.r.t. x. Without a gradient to track (x does not
   * require one, or inside noGrad) intermediate activations are freed as soon as they are consumed.
   */
  features(x: Tensor, taps: readonly string[], opts?: FeatureOptions): Map<string, Tensor>;
  dispose(): void;
}

