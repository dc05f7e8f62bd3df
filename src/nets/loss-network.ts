// Pretrained, frozen loss networks (φ in Johnson et al.): load a weight file, then read activations ("taps")
// at named layers, differentiably with respect to the input image. Inputs are RGB in 0..255, [N,3,H,W];
// each network converts them to what its weights expect (see Preprocess) inside the graph.
import type { Gpu } from '../gpu/index.js';
import { parsePreprocess, type Preprocess } from '../layers/channel-affine.js';
import { WeightFileError } from '../io/safetensors.js';
import { readWeightBytes, type WeightTensors } from '../io/weight-file.js';
import { LOSS_NETWORK_NAMES, type LossNetworkName } from './loss-network-types.js';
import { readSource, type Source, type SourceBytes } from '../io/source.js';
import { SqueezeNet11 } from './squeezenet.js';
import { Vgg } from './vgg.js';

export { LOSS_NETWORK_NAMES, type FeatureOptions, type LossNetwork, type LossNetworkName } from './loss-network-types.js';
export { readWeightBytes, type WeightTensors } from '../io/weight-file.js';
export { PREPROCESS_NAMES, parsePreprocess, preprocessImage, preprocessParams, type Preprocess } from '../layers/channel-affine.js';

interface LossNetworkTypes {
  vgg16: Vgg;
  vgg19: Vgg;
  squeezenet1_1: SqueezeNet11;
}

export interface LoadLossNetworkOptions {
  /** Overrides the file's `__metadata__.input` (and the default for files without one, rgb01_imagenet_norm). */
  preprocess?: Preprocess | string;
  /** Names the source in error messages (defaults to the path, or "weight file"). */
  file?: string;
}


/** Builds a network from tensors already read (e.g. by readWeightBytes). */
export function lossNetworkFromTensors<N extends LossNetworkName>(
  gpu: Gpu,
  name: N,
  weights: WeightTensors,
  opts: LoadLossNetworkOptions = {},
): LossNetworkTypes[N] {
  const file = opts.file ?? 'weight file';
  const arch = weights.metadata.arch;
  if (arch !== undefined && arch !== name) {
    throw new WeightFileError(`${file}: this file holds a ${arch} network (__metadata__.arch), not ${name}`);
  }
  const given = opts.preprocess ?? weights.metadata.input;
  let preprocess: Preprocess = 'rgb01_imagenet_norm'; // torchvision's, for files that do not say
  if (given !== undefined) {
    try {
      preprocess = parsePreprocess(given);
    } catch (e) {
      throw new WeightFileError(`${file}: ${(e as Error).message}${opts.preprocess === undefined ? ' in __metadata__.input; pass the preprocess option' : ''}`);
    }
  }
  const o = { preprocess, file };
  if (name === 'vgg16' || name === 'vgg19') return Vgg.fromTensors(gpu, name, weights.tensors, o) as LossNetworkTypes[N];
  if (name === 'squeezenet1_1') return SqueezeNet11.fromTensors(gpu, weights.tensors, o) as LossNetworkTypes[N];
  throw new Error(`loadLossNetwork: unknown network "${String(name)}" (known: ${LOSS_NETWORK_NAMES.join(', ')})`);
}

/**
 * Loads a loss network from a safetensors or .pth file: bytes, or a URL (fetched; the Node entry's
 * loadLossNetwork, loss-network-node.ts, reads paths). The input preprocessing comes from opts.preprocess,
 * else the file's `__metadata__.input`, else torchvision's rgb01_imagenet_norm.
 */
export type LoadLossNetwork = <N extends LossNetworkName>(gpu: Gpu, name: N, source: Source, opts?: LoadLossNetworkOptions) => Promise<LossNetworkTypes[N]>;

/** loadLossNetwork with the given way of reading a source (the Node entry's reads paths too). */
export function lossNetworkLoader(read: (source: Source) => Promise<SourceBytes>): LoadLossNetwork {
  return async (gpu, name, source, opts = {}) => {
    if (!LOSS_NETWORK_NAMES.includes(name)) throw new Error(`loadLossNetwork: unknown network "${String(name)}" (known: ${LOSS_NETWORK_NAMES.join(', ')})`);
    const { bytes, name: from } = await read(source);
    const file = opts.file ?? from ?? 'weight file';
    return lossNetworkFromTensors(gpu, name, readWeightBytes(bytes, file), { ...opts, file });
  };
}

export const loadLossNetwork: LoadLossNetwork = lossNetworkLoader(readSource);
