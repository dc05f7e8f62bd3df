// The runtime's own contracts: adapter present, errors that name the kernel, limits, device loss, pooling.
import { describe, expect, it } from 'vitest';
import { Tensor, tidy } from '../src/autograd/tensor.js';
import { DeviceLostError, Gpu, GpuMemoryError, KernelError, ShapeError, kernel } from '../src/gpu/index.js';
import { add, relu } from '../src/layers/elementwise.js';
import { useGpu } from './helpers/gpu.js';

const gpu = useGpu();

describe('adapter', () => {
  it('a WebGPU adapter is present (no adapter is a failure, not a skip)', () => {
    const g = gpu();
    expect(g.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 << 20);
    expect(typeof g.adapterInfo.vendor).toBe('string');
  });
});

describe('errors name what failed', () => {
  it('a WGSL compile error names the kernel and the line', async () => {
    const broken = kernel(
      'broken.forward',
      `struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  y[g.x] = undefined_function(1.0);
}`,
    );
    const g = gpu();
    const y = g.empty([64]);
    g.dispatch(broken, { p: { n: 64 }, y }, [1]);
    const err = await g.sync().catch((e) => e);
    expect(err).toBeInstanceOf(KernelError);
    expect(err.message).toContain('broken.forward');
    expect(err.message).toMatch(/line 5/);
    expect(err.message).toContain('undefined_function');
    g.release(y);
    await g.sync(); // the error was reported once; the device still works
    const t = Tensor.from(g, [1, -2, 3], [3]);
    expect([...(await relu(t).data())]).toEqual([1, 0, 3]);
  });

  it('a binding the kernel lacks, or a missing uniform field, is named', () => {
    const g = gpu();
    const k = kernel('probe.forward', `struct P { n: u32, s: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(1) fn main() { y[0] = p.s; }`);
    const y = g.empty([1]);
    expect(() => g.dispatch(k, { p: { n: 1 }, y }, [1])).toThrow(/probe\.forward: uniform p\.s not given/);
    expect(() => g.dispatch(k, { p: { n: 1, s: 1 }, y, z: y }, [1])).toThrow(/probe\.forward: no binding named z/);
    g.release(y);
  });

  it('a shape mismatch names the op and every shape', () => {
    const g = gpu();
    tidy(() => {
      const a = Tensor.zeros(g, [1, 3, 4, 5]);
      const b = Tensor.zeros(g, [1, 3, 5, 4]);
      expect(() => add(a, b)).toThrow(ShapeError);
      expect(() => add(a, b)).toThrow('add: shapes must match; a [1,3,4,5], b [1,3,5,4]');
    });
  });

  it('an allocation beyond the device limits is a clear error, and nothing is lost', () => {
    const g = gpu();
    const before = g.stats().inUseBytes;
    const huge = [1, 3, 20000, 20000];
    expect(() => g.empty(huge, 'image')).toThrow(GpuMemoryError);
    expect(() => g.empty(huge, 'image')).toThrow(/image \[1,3,20000,20000\] needs 4\.47 GiB, beyond this device's maxStorageBufferBindingSize/);
    expect(g.stats().inUseBytes).toBe(before);
  });
});

describe('buffer pool', () => {
  it('reuses released buffers after submit; in-use bytes return to where they were', async () => {
    const g = gpu();
    await g.sync();
    const s0 = g.stats();
    for (let i = 0; i < 20; i++) {
      tidy(() => {
        relu(add(Tensor.zeros(g, [3, 1000]), Tensor.zeros(g, [3, 1000])));
      });
      g.flush();
    }
    await g.sync();
    const s1 = g.stats();
    expect(s1.inUseBytes).toBe(s0.inUseBytes);
    // The first iteration creates what it needs; the other 19 reuse it.
    expect(s1.created - s0.created).toBeLessThanOrEqual(6);
  });

  it('a tensor used after dispose is an error that says so', () => {
    const t = Tensor.zeros(gpu(), [2]);
    t.dispose();
    expect(() => relu(t)).toThrow(/was disposed/);
  });
});

describe('device loss', () => {
  it('is reported as an error, not a hang', async () => {
    const g = await Gpu.create();
    try {
      const t = Tensor.from(g, [1, 2, 3], [3]);
      const pending = relu(t);
      g.device.destroy(); // what a driver reset looks like from here
      await expect(pending.data()).rejects.toBeInstanceOf(DeviceLostError);
      expect(() => relu(t)).toThrow(DeviceLostError);
    } finally {
      g.destroy();
    }
  });
});
