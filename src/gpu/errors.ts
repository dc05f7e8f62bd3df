// Errors raised by the runtime. Each names what failed (a kernel, a tensor, the device) so a user can act.

/** Shapes are printed the way PyTorch prints them in its messages: [1,3,256,256]. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

export function fmtBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

/** A wrong input to an op: raised at the op's entry, before anything reaches the GPU. */
export class ShapeError extends Error {
  override name = 'ShapeError';
}

/** WGSL compilation, pipeline validation or command validation failure, naming the kernel(s). */
export class KernelError extends Error {
  override name = 'KernelError';
  constructor(message: string, readonly kernel: string) {
    super(message);
  }
}

/** An allocation the device cannot hold (its limits, or out-of-memory). */
export class GpuMemoryError extends Error {
  override name = 'GpuMemoryError';
}

/** The device went away (driver reset, destroy()); nothing queued on it will complete. */
export class DeviceLostError extends Error {
  override name = 'DeviceLostError';
}

/** No WebGPU adapter: in Node, Dawn found no Vulkan/Metal/D3D12 driver; in a browser, WebGPU is off. */
export class NoAdapterError extends Error {
  override name = 'NoAdapterError';
}
