// GPU time per dispatch from timestamp queries (the 'timestamp-query' feature). While profiling, the runtime
// gives every dispatch its own compute pass whose beginning and end are timestamped; each submit resolves its
// queries into a buffer that is read back when the results are asked for.
import type { Kernel } from './kernel.js';

export interface ProfileRecord {
  kernel: string;
  /** Shapes of the tensors bound, by binding name. */
  shapes: Record<string, readonly number[]>;
  /** Uniform values, by field name (first uniform struct). */
  uniforms: Record<string, number | readonly number[]>;
  /** Free-form label the caller set with `Gpu.profileLabel` when the dispatch was recorded. */
  label: string;
  /** GPU time of the dispatch's pass in milliseconds. */
  ms: number;
}

type Pending = Omit<ProfileRecord, 'ms'>;

/** What profiling keeps of a dispatch: kernel, bound tensor shapes, uniforms, the caller's label. */
export function profileRecord(k: Kernel, bindings: Record<string, unknown>, label: string): Pending {
  const shapes: Record<string, readonly number[]> = {};
  let uniforms: Record<string, number | readonly number[]> = {};
  for (const [name, b] of k.bindings) {
    const v = bindings[name] as { shape?: readonly number[] };
    if (b.kind === 'uniform') uniforms = v as Record<string, number>;
    else if (v.shape) shapes[name] = v.shape;
  }
  return { kernel: k.name, shapes, uniforms, label };
}


export class Profiler {
  private querySet: GPUQuerySet | null = null;
  private pending: Pending[] = [];
  private reads: { records: Pending[]; buffer: GPUBuffer }[] = [];

  constructor(
    private device: GPUDevice,
    private capacity: number,
  ) {}

  /** Timestamp writes for the pass of the next dispatch; null when this batch's query set is full. */
  next(rec: Pending): GPUComputePassTimestampWrites | null {
    if (this.pending.length >= this.capacity) return null;
    this.querySet ??= this.device.createQuerySet({ type: 'timestamp', count: 2 * this.capacity, label: 'profiler' });
    const i = this.pending.length;
    this.pending.push(rec);
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Before a submit: resolves this batch's timestamps into a buffer read later. */
  resolve(enc: GPUCommandEncoder): void {
    if (!this.pending.length || !this.querySet) return;
    const n = 2 * this.pending.length;
    const resolveBuf = this.device.createBuffer({ size: 8 * n, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const readBuf = this.device.createBuffer({ size: 8 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    enc.resolveQuerySet(this.querySet, 0, n, resolveBuf, 0);
    enc.copyBufferToBuffer(resolveBuf, 0, readBuf, 0, 8 * n);
    this.reads.push({ records: this.pending, buffer: readBuf });
    this.pending = [];
    // The query set belongs to the submitted commands now; the next batch gets a fresh one.
    this.querySet = null;
  }

  /** Everything resolved so far (call after the work was submitted). */
  async collect(): Promise<ProfileRecord[]> {
    const reads = this.reads;
    this.reads = [];
    const out: ProfileRecord[] = [];
    for (const { records, buffer } of reads) {
      await buffer.mapAsync(GPUMapMode.READ);
      const t = new BigUint64Array(buffer.getMappedRange().slice(0));
      buffer.destroy();
      records.forEach((r, i) => out.push({ ...r, ms: Number(t[2 * i + 1] - t[2 * i]) / 1e6 }));
    }
    return out;
  }
}
