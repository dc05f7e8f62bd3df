// The product API's browser-safe part: what both entries of the stable API re-export, index.ts (Node: + paths and
// files, training runs, weight downloads) and browser.ts (+ URL loaders, canvas helpers). Everything here is a
// promise to users: renaming or removing a name is a breaking change. A new product function (a loss network,
// multi-style models, video, ...) goes here when it runs in a browser, in index.ts when it needs Node; the
// building blocks stay in core.ts, which the engine subpath exports.

// The device.
export { Gpu, NoAdapterError, DeviceLostError, GpuMemoryError, DtypeError, type GpuOptions, type Precision } from './gpu/index.js';
// Images in memory: planar RGB float32 in 0..255, from and to canvas-style RGBA bytes.
export { fromRGBA, toRGBA, type Image } from './io/image.js';
// Style transfer with a trained model: the embedded one, or any other loaded by loadModel (in index.ts/browser.ts).
export { DEFAULT_MODEL, DEFAULT_SR_MODEL } from './api/default-model.js';
export { stylizeImage, type StylizeOptions } from './api/stylize.js';
// Multi-style models: a style by name or a blend of styles ("starry_night:0.7,the_scream:0.3").
export { parseStyle, styleOf } from './api/styles.js';
export type { StyleBlend, StyleInfo } from './nets/transformer-net.js';
// Video as streams of frames (batched on the GPU); the files are index.ts's (ffmpeg) or the page's (<video>).
export { stylizeFrames, blurredInput, type FrameOptions } from './api/video.js';
export type { TransformerNet } from './nets/transformer-net.js';
// Super-resolution.
export { loadSRNet, upscaleImage, type SRNet, type SRScale, type UpscaleOptions } from './nets/sr-net.js';
// Evaluation: the SR literature's PSNR/SSIM protocol on Y, and the paper's histogram matching.
export { srMetrics, matchHistogram, type SrMetrics, type SrMetricsOptions } from './eval/metrics.js';
// Loss networks (their weights: fetchWeights in Node, or any URL/bytes through loadLossNetwork).
export { LOSS_NETWORK_NAMES, type LossNetwork, type LossNetworkName } from './nets/loss-network.js';
// Gatys et al.'s optimisation baseline.
export { gatys, type GatysOptions, type GatysLosses } from './train/gatys.js';
