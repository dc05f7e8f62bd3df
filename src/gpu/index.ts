// src/gpu: the only code that touches the GPUDevice. The life of one dispatch, file by file:
//   kernel.ts      a launcher's kernel('op.entry', wgsl) was reflected once: bindings, uniform layout, workgroup size
//   runtime.ts     Gpu.dispatch(kernel, {x, y, p: {...}}, gpu.grid(kernel, n)): the grid folded above 65,535 (fold)
//   f16.ts         tensors stored in f16 bound? then the kernel's f16 variant for those bindings, derived once
//   kernel.ts      resolveBindings: tensors by WGSL name, the uniform object encoded to the struct's bytes
//   pipelines.ts   the pipeline of (kernel, override constants), created once inside an error scope
//   bind-groups.ts the bind group of (kernel, buffers), cached; the uniform's offset in this batch's arena
//   recorder.ts    encoded into the batch's compute pass (profiler.ts timestamps it while profiling)
//   capture.ts     logged too, only while a capture records (gpu.capture.recording)
//   runtime.ts     flush(): after batchSize dispatches, a write, a read or sync, one submit inside error scopes;
//                  errors.ts maps what the scopes report to an error naming the kernel; pool.ts recycles the
//                  buffers released before the submit.
// Tensors come from pool.ts (Gpu.empty/upload) and go back with Gpu.release; device.ts acquires the device.
export { Gpu, type GpuOptions } from './runtime.js';
export { kernel, numel, dtypeOf, bytesPerElement, storageBytes, type Kernel, type RawTensor, type Binding, type Dtype } from './kernel.js';
export { PRECISIONS, f16Bits, fromF16, pickPrecision, toF16, type Precision } from './f16.js';
export type { Capture } from './capture.js';
export type { PoolStats } from './pool.js';
export * from './errors.js';
