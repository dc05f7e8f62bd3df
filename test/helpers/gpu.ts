// One Dawn device per test file, on whatever adapter is present. No adapter fails the file, never skips it.
import { afterAll, beforeAll } from 'vitest';
import { Gpu, type GpuOptions } from '../../src/gpu/index.js';

export function useGpu(opts: GpuOptions = {}): () => Gpu {
  let gpu: Gpu | null = null;
  beforeAll(async () => {
    gpu = await Gpu.create(opts);
  }, 60_000);
  afterAll(() => {
    gpu?.destroy();
    gpu = null;
  });
  return () => {
    if (!gpu) throw new Error('useGpu: no device (Gpu.create failed in beforeAll)');
    return gpu;
  };
}
