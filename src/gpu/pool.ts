// A pool of storage buffers keyed by (rounded size, usage). Released buffers wait until the commands that
// may still read them were submitted (the runtime calls `recycle()` after each submit), then are reused.
// A capture keeps its buffers out of circulation through PoolClaims, withdraw and restore.
import { GpuMemoryError, fmtBytes } from './errors.js';

/** Who may keep buffers out of circulation (the captures, capture.ts): told of every buffer handed out, asked at
 *  every release whether it keeps that buffer instead of the pool. */
export interface PoolClaims {
  acquired(buf: GPUBuffer): void;
  keeps(buf: GPUBuffer): boolean;
}

export interface PoolStats {
  /** Bytes in buffers handed out and not yet released. */
  inUseBytes: number;
  /** Bytes held by the pool, handed out or free (what the GPU actually holds). */
  totalBytes: number;
  inUseBuffers: number;
  totalBuffers: number;
  /** Highest inUseBytes seen since creation (or the last resetPeak). */
  peakInUseBytes: number;
  /** Largest single tensor asked for since creation (or the last resetLargest): what a tiling must keep under
   *  the device's binding limit. */
  largestBytes: number;
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
  claims: PoolClaims | null = null;
  private stats_ = { inUseBytes: 0, totalBytes: 0, totalBuffers: 0, peakInUseBytes: 0, largestBytes: 0, created: 0 };

  constructor(
    private device: GPUDevice,
    private maxBufferBytes: number,
    /** What sets maxBufferBytes, for the error message (the device's limit, or a setting below it). */
    private limitName: string,
    /** Called with the promise of an out-of-memory scope around each createBuffer. */
    private onAllocCheck: (p: Promise<GPUError | null>, what: string) => void,
  ) {}

  acquire(bytes: number, usage: number, what: string): GPUBuffer {
    this.stats_.largestBytes = Math.max(this.stats_.largestBytes, bytes);
    if (bytes > this.maxBufferBytes) {
      throw new GpuMemoryError(
        `${what} needs ${fmtBytes(bytes)}, beyond this device's ${this.limitName} ` +
          `(${fmtBytes(this.maxBufferBytes)}); use a smaller input or process it in tiles`,
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
    this.claims?.acquired(buf);
    this.stats_.inUseBytes += buf.size;
    this.stats_.peakInUseBytes = Math.max(this.stats_.peakInUseBytes, this.stats_.inUseBytes);
    return buf;
  }

  /** The buffer may still be read by recorded, unsubmitted commands: it becomes reusable at recycle(). */
  release(buf: GPUBuffer): void {
    if (!this.inUse.delete(buf)) throw new Error(`BufferPool.release: buffer "${buf.label}" is not in use (released twice?)`);
    this.stats_.inUseBytes -= buf.size;
    if (!this.claims?.keeps(buf)) this.pending.push(buf);
  }

  /** Takes the released buffers that `pred` picks out of circulation (a capture's, when it ends). */
  withdraw(pred: (buf: GPUBuffer) => boolean): GPUBuffer[] {
    const out = this.pending.filter(pred);
    this.pending = this.pending.filter((b) => !pred(b));
    for (const [key, list] of this.free) {
      out.push(...list.filter(pred));
      this.free.set(key, list.filter((b) => !pred(b)));
    }
    return out;
  }

  /** Puts withdrawn or kept buffers back in circulation (after the next submit). */
  restore(bufs: Iterable<GPUBuffer>): void {
    this.pending.push(...bufs);
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

  /** Destroys free buffers (e.g. after a large one-off job); buffers withdrawn or kept by a claim stay. */
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

  /** The pool's counts; heldBytes is the claims' to tell (Gpu.stats). */
  stats(): Omit<PoolStats, 'heldBytes'> {
    return { ...this.stats_, inUseBuffers: this.inUse.size };
  }

  resetPeak(): void {
    this.stats_.peakInUseBytes = this.stats_.inUseBytes;
  }

  resetLargest(): void {
    this.stats_.largestBytes = 0;
  }
}
