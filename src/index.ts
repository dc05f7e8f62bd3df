// perceptual-webgpu: the library entry for Node. Everything the CLI does is reachable from here: the
// browser-safe core, loaders that read paths, and what needs files (image IO, datasets, training runs).
export * from './core.js';
export { loadModel } from './api/model-node.js';
export type { ModelSource } from './api/model.js';
export { loadLossNetwork } from './nets/loss-network-node.js';
export { train, TrainingStoppedError, type TrainOptions, type TrainProgress, type TrainResult, type StepContext } from './train/trainer.js';
export { saveCheckpoint, loadCheckpoint, CheckpointError } from './train/checkpoint.js';
export { ImageFolder, listImages, type ImageFolderOptions } from './train/dataset.js';
export { trainStyle, type TrainStyleOptions, type TrainStyleResult } from './api/train-style.js';
export { readImage, writeImage, decodeImage, encodeImage, ImageFileError } from './io/image-node.js';
export { trainSR, makeLowRes, SR_LOSSES, SR_DEFAULT_TV_WEIGHT, LOW_RES_BLUR_SIGMA, type TrainSROptions, type TrainSRResult, type SRLoss } from './api/train-sr.js';
