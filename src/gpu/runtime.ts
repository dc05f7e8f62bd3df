// The runtime: the only owner of the GPUDevice. Memory (buffer pool, upload, readback), dispatch (pipelines,
// bind groups, batched command encoding, grids) and sync (submits inside error scopes, errors reported with the
// kernel's name). Recorded command sequences are capture.ts's: the runtime only logs to `capture.recording`.
import { acquireDevice, adapterTraits, type DeviceOptions } from './device.js';
import { ErrorChecks, GpuMemoryError, fmtShape } from './errors.js';
import { BindGroups } from './bind-groups.js';
import { Captures, type Submission } from './capture.js';
import { f16Variant, fromF16, halfBindings, uploadBytes } from './f16.js';
import { bytesPerElement, numel, resolveBindings, storageBytes, type Binding, type Dtype, type Kernel, type RawTensor } from './kernel.js';
import { BufferPool, type PoolStats } from './pool.js';
import { Pipelines } from './pipelines.js';
import { Profiler, type ProfileRecord } from './profiler.js';
import { Recorder } from './recorder.js';

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

const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export class Gpu {
  readonly limits: GPUSupportedLimits;
  readonly features: ReadonlySet<string>;
  readonly adapterInfo: { vendor: string; architecture: string; device: string; description: string };
  readonly debug: boolean;
  /** Whether the adapter runs on the CPU (lavapipe, SwiftShader): a workgroup there is a loop over SIMD lanes. */
  readonly software: boolean;
  /** Workgroup size of the register-tiled kernels (convolutions): on a CPU adapter its SIMD width, so one
   *  workgroup is one vector and small layers waste no lanes (measured on lavapipe: 8 beats 16, 32 and 64 on
   *  every conv shape, 5.6× on VGG's 8×8 layers); on a GPU 64. */
  readonly tileWorkgroup: number;
  /** The largest tensor this runtime allocates (the device's binding limit, or less if asked). */
  readonly maxTensorBytes: number;
  /** Recorded command sequences: capture.start() … capture.end(), capture.replay(c); see capture.ts. */
  readonly capture: Captures;
  private pool: BufferPool;
  private pipelines: Pipelines;
  private bindGroups: BindGroups;
  private rec: Recorder;
  private errors: ErrorChecks;
  private destroyed = false;
  private batchSize: number;

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
    const { software, simd } = adapterTraits(adapter);
    this.software = software;
    this.tileWorkgroup = opts.tileWorkgroup ?? (software ? simd : 64);
    this.debug = opts.debug ?? (typeof process !== 'undefined' && process.env?.PERCEPTUAL_DEBUG === '1');
    this.batchSize = opts.batchSize ?? 64;
    this.maxTensorBytes = Math.min(device.limits.maxStorageBufferBindingSize, opts.maxTensorBytes ?? Infinity);
    this.errors = new ErrorChecks(device, () => this.destroyed);
    const limitName = this.maxTensorBytes < device.limits.maxStorageBufferBindingSize ? 'maxTensorBytes setting' : 'maxStorageBufferBindingSize';
    this.pool = new BufferPool(device, this.maxTensorBytes, limitName, (p, what) =>
      this.errors.add(p.then((e) => (e ? new GpuMemoryError(`GPU out of memory allocating ${what}: ${e.message}`) : null))),
    );
    this.bindGroups = new BindGroups(device);
    this.pipelines = new Pipelines(device, this.bindGroups, (p) => this.errors.add(p));
    // Room for a batch of uniform structs (each at most a few dozen bytes) at the offset alignment.
    const arena = Math.max(16384, this.batchSize * Math.max(device.limits.minUniformBufferOffsetAlignment, 256) * 2);
    this.rec = new Recorder(device, this.debug, arena);
    this.capture = new Captures(device, this.pool, this.bindGroups, {
      alive: () => this.errors.alive(),
      flush: () => this.flush(),
      submit: (encode) => this.submit(encode),
    });
    this.pool.claims = this.capture;
  }

  static async create(opts: GpuOptions = {}): Promise<Gpu> {
    const { device, adapter, release } = await acquireDevice(opts);
    return new Gpu(device, adapter, release, opts);
  }

  // ---- memory -------------------------------------------------------------------------------------

  /** An uninitialised tensor from the pool; f16 (2 bytes an element) needs the device's 'shader-f16'. */
  empty(shape: readonly number[], what = 'tensor', dtype: Dtype = 'f32'): RawTensor {
    this.errors.alive();
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new Error(`${what}: invalid shape ${fmtShape(shape)}`);
    }
    if (dtype === 'f16' && !this.features.has('shader-f16')) throw new Error(`${what}: an f16 tensor needs the adapter's 'shader-f16' feature, which this adapter does not have`);
    const buffer = this.pool.acquire(storageBytes(numel(shape), dtype), STORAGE(), `${what} ${fmtShape(shape)}${dtype === 'f16' ? ' f16' : ''}`);
    return dtype === 'f16' ? { buffer, shape: [...shape], dtype } : { buffer, shape: [...shape] };
  }

  zeros(shape: readonly number[], what = 'tensor', dtype: Dtype = 'f32'): RawTensor {
    const t = this.empty(shape, what, dtype);
    this.enc().clearBuffer(t.buffer, 0, t.buffer.size);
    this.capture.recording?.clear(t.buffer, t.buffer.size);
    return t;
  }

  /** A tensor with this data; a Uint32Array is written as raw 32-bit words (index tables of kernels). With dtype
   *  f16 the values are rounded to binary16 (to nearest, ties to even), or taken as binary16 bits from a Uint16Array.
   *  Every upload goes through here, so that a capture records it. */
  upload(data: ArrayLike<number> | Uint32Array | Uint16Array, shape: readonly number[], what = 'tensor', dtype: Dtype = 'f32'): RawTensor {
    const n = numel(shape);
    if (data.length !== n) throw new Error(`${what}: ${data.length} values for shape ${fmtShape(shape)} (${n} elements)`);
    const t = this.empty(shape, what, dtype);
    const bytes = uploadBytes(data, dtype);
    // writeBuffer runs before the pending commands are submitted; the buffer came from the free pool, so
    // nothing recorded yet reads its previous content.
    if (n > 0) {
      this.device.queue.writeBuffer(t.buffer, 0, bytes.buffer, bytes.byteOffset, bytes.byteLength);
      this.capture.recording?.upload(t.buffer, bytes);
    }
    return t;
  }

  /** Overwrites a tensor's data (e.g. the input of a replayed step) before the commands recorded after this. */
  write(t: RawTensor, data: ArrayLike<number>): void {
    const n = numel(t.shape);
    if (data.length !== n) throw new Error(`Gpu.write: ${data.length} values for shape ${fmtShape(t.shape)} (${n} elements)`);
    if (this.capture.recording) throw new Error('Gpu.write: not while capturing (write inputs before each replay instead)');
    // Commands recorded before may read the old data: submit them first (queue order keeps them before the write).
    this.flush();
    const bytes = uploadBytes(data, t.dtype ?? 'f32');
    if (n > 0) this.device.queue.writeBuffer(t.buffer, 0, bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Returns the buffer to the pool once the commands recorded so far are submitted. */
  release(t: RawTensor): void {
    this.pool.release(t.buffer);
    if (this.rec.empty) this.pool.recycle();
  }

  copy(src: RawTensor, dst: RawTensor, bytes = numel(src.shape) * bytesPerElement(src.dtype)): void {
    if ((src.dtype ?? 'f32') !== (dst.dtype ?? 'f32')) throw new Error(`Gpu.copy: ${src.dtype ?? 'f32'} ${fmtShape(src.shape)} into ${dst.dtype ?? 'f32'} ${fmtShape(dst.shape)} (a copy does not convert)`);
    // Copies move whole words: an odd number of f16 elements takes the buffer's padding along.
    bytes = Math.ceil(bytes / 4) * 4;
    this.enc().copyBufferToBuffer(src.buffer, 0, dst.buffer, 0, bytes);
    this.capture.recording?.copy(src.buffer, dst.buffer, bytes);
  }

  stats(): PoolStats {
    return { ...this.pool.stats(), heldBytes: this.capture.heldBytes() };
  }

  resetPeak(): void {
    this.pool.resetPeak();
  }

  resetLargest(): void {
    this.pool.resetLargest();
  }

  trim(): void {
    this.pool.trim();
    this.bindGroups.clear();
  }

  /** Bind-group cache hits and misses since creation. */
  bindGroupStats(): { hits: number; misses: number } {
    return { hits: this.bindGroups.hits, misses: this.bindGroups.misses };
  }

  // ---- dispatch -----------------------------------------------------------------------------------

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
    this.errors.alive();
    return this.pipelines.get(k, constants);
  }

  /** Records one dispatch. Bindings by WGSL name: tensors for storage, plain objects for uniform structs. */
  dispatch(k: Kernel, bindings: Record<string, Binding>, workgroups: readonly number[], constants?: Record<string, number>): void {
    // Tensors stored in f16 are bound to the kernel's f16 variant for those bindings (f16.ts), derived once.
    const half = halfBindings(bindings);
    if (half.length) k = f16Variant(k, half);
    const pipe = this.pipeline(k, constants);
    const { storage, uniform } = resolveBindings(k, bindings);
    const [x, y = 1, z = 1] = workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const bg = this.bindGroups.get(k, storage, uniform ? this.rec.uniforms.buffer : null);
    this.capture.recording?.dispatch(k, pipe, storage, uniform, [x, y, z]);
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

  // ---- sync ---------------------------------------------------------------------------------------

  private enc(): GPUCommandEncoder {
    this.errors.alive();
    return this.rec.encoder();
  }

  /** Submits what was recorded; buffers released meanwhile become reusable. */
  flush(): void {
    if (!this.rec.empty) this.submit(() => this.rec.finish()!);
  }

  /** Encodes (encoding errors surface at finish(), so inside the scopes too) and submits inside error scopes. */
  private submit(encode: () => Submission): void {
    this.device.pushErrorScope('validation');
    this.device.pushErrorScope('out-of-memory');
    const { commands, kernels } = encode();
    this.device.queue.submit([commands]);
    const oom = this.device.popErrorScope();
    this.errors.submitted({ oom, validation: this.device.popErrorScope() }, kernels);
    this.pool.recycle();
  }

  /** Throws the first error any scope captured since the last call. */
  checkErrors(): Promise<void> {
    return this.errors.check();
  }

  /** Submits and waits until the GPU finished everything; throws captured errors. */
  async sync(): Promise<void> {
    this.flush();
    await this.errors.race(this.device.queue.onSubmittedWorkDone());
    await this.errors.check();
  }

  /** Reads a tensor back to the CPU as float32 (f16 tensors converted). */
  async read(t: RawTensor): Promise<Float32Array> {
    const r = await this.readStored(t);
    return r instanceof Uint16Array ? fromF16(r) : r;
  }

  /** Reads a tensor back as stored: float32, or an f16 tensor's binary16 bits (half the host memory). */
  async readStored(t: RawTensor): Promise<Float32Array | Uint16Array> {
    if (this.capture.capturing) throw new Error('Gpu.read: not while capturing (a readback is not part of a replayable sequence)');
    const n = numel(t.shape);
    const half = t.dtype === 'f16';
    const bytes = storageBytes(n, t.dtype);
    if (n === 0) return half ? new Uint16Array(0) : new Float32Array(0);
    const staging = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'readback' });
    this.enc().copyBufferToBuffer(t.buffer, 0, staging, 0, bytes);
    this.flush();
    try {
      await this.errors.race(staging.mapAsync(GPUMapMode.READ));
      await this.errors.check();
      const data = staging.getMappedRange().slice(0);
      return half ? new Uint16Array(data, 0, n) : new Float32Array(data);
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
