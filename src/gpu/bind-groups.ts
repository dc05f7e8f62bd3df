// Bind groups without per-dispatch allocation. Each kernel gets an explicit layout (from reflection) whose
// uniform binding has a dynamic offset, so all uniforms of a batch live in one arena buffer written once
// per submit, and a bind group depends only on the storage buffers bound. Those come from the pool, which
// hands the same buffers out again in a steady loop, so bind groups are cached by (kernel, buffers, sizes).
import type { BindingInfo, Kernel } from './kernel.js';

interface KernelLayout {
  id: number;
  group: GPUBindGroupLayout;
  pipeline: GPUPipelineLayout;
  /** Bindings in binding-number order, the uniform (at most one) first among them by dynamic-offset order. */
  order: BindingInfo[];
}

/** Past this many cached bind groups the cache starts over (buffers of one-off jobs would pile up). */
const MAX_CACHED = 4096;

export class BindGroups {
  private layouts = new WeakMap<Kernel, KernelLayout>();
  private bufferIds = new WeakMap<GPUBuffer, number>();
  private cache = new Map<string, GPUBindGroup>();
  private nextId = 1;
  /** Cache hits and misses since creation (a steady training loop mostly hits). */
  hits = 0;
  misses = 0;

  constructor(private device: GPUDevice) {}

  layout(k: Kernel): KernelLayout {
    let l = this.layouts.get(k);
    if (l) return l;
    const order = [...k.bindings.values()].sort((a, b) => a.binding - b.binding);
    if (order.filter((b) => b.kind === 'uniform').length > 1) throw new Error(`kernel ${k.name}: at most one uniform struct is supported`);
    const entries: GPUBindGroupLayoutEntry[] = order.map((b) => ({
      binding: b.binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: b.kind === 'uniform' ? { type: 'uniform', hasDynamicOffset: true } : { type: b.access === 'read' ? 'read-only-storage' : 'storage' },
    }));
    const group = this.device.createBindGroupLayout({ entries, label: k.name });
    const pipeline = this.device.createPipelineLayout({ bindGroupLayouts: [group], label: k.name });
    l = { id: this.nextId++, group, pipeline, order };
    this.layouts.set(k, l);
    return l;
  }

  private idOf(b: GPUBuffer): number {
    let id = this.bufferIds.get(b);
    if (id === undefined) this.bufferIds.set(b, (id = this.nextId++));
    return id;
  }

  /** The bind group for these buffers (uniform binding: `uniform` with the struct's size, offset dynamic). */
  get(k: Kernel, buffers: ReadonlyMap<string, { buffer: GPUBuffer; size: number }>, uniform: GPUBuffer | null): GPUBindGroup {
    const l = this.layout(k);
    let key = `${l.id}`;
    for (const b of l.order) {
      if (b.kind === 'uniform') key += `|u${this.idOf(uniform!)}`;
      else {
        const s = buffers.get(b.name)!;
        key += `|${this.idOf(s.buffer)}:${s.size}`;
      }
    }
    let g = this.cache.get(key);
    if (g) {
      this.hits++;
      return g;
    }
    this.misses++;
    const entries: GPUBindGroupEntry[] = l.order.map((b) =>
      b.kind === 'uniform'
        ? { binding: b.binding, resource: { buffer: uniform!, offset: 0, size: b.size! } }
        : { binding: b.binding, resource: { buffer: buffers.get(b.name)!.buffer, offset: 0, size: buffers.get(b.name)!.size } },
    );
    g = this.device.createBindGroup({ layout: l.group, entries, label: k.name });
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(key, g);
    return g;
  }

  /** Forget every bind group (some of their buffers were destroyed). */
  clear(): void {
    this.cache.clear();
  }
}

/** All uniform values of one submit, packed at aligned offsets and uploaded with one writeBuffer. */
export class UniformArena {
  readonly buffer: GPUBuffer;
  private cpu: Uint8Array;
  private used = 0;

  constructor(
    private device: GPUDevice,
    readonly capacity: number,
    private align: number,
  ) {
    this.buffer = device.createBuffer({ size: capacity, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'uniform arena' });
    this.cpu = new Uint8Array(capacity);
  }

  /** The offset of `data` in the arena, or null when it is full (submit, then retry). */
  push(data: ArrayBuffer): number | null {
    const off = Math.ceil(this.used / this.align) * this.align;
    if (off + data.byteLength > this.capacity) return null;
    this.cpu.set(new Uint8Array(data), off);
    this.used = off + data.byteLength;
    return off;
  }

  /** Before a submit: uploads what was pushed. Queue order makes the next batch's rewrite safe. */
  upload(): void {
    if (this.used) this.device.queue.writeBuffer(this.buffer, 0, this.cpu, 0, Math.ceil(this.used / 4) * 4);
    this.used = 0;
  }

  destroy(): void {
    this.buffer.destroy();
  }
}
