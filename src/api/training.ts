// The options every training task (style, super-resolution) takes beside its own.
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
