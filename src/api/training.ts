// What every training task (style, super-resolution) shares beside its own options: the common options, and
// loading the frozen loss network with one set of checks and one message.
import { join } from 'node:path';
import type { Gpu } from '../gpu/index.js';
import { defaultCacheDir } from '../io/fetch.js';
import type { LossNetwork, LossNetworkName } from '../nets/loss-network.js';
import { loadLossNetwork } from '../nets/loss-network-node.js';
import type { TrainProgress } from '../train/trainer.js';

export interface TrainingRunOptions {
  /** A folder of training images (JPEG/PNG, any size, greyscale too). */
  data: string;
  /** Checkpoints, loss log and plot, samples, and the final model.safetensors go here. */
  outDir: string;
  /** Training image (patch) size. */
  size?: number;
  batchSize?: number;
  steps?: number;
  lr?: number;
  /** λTV on the summed squared total variation of the 0..255 output. */
  tvWeight?: number;
  /** Loss-network weights (safetensors or .pth); default: the cache (perceptual weights fetch). */
  lossWeights?: string;
  seed?: number;
  /** Continue exactly from outDir/checkpoint.safetensors. */
  resume?: boolean;
  /** Start afresh even though outDir holds a checkpoint. */
  overwrite?: boolean;
  checkpointEvery?: number;
  /** Every this many steps, run the model on `sampleImages` into outDir/samples. */
  sampleEvery?: number;
  sampleImages?: string[];
  onProgress?: (p: TrainProgress) => void;
  onLog?: (message: string) => void;
  signal?: AbortSignal;
}

/**
 * The loss network `name` from `weights` (default: the cache of `perceptual weights fetch`), checked to offer every
 * layer in `layers`; errors name the file and what to do. `who` prefixes the messages (trainStyle, trainSR).
 */
export async function openLossNetwork(gpu: Gpu, who: string, name: LossNetworkName, weights: string | undefined, layers: readonly string[]): Promise<LossNetwork> {
  const file = weights ?? join(defaultCacheDir(), `${name}.safetensors`);
  const net = await loadLossNetwork(gpu, name, file).catch((e: Error) => {
    throw new Error(`${who}: cannot load the ${name} loss network from ${file}: ${e.message}` + (weights ? '' : ` (run 'perceptual weights fetch ${name}' or pass lossWeights)`));
  });
  const missing = layers.filter((l) => !net.taps.includes(l));
  if (missing.length) {
    const taps = net.taps.join(', ');
    net.dispose();
    throw new Error(`${who}: ${name} (${file}) has no layer ${missing.join(', ')}; it offers ${taps}`);
  }
  return net;
}
