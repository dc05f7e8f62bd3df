// A pool of storage buffers keyed by (rounded size, usage). Released buffers wait until the commands that
// may still read them were submitted (the runtime calls `recycle()` after each submit), then are reused.
import { GpuMemoryError, fmtBytes } from './errors.js';

/** Whoever owns the buffers allocated while it records (a Capture): released, they wait for it, not the pool. */
export type Owner = object;

export interface PoolStats {
  /** Bytes in buffers handed out and not yet released. */
  inUseBytes: number;
  /** Bytes held by the pool, handed out or free (what the GPU actually holds). */
  totalBytes: number;
  inUseBuffers: number;
  totalBuffers: number;
  /** Highest inUseBytes seen since creation (or the last resetPeak). */
  peakInUseBytes: number;
  /** createBuffer calls since creation: flat in a steady training loop. */
  created: number;
  /** Bytes in released buffers kept for recorded command sequences (captures) that may replay into them. */
  heldBytes: number;
}

/** Rounds up to 256 B, then to a quarter-octave (≤ 25 % waste) so similar sizes share buffers. */
export function roundSize(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes / 256) * 256);
  if (b <= 4096) return b;
  const step = 2 ** (Math.floor(Math.log2(b)) - 2);
  return Math.ceil(b / step) * step;
}

export class BufferPool {
  private free = new Map<string, GPUBuffer[]>();
  private pending: GPUBuffer[] = [];
  private inUse = new Set<GPUBuffer>();
  /** The owner recording now: buffers acquired meanwhile belong to it. */
  private owner: Owner | null = null;
  private owned = new Map<GPUBuffer, Owner>();
  /** Released buffers of owners that have stopped recording: they come back when the owner disowns them. */
  private held = new Map<Owner, Set<GPUBuffer>>();
  private stats_ = { inUseBytes: 0, totalBytes: 0, totalBuffers: 0, peakInUseBytes: 0, created: 0 };

  constructor(
    private device: GPUDevice,
    private maxBufferBytes: number,
    /** Called with the promise of an out-of-memory scope around each createBuffer. */
    private onAllocCheck: (p: Promise<GPUError | null>, what: string) => void,
  ) {}

  acquire(bytes: number, usage: number, what: string): GPUBuffer {
    if (bytes > this.maxBufferBytes) {
      throw new GpuMemoryError(
        `${what}: needs ${fmtBytes(bytes)}, beyond this device's largest buffer binding ` +
          `(maxStorageBufferBindingSize ${fmtBytes(this.maxBufferBytes)}); use a smaller input or process it in tiles`,
      );
    }
    let size = roundSize(bytes);
    if (size > this.maxBufferBytes) size = Math.ceil(bytes / 4) * 4;
    const key = `${size}:${usage}`;
    let buf = this.free.get(key)?.pop();
    if (!buf) {
      this.device.pushErrorScope('out-of-memory');
      buf = this.device.createBuffer({ size, usage, label: what });
      this.onAllocCheck(this.device.popErrorScope(), `${what} (${fmtBytes(size)})`);
      this.stats_.totalBytes += size;
      this.stats_.totalBuffers++;
      this.stats_.created++;
    }
    this.inUse.add(buf);
    if (this.owner) this.owned.set(buf, this.owner);
    this.stats_.inUseBytes += buf.size;
    this.stats_.peakInUseBytes = Math.max(this.stats_.peakInUseBytes, this.stats_.inUseBytes);
    return buf;
  }

  /** The buffer may still be read by recorded, unsubmitted commands: it becomes reusable at recycle(). */
  release(buf: GPUBuffer): void {
    if (!this.inUse.delete(buf)) throw new Error(`BufferPool.release: buffer "${buf.label}" is not in use (released twice?)`);
    this.stats_.inUseBytes -= buf.size;
    const owner = this.owned.get(buf);
    if (owner && owner !== this.owner) this.held.get(owner)!.add(buf);
    else this.pending.push(buf);
  }

  /** From now on, buffers acquired belong to `owner` until disown(owner). */
  own(owner: Owner): void {
    if (this.owner) throw new Error('BufferPool.own: another owner is recording');
    this.owner = owner;
    this.held.set(owner, new Set());
  }

  /** Ends the recording of `owner`: its buffers released meanwhile leave the pool for it. */
  endOwn(owner: Owner): void {
    if (this.owner !== owner) throw new Error('BufferPool.endOwn: not the recording owner');
    this.owner = null;
    const mine = (b: GPUBuffer) => this.owned.get(b) === owner;
    const held = this.held.get(owner)!;
    for (const b of this.pending.filter(mine)) held.add(b);
    this.pending = this.pending.filter((b) => !mine(b));
    for (const [key, list] of this.free) {
      for (const b of list.filter(mine)) held.add(b);
      this.free.set(key, list.filter((b) => !mine(b)));
    }
  }

  /** Pauses and resumes the recording owner's claim on new buffers (Gpu.uncaptured). */
  endOwnTemporarily(owner: Owner): void {
    if (this.owner === owner) this.owner = null;
  }

  resumeOwn(owner: Owner): void {
    this.owner = owner;
  }

  /** Gives `owner`'s buffers back: the released ones to the pool (after the next submit), the others become plain. */
  disown(owner: Owner): void {
    if (this.owner === owner) this.owner = null;
    for (const b of this.held.get(owner) ?? []) this.pending.push(b);
    this.held.delete(owner);
    for (const [b, o] of this.owned) if (o === owner) this.owned.delete(b);
  }

  /** After a submit: everything released before it is safe to hand out again. */
  recycle(): void {
    for (const buf of this.pending) {
      const key = `${buf.size}:${buf.usage}`;
      let list = this.free.get(key);
      if (!list) this.free.set(key, (list = []));
      list.push(buf);
    }
    this.pending = [];
  }

  /** Destroys free buffers (e.g. after a large one-off job); buffers held for an owner stay. */
  trim(): void {
    for (const list of this.free.values()) {
      for (const b of list) {
        this.stats_.totalBytes -= b.size;
        this.stats_.totalBuffers--;
        b.destroy();
      }
    }
    this.free.clear();
  }

  stats(): PoolStats {
    let heldBytes = 0;
    for (const set of this.held.values()) for (const b of set) heldBytes += b.size;
    return { ...this.stats_, inUseBuffers: this.inUse.size, heldBytes };
  }

  resetPeak(): void {
    this.stats_.peakInUseBytes = this.stats_.inUseBytes;
  }
}
