// A sequence of GPU commands recorded once and replayed (a training step without per-step JS graph work).
// While the runtime captures, it runs every command as usual and also appends it here: dispatches (pipeline,
// storage buffers, uniform bytes, grid), buffer clears and copies, and uploads, which become copies from a
// staging buffer at their place in the sequence (a queue write would run before the whole replay). A replay
// encodes the list into one command buffer, with the uniforms in a buffer of the capture's own.
// Buffers allocated during the capture belong to it (BufferPool.own): released ones wait in the capture instead
// of the pool until it is disposed, so a replay never writes into a tensor made after it. What the captured
// commands read that was allocated before (parameters, inputs written before each replay) must outlive it.
import { BindGroups } from './bind-groups.js';
import type { Kernel } from './kernel.js';
import type { BufferPool } from './pool.js';

type Storage = ReadonlyMap<string, { buffer: GPUBuffer; size: number }>;

type Command =
  | { kind: 'dispatch'; kernel: Kernel; pipe: GPUComputePipeline; storage: Storage; uniform: ArrayBuffer | null; wg: [number, number, number] }
  | { kind: 'clear'; buffer: GPUBuffer; size: number }
  | { kind: 'copy'; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; bytes: number };

type Replayed = { kind: 'dispatch'; pipe: GPUComputePipeline; group: GPUBindGroup; offset: number | null; wg: [number, number, number] } | Exclude<Command, { kind: 'dispatch' }>;

export class Capture {
  private commands: Command[] = [];
  private replayed: Replayed[] | null = null;
  private uploads: { data: Uint8Array; at: number }[] = [];
  private uploadBytes = 0;
  private staging: GPUBuffer | null = null;
  private uniformBuffer: GPUBuffer | null = null;
  private disposed = false;
  /** Kernels of the captured dispatches, in order (error messages name them). */
  readonly kernels: string[] = [];

  constructor(
    private device: GPUDevice,
    private pool: BufferPool,
  ) {}

  get dispatches(): number {
    return this.kernels.length;
  }

  dispatch(kernel: Kernel, pipe: GPUComputePipeline, storage: Storage, uniform: ArrayBuffer | null, wg: [number, number, number]): void {
    this.commands.push({ kind: 'dispatch', kernel, pipe, storage: new Map(storage), uniform, wg });
    this.kernels.push(kernel.name);
  }

  clear(buffer: GPUBuffer, size: number): void {
    this.commands.push({ kind: 'clear', buffer, size });
  }

  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number): void {
    this.commands.push({ kind: 'copy', src, srcOffset: 0, dst, bytes });
  }

  /** An upload of constant data (e.g. a preprocessing table): replayed as a copy from the staging buffer. */
  upload(dst: GPUBuffer, data: Uint8Array): void {
    const at = this.uploadBytes;
    this.uploads.push({ data: data.slice(), at });
    this.uploadBytes = at + Math.ceil(data.byteLength / 4) * 4;
    // The staging buffer does not exist yet: its offset is patched into the command when the capture ends.
    this.commands.push({ kind: 'copy', src: null as unknown as GPUBuffer, srcOffset: at, dst, bytes: data.byteLength });
  }

  /** Ends recording: stages the uploads and uniforms and builds the bind groups replays use. */
  finish(bindGroups: BindGroups): void {
    const align = this.device.limits.minUniformBufferOffsetAlignment;
    if (this.uploadBytes > 0) {
      this.staging = this.device.createBuffer({ size: this.uploadBytes, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label: 'capture uploads' });
      for (const u of this.uploads) this.device.queue.writeBuffer(this.staging, u.at, u.data);
    }
    this.uploads = [];
    let uniformBytes = 0;
    const offsets = this.commands.map((c) => {
      if (c.kind !== 'dispatch' || !c.uniform) return null;
      const off = Math.ceil(uniformBytes / align) * align;
      uniformBytes = off + c.uniform.byteLength;
      return off;
    });
    if (uniformBytes > 0) {
      this.uniformBuffer = this.device.createBuffer({ size: Math.ceil(uniformBytes / 16) * 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'capture uniforms' });
      const cpu = new Uint8Array(this.uniformBuffer.size);
      this.commands.forEach((c, i) => {
        if (c.kind === 'dispatch' && c.uniform) cpu.set(new Uint8Array(c.uniform), offsets[i]!);
      });
      this.device.queue.writeBuffer(this.uniformBuffer, 0, cpu);
    }
    this.replayed = this.commands.map((c, i): Replayed => {
      if (c.kind === 'copy' && !c.src) return { ...c, src: this.staging! };
      if (c.kind !== 'dispatch') return c;
      const group = bindGroups.get(c.kernel, c.storage, c.uniform ? this.uniformBuffer : null);
      return { kind: 'dispatch', pipe: c.pipe, group, offset: offsets[i], wg: c.wg };
    });
    this.commands = [];
  }

  /** The recorded commands as one command buffer (a command buffer is submitted once, so encoded per replay). */
  checkReplayable(): void {
    if (this.disposed) throw new Error('Gpu.replay: the capture was disposed');
    if (!this.replayed) throw new Error('Gpu.replay: the capture has not ended (Gpu.endCapture)');
  }

  encode(): GPUCommandBuffer {
    this.checkReplayable();
    const enc = this.device.createCommandEncoder({ label: 'replay' });
    let pass: GPUComputePassEncoder | null = null;
    for (const c of this.replayed!) {
      if (c.kind === 'dispatch') {
        pass ??= enc.beginComputePass({ label: 'replay' });
        pass.setPipeline(c.pipe);
        pass.setBindGroup(0, c.group, c.offset === null ? [] : [c.offset]);
        pass.dispatchWorkgroups(...c.wg);
        continue;
      }
      pass?.end();
      pass = null;
      if (c.kind === 'clear') enc.clearBuffer(c.buffer, 0, c.size);
      else enc.copyBufferToBuffer(c.src, c.srcOffset, c.dst, 0, c.bytes);
    }
    pass?.end();
    return enc.finish();
  }

  /** Returns the capture's buffers to the pool (replays after this throw). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.replayed = null;
    this.commands = [];
    this.pool.disown(this);
    this.staging?.destroy();
    this.uniformBuffer?.destroy();
  }
}
