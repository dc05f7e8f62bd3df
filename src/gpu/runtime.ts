// The runtime: the only owner of the GPUDevice. Buffer pool, pipeline cache, batched command encoding,
// upload/readback, and errors captured with error scopes and reported with the kernel's name.
import { acquireDevice, type DeviceOptions } from './device.js';
import { DeviceLostError, GpuMemoryError, KernelError, fmtBytes, fmtShape } from './errors.js';
import { BindGroups } from './bind-groups.js';
import { Capture } from './capture.js';
import { encodeUniforms, type Kernel } from './kernel.js';
import { BufferPool, type PoolStats } from './pool.js';
import { Pipelines } from './pipelines.js';
import { Profiler, type ProfileRecord } from './profiler.js';
import { Recorder } from './recorder.js';

/** A float32, contiguous, row-major (NCHW) array on the GPU: what kernels consume and produce. */
export interface RawTensor {
  readonly buffer: GPUBuffer;
  readonly shape: readonly number[];
}

export type Binding = RawTensor | GPUBuffer | Record<string, number | readonly number[]>;

export interface GpuOptions extends DeviceOptions {
  /** Submit after every dispatch inside its own error scope, so an error names exactly one kernel. */
  debug?: boolean;
  /** Dispatches recorded before an automatic submit. */
  batchSize?: number;
  /** Largest tensor to allocate, below the device's maxStorageBufferBindingSize (to leave memory to other
   *  programs, or to exercise tiling). */
  maxTensorBytes?: number;
  /** Workgroup size of the register-tiled kernels instead of the adapter's default (tests run both sizes). */
  tileWorkgroup?: number;
}

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

type Check = Promise<Error | null>;

export class Gpu {
  readonly limits: GPUSupportedLimits;
  readonly features: ReadonlySet<string>;
  readonly adapterInfo: { vendor: string; architecture: string; device: string; description: string };
  private pool: BufferPool;
  private pipelines: Pipelines;
  private bindGroups: BindGroups;
  private rec: Recorder;
  private checks: Check[] = [];
  private lostError: DeviceLostError | null = null;
  private lostPromise: Promise<never>;
  private destroyed = false;
  readonly debug: boolean;
  /** Whether the adapter runs on the CPU (lavapipe, SwiftShader): a workgroup there is a loop over SIMD lanes. */
  readonly software: boolean;
  /** Workgroup size of the register-tiled kernels (convolutions): on a CPU adapter its SIMD width, so one
   *  workgroup is one vector and small layers waste no lanes (measured on lavapipe: 8 beats 16, 32 and 64 on
   *  every conv shape, 5.6× on VGG's 8×8 layers); on a GPU 64. */
  readonly tileWorkgroup: number;
  /** The largest tensor this runtime allocates (the device's binding limit, or less if asked). */
  readonly maxTensorBytes: number;
  private batchSize: number;
  /** The capture recording now (startCapture … endCapture). */
  private capturing: Capture | null = null;
  /** Set while uncaptured() runs: commands run but are not recorded, and allocations are not the capture's. */
  private captureOff = false;

  private constructor(
    readonly device: GPUDevice,
    readonly adapter: GPUAdapter,
    private releaseGpu: () => void,
    opts: GpuOptions,
  ) {
    this.limits = device.limits;
    this.features = new Set([...device.features] as string[]);
    const i = adapter.info;
    this.adapterInfo = { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description };
    const info = i as GPUAdapterInfo & { isFallbackAdapter?: boolean; subgroupMaxSize?: number };
    this.software =
      !!(info.isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter) ||
      /llvmpipe|lavapipe|swiftshader|software/i.test(`${i.architecture} ${i.device} ${i.description}`);
    const simd = info.subgroupMaxSize && info.subgroupMaxSize >= 4 && info.subgroupMaxSize <= 64 ? info.subgroupMaxSize : 8;
    this.tileWorkgroup = opts.tileWorkgroup ?? (this.software ? simd : 64);
    this.debug = opts.debug ?? (typeof process !== 'undefined' && process.env?.PERCEPTUAL_DEBUG === '1');
    this.batchSize = opts.batchSize ?? 64;
    this.maxTensorBytes = Math.min(device.limits.maxStorageBufferBindingSize, opts.maxTensorBytes ?? Infinity);
    this.pool = new BufferPool(device, this.maxTensorBytes, (p, what) =>
      this.checks.push(p.then((e) => (e ? new GpuMemoryError(`GPU out of memory allocating ${what}: ${e.message}`) : null))),
    );
    this.bindGroups = new BindGroups(device);
    this.pipelines = new Pipelines(device, this.bindGroups, (p) => this.checks.push(p));
    // Room for a batch of uniform structs (each at most a few dozen bytes) at the offset alignment.
    const arena = Math.max(16384, this.batchSize * Math.max(device.limits.minUniformBufferOffsetAlignment, 256) * 2);
    this.rec = new Recorder(device, this.debug, arena);
    this.lostPromise = device.lost.then((info) => {
      this.lostError = new DeviceLostError(
        this.destroyed ? 'GPU device was destroyed (Gpu.destroy() was called)' : `GPU device lost (${info.reason}): ${info.message}`,
      );
      throw this.lostError;
    });
    this.lostPromise.catch(() => {});
    device.addEventListener('uncapturederror', (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.checks.push(Promise.resolve(new KernelError(`GPU error outside any kernel: ${e.message}`, 'unknown')));
    });
  }

