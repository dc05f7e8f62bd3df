// perceptual-webgpu: the library entry. Everything the CLI does is reachable from here.
export { Gpu, kernel, numel, ShapeError, KernelError, GpuMemoryError, DeviceLostError, NoAdapterError } from './gpu/index.js';
export type { RawTensor, GpuOptions, PoolStats, Kernel } from './gpu/index.js';
export { Tensor, record, backward, tidy, tidyAsync, keep, noGrad, noGradAsync } from './autograd/tensor.js';
export { Module } from './layers/module.js';
export * from './layers/elementwise.js';
export * from './layers/conv.js';
export * from './layers/norm.js';
export * from './layers/spatial.js';
export * from './layers/reduce.js';
export * from './layers/gram.js';
export * from './layers/loss.js';
export { Adam, type AdamOptions, type AdamState } from './train/adam.js';
