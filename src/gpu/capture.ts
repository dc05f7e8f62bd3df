// Recorded command sequences: a training step captured once and replayed, without per-step JS graph work.
// While a capture records, the runtime runs every command as usual and also logs it here (CommandLog): dispatches
// (pipeline, storage buffers, uniform bytes, grid), buffer clears and copies, and uploads, which become copies
// from a staging buffer at their place in the sequence (a queue write would run before the whole replay). A
// replay encodes the list into one command buffer, with the uniforms in a buffer of the capture's own.
// Buffers allocated during the capture belong to it (Captures, as the pool's PoolClaims): released ones wait in
// the capture instead of the pool until it is disposed, so a replay never writes into a tensor made after it.
// What the captured commands read that was allocated before (parameters, inputs written before each replay)
// must outlive it. The runtime knows capture only through `gpu.capture`: its `recording` log and the claims.
import type { BindGroups } from './bind-groups.js';
import type { Kernel } from './kernel.js';
import type { BufferPool, PoolClaims } from './pool.js';

type Storage = ReadonlyMap<string, { buffer: GPUBuffer; size: number }>;

type Command =
  | { kind: 'dispatch'; kernel: Kernel; pipe: GPUComputePipeline; storage: Storage; uniform: ArrayBuffer | null; wg: [number, number, number] }
  | { kind: 'clear'; buffer: GPUBuffer; size: number }
  | { kind: 'copy'; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; bytes: number };

type Replayed = { kind: 'dispatch'; pipe: GPUComputePipeline; group: GPUBindGroup; offset: number | null; wg: [number, number, number] } | Exclude<Command, { kind: 'dispatch' }>;

/** Where the runtime logs each command it encodes while a capture records. */
export interface CommandLog {
  dispatch(kernel: Kernel, pipe: GPUComputePipeline, storage: Storage, uniform: ArrayBuffer | null, wg: [number, number, number]): void;
  clear(buffer: GPUBuffer, size: number): void;
  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number): void;
  /** An upload of constant data (e.g. a preprocessing table): replayed as a copy from a staging buffer. */
  upload(dst: GPUBuffer, data: Uint8Array): void;
}

/** A command buffer to submit and the kernels in it (error messages name them). */
export type Submission = { commands: GPUCommandBuffer; kernels: string[] };

/** What capture needs of the runtime. */
export interface CaptureHost {
  /** Throws if the device is gone. */
  alive(): void;
  /** Submits the commands recorded so far. */
  flush(): void;
  /** Submits what `encode` returns, encoded inside the runtime's error scopes. */
  submit(encode: () => Submission): void;
}

/** The runtime's capture state (`gpu.capture`): the capture recording now, and which buffers each live one owns. */
export class Captures implements PoolClaims {
  private active: Capture | null = null;
  /** Set inside uncaptured(): commands are not logged and allocations are not the capture's. */
  private paused = false;
  private owners = new Map<GPUBuffer, Capture>();
  /** Released buffers of each live capture, out of circulation until it is disposed. */
  private held = new Map<Capture, Set<GPUBuffer>>();

  constructor(
    private device: GPUDevice,
    private pool: BufferPool,
    private bindGroups: BindGroups,
    private host: CaptureHost,
  ) {}

  /** Whether a capture is recording (uncaptured() or not). */
  get capturing(): boolean {
    return this.active !== null;
  }

  /** The log of the capture recording now; null outside a capture and inside uncaptured(). */
  get recording(): CommandLog | null {
    return this.owner;
  }

  /** Who gets the buffers allocated now. */
  private get owner(): Capture | null {
    return this.paused ? null : this.active;
  }

  /** Starts recording every command (they still run as usual). */
  start(): void {
    this.host.alive();
    if (this.active) throw new Error('gpu.capture.start: already capturing');
    this.host.flush();
    this.active = new Capture(this.device, (c) => this.disown(c));
    this.held.set(this.active, new Set());
  }

  /** Ends the recording: the capture can now be replayed, and holds the buffers its commands use. */
  end(): Capture {
    const c = this.active;
    if (!c) throw new Error('gpu.capture.end: not capturing');
    this.host.flush();
    this.active = null;
    const held = this.held.get(c)!;
    for (const b of this.pool.withdraw((b) => this.owners.get(b) === c)) held.add(b);
    c.finish(this.bindGroups);
    return c;
  }

  /** Drops a capture that failed half-way (its buffers return to the pool). */
  abort(): void {
    const c = this.active;
    this.active = null;
    c?.dispose();
  }

  /** Runs fn's commands without logging them or giving its allocations to the capture (e.g. a replay's input). */
  uncaptured<T>(fn: () => T): T {
    const paused = this.paused;
    this.paused = true;
    try {
      return fn();
    } finally {
      this.paused = paused;
    }
  }

  /** Submits the captured commands again, after what was recorded before. */
  replay(c: Capture): void {
    this.host.alive();
    if (this.active) throw new Error('gpu.capture.replay: not while capturing');
    c.checkReplayable();
    this.host.flush();
    this.host.submit(() => ({ commands: c.encode(), kernels: c.kernels }));
  }

  /** Bytes in released buffers kept for live captures. */
  heldBytes(): number {
    let n = 0;
    for (const set of this.held.values()) for (const b of set) n += b.size;
    return n;
  }

  acquired(buf: GPUBuffer): void {
    if (this.owner) this.owners.set(buf, this.owner);
  }

  /** A buffer of a capture that no longer records waits in it; the recording one reuses its buffers freely. */
  keeps(buf: GPUBuffer): boolean {
    const c = this.owners.get(buf);
    if (!c || c === this.owner) return false;
    this.held.get(c)!.add(buf);
    return true;
  }

  private disown(c: Capture): void {
    this.pool.restore(this.held.get(c) ?? []);
    this.held.delete(c);
    for (const [b, o] of this.owners) if (o === c) this.owners.delete(b);
  }
}

/** One recorded command sequence, replayed by `gpu.capture.replay`; dispose() gives its buffers back. */
export class Capture implements CommandLog {
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
    private onDispose: (c: Capture) => void,
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

  checkReplayable(): void {
    if (this.disposed) throw new Error('gpu.capture.replay: the capture was disposed');
    if (!this.replayed) throw new Error('gpu.capture.replay: the capture has not ended (gpu.capture.end)');
  }

  /** The recorded commands as one command buffer (a command buffer is submitted once, so encoded per replay). */
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
    this.onDispose(this);
    this.staging?.destroy();
    this.uniformBuffer?.destroy();
  }
}
