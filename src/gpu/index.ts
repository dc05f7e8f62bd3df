export { Gpu, numel, type RawTensor, type Binding, type GpuOptions } from './runtime.js';
export { kernel, type Kernel } from './kernel.js';
export type { PoolStats } from './pool.js';
export * from './errors.js';