  static async create(opts: GpuOptions = {}): Promise<Gpu> {
    const { device, adapter, release } = await acquireDevice(opts);
    return new Gpu(device, adapter, release, opts);
  }

  private alive(): void {
    if (this.lostError) throw this.lostError;
  }

  // ---- memory -------------------------------------------------------------------------------------

  /** An uninitialised tensor from the pool. */
  empty(shape: readonly number[], what = 'tensor'): RawTensor {
    this.alive();
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new Error(`${what}: invalid shape ${fmtShape(shape)}`);
    }
    const bytes = Math.max(4, numel(shape) * 4);
    if (bytes > this.maxTensorBytes) {
      const limit = this.maxTensorBytes < this.limits.maxStorageBufferBindingSize ? 'maxTensorBytes setting' : 'maxStorageBufferBindingSize';
      throw new GpuMemoryError(
        `${what} ${fmtShape(shape)} needs ${fmtBytes(bytes)}, beyond this device's ${limit} ` +
          `(${fmtBytes(this.maxTensorBytes)}); use a smaller input or process it in tiles`,
      );
    }
    return { buffer: this.pool.acquire(bytes, STORAGE(), `${what} ${fmtShape(shape)}`), shape: [...shape] };
  }

  zeros(shape: readonly number[], what = 'tensor'): RawTensor {
    const t = this.empty(shape, what);
    this.enc().clearBuffer(t.buffer, 0, t.buffer.size);
    this.recording?.clear(t.buffer, t.buffer.size);
    return t;
  }

  /** A tensor with this data; a Uint32Array is written as raw 32-bit words (index tables of kernels). Every upload
   *  goes through here, so that a capture records it. */
  upload(data: ArrayLike<number> | Uint32Array, shape: readonly number[], what = 'tensor'): RawTensor {
    const n = numel(shape);
    if (data.length !== n) throw new Error(`${what}: ${data.length} values for shape ${fmtShape(shape)} (${n} elements)`);
    const t = this.empty(shape, what);
    const f = data instanceof Float32Array || data instanceof Uint32Array ? data : Float32Array.from(data);
    // writeBuffer runs before the pending commands are submitted; the buffer came from the free pool, so
    // nothing recorded yet reads its previous content.
    if (n > 0) {
      this.device.queue.writeBuffer(t.buffer, 0, f.buffer, f.byteOffset, n * 4);
      this.recording?.upload(t.buffer, new Uint8Array(f.buffer, f.byteOffset, n * 4));
    }
    return t;
  }

  /** Overwrites a tensor's data (e.g. the input of a replayed step) before the commands recorded after this. */
  write(t: RawTensor, data: ArrayLike<number>): void {
    const n = numel(t.shape);
    if (data.length !== n) throw new Error(`Gpu.write: ${data.length} values for shape ${fmtShape(t.shape)} (${n} elements)`);
    if (this.recording) throw new Error('Gpu.write: not while capturing (write inputs before each replay instead)');
    // Commands recorded before may read the old data: submit them first (queue order keeps them before the write).
    this.flush();
    const f = data instanceof Float32Array ? data : Float32Array.from(data);
    if (n > 0) this.device.queue.writeBuffer(t.buffer, 0, f.buffer, f.byteOffset, n * 4);
  }

  /** Returns the buffer to the pool once the commands recorded so far are submitted. */
  release(t: RawTensor): void {
    this.pool.release(t.buffer);
    if (this.rec.empty) this.pool.recycle();
  }

  copy(src: RawTensor, dst: RawTensor, bytes = numel(src.shape) * 4): void {
    this.alive();
    this.enc().copyBufferToBuffer(src.buffer, 0, dst.buffer, 0, bytes);
    this.recording?.copy(src.buffer, dst.buffer, bytes);
  }

  stats(): PoolStats {
    return this.pool.stats();
  }

  resetPeak(): void {
    this.pool.resetPeak();
  }

  trim(): void {
    this.pool.trim();
    this.bindGroups.clear();
  }

  /** Bind-group cache hits and misses since creation. */
  bindGroupStats(): { hits: number; misses: number } {
    return { hits: this.bindGroups.hits, misses: this.bindGroups.misses };
  }

  // ---- kernels ------------------------------------------------------------------------------------

  /** `groups` workgroups folded into (x, y) above the per-dimension limit, and `z` as given: the one place grids
   *  fold. Kernels index `wid.x + wid.y·nwg.x` (per invocation: `gid.x + gid.y·nwg.x·WG`) and skip the excess. */
  fold(groups: number, what: string, z = 1): [number, number, number] {
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    const g = Math.max(1, groups);
    const [x, y] = g <= max ? [g, 1] : [max, Math.ceil(g / max)];
    if (y > max || z > max) throw new Error(`${what}: ${g} × ${z} workgroups exceed the device's dispatch limits (${max} per dimension)`);
    return [x, y, z];
  }

  /** The folded 1-D grid of kernel k for n invocations of `items` elements each, from its reflected @workgroup_size. */
  grid(k: Kernel, n: number, items = 1): [number, number, number] {
    return this.fold(Math.ceil(n / (k.workgroupSize[0] * items)), k.name);
  }

  pipeline(k: Kernel, constants: Record<string, number> = {}): GPUComputePipeline {
    this.alive();
    return this.pipelines.get(k, constants);
  }

  /** Records one dispatch. Bindings by WGSL name: tensors for storage, plain objects for uniform structs. */
  dispatch(k: Kernel, bindings: Record<string, Binding>, workgroups: readonly number[], constants?: Record<string, number>): void {
    this.alive();
    const pipe = this.pipeline(k, constants);
    const storage = new Map<string, { buffer: GPUBuffer; size: number }>();
    let uniform: ArrayBuffer | null = null;
    for (const [name, b] of k.bindings) {
      const v = bindings[name];
      if (v === undefined) throw new Error(`kernel ${k.name}: binding ${name} not given`);
      if (b.kind === 'uniform') uniform = encodeUniforms(k, b, v as Record<string, number>);
      else {
        const t = v as RawTensor | GPUBuffer;
        const buffer = 'buffer' in t ? t.buffer : t;
        storage.set(name, { buffer, size: 'shape' in t ? Math.max(4, numel(t.shape) * 4) : buffer.size });
      }
    }
    for (const name of Object.keys(bindings)) {
      if (!k.bindings.has(name)) throw new Error(`kernel ${k.name}: no binding named ${name}`);
    }
    const [x, y = 1, z = 1] = workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const bg = this.bindGroups.get(k, storage, uniform ? this.rec.uniforms.buffer : null);
    this.recording?.dispatch(k, pipe, storage, uniform, [x, y, z]);
    if (!this.rec.dispatch(k, bindings, pipe, bg, uniform, [x, y, z])) {
      this.flush();
      this.rec.dispatch(k, bindings, pipe, bg, uniform, [x, y, z]);
    }
    if (this.debug || this.rec.kernels.length >= this.batchSize) this.flush();
  }

  /** Attached to the dispatches recorded while profiling (e.g. the layer or phase being run). */
  get profileLabel(): string {
    return this.rec.profileLabel;
  }

  set profileLabel(label: string) {
    this.rec.profileLabel = label;
  }

  /** Times every dispatch from now on with timestamp queries (needs the adapter's 'timestamp-query'). */
  startProfile(): void {
    if (!this.features.has('timestamp-query')) throw new Error("profiling needs the adapter's 'timestamp-query' feature");
    this.flush();
    this.rec.profiler ??= new Profiler(this.device, this.batchSize);
  }

  /** Stops profiling; returns the GPU time of every dispatch recorded since startProfile. */
  async stopProfile(): Promise<ProfileRecord[]> {
    const p = this.rec.profiler;
    if (!p) return [];
    await this.sync();
    this.rec.profiler = null;
    return p.collect();
  }

  private enc(): GPUCommandEncoder {
    this.alive();
    return this.rec.encoder();
  }

  /** Submits what was recorded; buffers released meanwhile become reusable. */
  flush(): void {
    if (this.rec.empty) return;
    // Encoding errors surface at finish(): it runs inside the scopes too.
    this.device.pushErrorScope('validation');
    this.device.pushErrorScope('out-of-memory');
    const { commands, kernels } = this.rec.finish()!;
    this.submit(commands, kernels);
  }

  private submit(commands: GPUCommandBuffer, kernels: string[]): void {
    this.device.queue.submit([commands]);
    const oom = this.device.popErrorScope();
    const val = this.device.popErrorScope();
    this.checks.push(
      Promise.all([oom, val]).then(([o, v]) => {
        if (o) return new GpuMemoryError(`GPU out of memory running ${describe(kernels)}: ${o.message}`);
        if (!v) return null;
        const named = /"([\w-]+\.[\w-]+)"/.exec(v.message)?.[1];
        return new KernelError(`GPU validation error in kernel ${named ?? describe(kernels)}: ${v.message}`, named ?? kernels[0] ?? 'unknown');
      }),
    );
    this.pool.recycle();
  }

  // ---- recorded command sequences ------------------------------------------------------------------

  private get recording(): Capture | null {
    return this.captureOff ? null : this.capturing;
  }

  /** Starts recording every command (they still run as usual) for Capture replays; see capture.ts. */
  startCapture(): void {
    this.alive();
    if (this.capturing) throw new Error('Gpu.startCapture: already capturing');
    this.flush();
    this.capturing = new Capture(this.device, this.pool);
    this.pool.own(this.capturing);
  }

  /** Ends the recording: the capture can now be replayed, and holds the buffers its commands use. */
  endCapture(): Capture {
    const c = this.capturing;
    if (!c) throw new Error('Gpu.endCapture: not capturing');
    this.flush();
    this.capturing = null;
    this.pool.endOwn(c);
    c.finish(this.bindGroups);
    return c;
  }

  /** Drops a capture that failed half-way (its buffers return to the pool). */
  abortCapture(): void {
    const c = this.capturing;
    this.capturing = null;
    c?.dispose();
  }

  /** Runs fn's commands without recording them or giving its allocations to the capture (e.g. a replay's input). */
  uncaptured<T>(fn: () => T): T {
    const [off, owner] = [this.captureOff, this.capturing];
    this.captureOff = true;
    if (owner) this.pool.endOwnTemporarily(owner);
    try {
      return fn();
    } finally {
      this.captureOff = off;
      if (owner) this.pool.resumeOwn(owner);
    }
  }

  /** Submits the captured commands again, after what was recorded before. */
  replay(c: Capture): void {
    this.alive();
    if (this.capturing) throw new Error('Gpu.replay: not while capturing');
    c.checkReplayable();
    this.flush();
    // Encoding errors surface at finish(): inside the scopes, as in flush().
    this.device.pushErrorScope('validation');
    this.device.pushErrorScope('out-of-memory');
    this.submit(c.encode(), c.kernels);
    this.pool.recycle();
  }

  /** Throws the first error any scope captured since the last call. */
  async checkErrors(): Promise<void> {
    const checks = this.checks;
    this.checks = [];
    const errs = await Promise.race([Promise.all(checks), this.lostPromise]);
    const first = errs.find((e) => e);
    if (first) throw first;
  }

  /** Submits and waits until the GPU finished everything; throws captured errors. */
  async sync(): Promise<void> {
    this.flush();
    await Promise.race([this.device.queue.onSubmittedWorkDone(), this.lostPromise]);
    await this.checkErrors();
  }

  /** Reads a tensor back to the CPU. */
  async read(t: RawTensor): Promise<Float32Array> {
    if (this.capturing) throw new Error('Gpu.read: not while capturing (a readback is not part of a replayable sequence)');
    const bytes = numel(t.shape) * 4;
    if (bytes === 0) return new Float32Array(0);
    const staging = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'readback' });
    this.enc().copyBufferToBuffer(t.buffer, 0, staging, 0, bytes);
    this.flush();
    try {
      await Promise.race([staging.mapAsync(GPUMapMode.READ), this.lostPromise]);
      await this.checkErrors();
      return new Float32Array(staging.getMappedRange().slice(0));
    } finally {
      staging.destroy();
    }
  }

  /** Ends the device and lets Node exit (Dawn keeps the process alive while its GPU object lives). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.rec.reset();
    this.pipelines.clear();
    this.bindGroups.clear();
    this.device.destroy();
    this.releaseGpu();
  }
}

function describe(kernels: string[]): string {
  const uniq = [...new Set(kernels)];
  return uniq.length === 1 ? uniq[0] : `one of [${uniq.join(', ')}] (debug mode, PERCEPTUAL_DEBUG=1, names exactly one)`;
}
