// perceptual-webgpu in the browser (`perceptual-webgpu/browser`, dist/web/perceptual.js): the root's product API
// minus what needs files; models and weights load from a URL (fetch) or bytes; canvas, camera and in-page training.
export * from './product.js';
export { loadModel, type ModelSource } from './api/model.js';
export { loadLossNetwork } from './nets/loss-network.js';
export type { Source } from './io/source.js';
export { TensorPresenter, type PresentOptions } from './web/present.js';
export { fitSize, grabFrame } from './web/frames.js';
export { FrameStylizer, FpsMeter, type Look } from './web/stylizer.js';
export { StyleTrainer, type StyleTrainerOptions } from './web/style-trainer.js';
export { estimateFrameRate, frameCount, videoFrames, playFrames, recordFrames } from './web/video.js';
