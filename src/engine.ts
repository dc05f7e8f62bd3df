// `perceptual-webgpu/engine` in Node: everything the library has, for power users who build on it — the device,
// Tensor and the tape, kernels, layers and ops, networks, losses, optimisers, file formats, training loops and
// checkpoints — and the product API of the root too. Unlike the root it follows the code: names here may change
// between minor versions. In a browser this subpath resolves to engine-browser.ts.
export * from './core.js';
export * from './index.js';
export { train, CHECKPOINT_FILE, LOSS_LOG_FILE, LOSS_PLOT_FILE, type TrainOptions, type StepContext } from './train/trainer.js';
export { saveCheckpoint, loadCheckpoint, CheckpointError } from './train/checkpoint.js';
export { ImageFolder, listImages, type ImageFolderOptions, type DataSource } from './train/dataset.js';
export { makeLowRes, SR_LOSSES, SR_DEFAULT_TV_WEIGHT, LOW_RES_BLUR_SIGMA } from './api/train-sr.js';
export { readFileBytes } from './io/files.js';
