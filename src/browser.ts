// perceptual-webgpu in the browser (dist/web/perceptual.js, built by `npm run build:web`): the same API as
// the Node entry minus what needs files; models and weights load from a URL (fetch) or bytes.
export * from './core.js';
export { loadModel, type ModelSource } from './api/model.js';
export { loadLossNetwork } from './nets/loss-network.js';
export type { Source } from './io/source.js';
export { TensorPresenter, type PresentOptions } from './web/present.js';
export { fitSize, grabFrame } from './web/frames.js';
export { FrameStylizer, FpsMeter, type Look } from './web/stylizer.js';
export { StyleTrainer, type StyleTrainerOptions } from './web/style-trainer.js';
