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

describe('command batching', () => {
  const addK = kernel(
    'probe.add_scalar',
    `struct P { n: u32, s: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) { if (g.x < p.n) { y[g.x] = x[g.x] + p.s; } }`,
  );

  it('dependent dispatches in one compute pass see each other; each gets its own uniforms', async () => {
    const g = gpu();
    const n = 100;
    let a = g.upload(new Float32Array(n), [n]);
    let b = g.empty([n]);
    // 150 dispatches, more than one batch; step i adds i, so the result is Σi.
    for (let i = 1; i <= 150; i++) {
      g.dispatch(addK, { p: { n, s: i }, x: a, y: b }, [2]);
      [a, b] = [b, a];
    }
    expect([...(await g.read(a))]).toEqual(new Array(n).fill((150 * 151) / 2));
    g.release(a);
    g.release(b);
  });

  it('a uniform arena that fills up is submitted and reused within a batch', async () => {
    const big = kernel(
      'probe.big_uniform',
      `struct P { v: array<vec4f, 64> }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(1) fn main() { y[0] = y[0] + p.v[63].w; }`,
    );
    const g = gpu();
    const y = g.upload([0], [1]);
    // 1 KiB of uniforms per dispatch: 64 dispatches need four times the arena of a 64-dispatch batch.
    for (let i = 1; i <= 64; i++) g.dispatch(big, { p: { v: Array.from({ length: 256 }, (_, j) => (j === 255 ? i : -1)) }, y }, [1]);
    expect([...(await g.read(y))]).toEqual([(64 * 65) / 2]);
    g.release(y);
  });

  it('a steady loop reuses its bind groups', async () => {
    const g = gpu();
    const step = () =>
      tidy(() => {
        relu(add(Tensor.zeros(g, [3, 1000]), Tensor.zeros(g, [3, 1000])));
      });
    step();
    await g.sync();
    step();
    await g.sync();
    const s0 = g.bindGroupStats();
    for (let i = 0; i < 5; i++) {
      step();
      await g.sync();
    }
    const s1 = g.bindGroupStats();
    expect(s1.misses).toBe(s0.misses);
    expect(s1.hits - s0.hits).toBe(10);
  });

  it('in debug mode a validation error at dispatch names exactly the kernel', async () => {
    const g = await Gpu.create({ debug: true });
    try {
      const x = g.upload([1, 2, 3], [3]);
      const y = g.empty([3]);
      g.dispatch(addK, { p: { n: 3, s: 1 }, x, y }, [1]);
      // The same buffer bound for reading and for writing in one dispatch is invalid.
      g.dispatch(addK, { p: { n: 3, s: 1 }, x: y, y }, [1]);
      relu(Tensor.from(g, [1], [1])).dispose();
      const err = await g.sync().catch((e) => e);
      expect(err).toBeInstanceOf(KernelError);
      expect(err.kernel).toBe('probe.add_scalar');
      expect(err.message).toContain('GPU validation error in kernel probe.add_scalar:');
    } finally {
      g.destroy();
    }
  });
});

describe('profiling', () => {
  it('times every dispatch with its kernel, bound shapes and label', async () => {
    const g = gpu();
    tidy(() => {
      const a = Tensor.zeros(g, [2, 50]);
      g.startProfile();
      g.profileLabel = 'first';
      const b = relu(a);
      g.profileLabel = 'second';
      add(a, b);
    });
    const recs = await g.stopProfile();
    expect(recs.map((r) => [r.kernel, r.label])).toEqual([
      ['relu.forward', 'first'],
      ['lincomb.forward', 'second'],
    ]);
    expect(recs[0].shapes).toEqual({ x_: [2, 50], y_: [2, 50] });
    for (const r of recs) expect(r.ms).toBeGreaterThanOrEqual(0);
    expect(await g.stopProfile()).toEqual([]);
  });
});
