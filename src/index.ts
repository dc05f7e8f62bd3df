// perceptual-webgpu in Node: the stable product API (the package's root). The browser-safe part is product.ts;
// here is what reads paths and files, trains into a run folder and downloads weights. Building blocks (Tensor, the
// ops, kernels, layers, networks, file formats) are the engine subpath's (engine.ts).
export * from './product.js';
export { loadModel } from './api/model-node.js';
export type { ModelSource } from './api/model.js';
export { loadLossNetwork } from './nets/loss-network-node.js';
export { readImage, writeImage, decodeImage, encodeImage, ImageFileError } from './io/image-node.js';
export { trainStyle, type TrainStyleOptions, type TrainStyleResult } from './api/train-style.js';
export { stylizeVideo, probeVideo, readVideo, VideoWriter, VideoFileError, type StylizeVideoOptions, type StylizeVideoResult, type VideoInfo, type VideoProgress } from './api/video-node.js';
export { trainSR, type TrainSROptions, type TrainSRResult, type SRLoss } from './api/train-sr.js';
export { TrainingStoppedError, type TrainProgress, type TrainResult } from './train/trainer.js';
export { evaluateSrFolder, type SrEvalOptions, type SrEvalResult, type SrImageResult } from './eval/sr-eval.js';
export { fetchWeights, defaultCacheDir, DownloadError, ChecksumError, type FetchOptions } from './io/fetch.js';
export { ZOO_NAMES, type ZooName } from './io/zoo.js';
