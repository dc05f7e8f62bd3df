// Errors raised by the runtime, and the checks that collect what the GPU reports late. Each error names what
// failed (a kernel, a tensor, the device) so a user can act.

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

/** A tensor of the wrong storage type for an op (an f16 tensor where a gradient would be recorded). */
export class DtypeError extends Error {
  override name = 'DtypeError';
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

/** A submit's error scopes, out-of-memory and validation, pushed before it by Gpu.submit. */
type Scopes = { oom: Promise<GPUError | null>; validation: Promise<GPUError | null> };

/** What the GPU reports late (error scopes, device loss, uncaptured errors), collected until the next check. */
export class ErrorChecks {
  private pending: Promise<Error | null>[] = [];
  private lostError: DeviceLostError | null = null;
  /** Rejects when the device is lost: every wait on the GPU races it. */
  readonly lost: Promise<never>;

  constructor(device: GPUDevice, destroyed: () => boolean) {
    this.lost = device.lost.then((info) => {
      this.lostError = new DeviceLostError(
        destroyed() ? 'GPU device was destroyed (Gpu.destroy() was called)' : `GPU device lost (${info.reason}): ${info.message}`,
      );
      throw this.lostError;
    });
    this.lost.catch(() => {});
    device.addEventListener('uncapturederror', (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.add(Promise.resolve(new KernelError(`GPU error outside any kernel: ${e.message}`, 'unknown')));
    });
  }

  /** Throws if the device is gone. */
  alive(): void {
    if (this.lostError) throw this.lostError;
  }

  add(check: Promise<Error | null>): void {
    this.pending.push(check);
  }

  /** A submit's scopes, mapped to an error naming the kernel (from Dawn's message, or the batch's list). */
  submitted({ oom, validation }: Scopes, kernels: string[]): void {
    this.add(
      Promise.all([oom, validation]).then(([o, v]) => {
        if (o) return new GpuMemoryError(`GPU out of memory running ${describe(kernels)}: ${o.message}`);
        if (!v) return null;
        const named = /"([\w-]+\.[\w-]+)"/.exec(v.message)?.[1];
        return new KernelError(`GPU validation error in kernel ${named ?? describe(kernels)}: ${v.message}`, named ?? kernels[0] ?? 'unknown');
      }),
    );
  }

  /** Waits for `p` unless the device is lost first. */
  race<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.lost]);
  }

  /** Throws the first error collected since the last call. */
  async check(): Promise<void> {
    const checks = this.pending;
    this.pending = [];
    const first = (await this.race(Promise.all(checks))).find((e) => e);
    if (first) throw first;
  }
}

function describe(kernels: string[]): string {
  const uniq = [...new Set(kernels)];
  return uniq.length === 1 ? uniq[0] : `one of [${uniq.join(', ')}] (debug mode, PERCEPTUAL_DEBUG=1, names exactly one)`;
}
