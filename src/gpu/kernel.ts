// A kernel is a named WGSL compute shader. wgsl_reflect reads its bindings, its uniform struct layout and its
// workgroup size once, so launchers pass bindings by name and uniforms as plain objects, never computing
// offsets or restating sizes by hand.
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';

/** How a tensor's elements are stored: float32, or IEEE binary16 (inference only; kernels compute in f32, f16.ts). */
export type Dtype = 'f32' | 'f16';

/** A contiguous, row-major (NCHW) array on the GPU, float32 unless `dtype` says f16: what kernels consume and produce. */
export interface RawTensor {
  readonly buffer: GPUBuffer;
  readonly shape: readonly number[];
  readonly dtype?: Dtype;
}

/** A dispatch's binding: a tensor or buffer for storage, a plain object for a uniform struct. */
export type Binding = RawTensor | GPUBuffer | Record<string, number | readonly number[]>;

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** The dtype of an op's output: f16 when any activation input is stored in f16 (f32 parameters mix in freely). */
export const dtypeOf = (...ts: readonly RawTensor[]): Dtype => (ts.some((t) => t.dtype === 'f16') ? 'f16' : 'f32');

export const bytesPerElement = (dtype: Dtype = 'f32'): number => (dtype === 'f16' ? 2 : 4);

/** The bytes a tensor's buffer binds: its elements, rounded up to whole words (storage bindings), at least 4. */
export function storageBytes(n: number, dtype: Dtype = 'f32'): number {
  return Math.max(4, Math.ceil((n * bytesPerElement(dtype)) / 4) * 4);
}

export interface UniformField {
  offset: number;
  /** 'u32' | 'i32' | 'f32', the scalar type of the field or of its vector components. */
  scalar: 'u32' | 'i32' | 'f32';
  count: number;
}

export interface BindingInfo {
  name: string;
  binding: number;
  kind: 'uniform' | 'storage';
  /** For storage bindings: WGSL access mode. */
  access?: 'read' | 'read_write';
  /** For uniform bindings: the struct layout. */
  fields?: Map<string, UniformField>;
  size?: number;
}

export interface Kernel {
  /** `<op>.<entry>`, used for pipeline labels and in every error message. */
  readonly name: string;
  readonly code: string;
  readonly entry: string;
  readonly bindings: Map<string, BindingInfo>;
  /** Names of `override` constants the shader declares. */
  readonly overrides: Set<string>;
  /** The entry point's @workgroup_size, override constants at their defaults: what grids are computed from. */
  readonly workgroupSize: readonly [number, number, number];
}

function scalarOf(typeName: string): 'u32' | 'i32' | 'f32' {
  const t = typeName.replace(/^vec[234]/, '').replace(/[<>]/g, '');
  if (t === 'u32' || t === 'u' || typeName.endsWith('u')) return 'u32';
  if (t === 'i32' || t === 'i' || typeName.endsWith('i')) return 'i32';
  return 'f32';
}

/** Defines a kernel. Its WGSL is parsed once, on first use: parsing every kernel at module load cost a command
 *  ~0.2 s of start-up, most of them kernels it never runs. */
export function kernel(name: string, code: string, entry = 'main'): Kernel {
  let info: Pick<Kernel, 'bindings' | 'overrides' | 'workgroupSize'> | null = null;
  const reflected = () => (info ??= reflect(name, code, entry));
  return {
    name,
    code,
    entry,
    get bindings() {
      return reflected().bindings;
    },
    get overrides() {
      return reflected().overrides;
    },
    get workgroupSize() {
      return reflected().workgroupSize;
    },
  };
}

function reflect(name: string, code: string, entry: string): Pick<Kernel, 'bindings' | 'overrides' | 'workgroupSize'> {
  const r = new WgslReflect(code);
  const bindings = new Map<string, BindingInfo>();
  for (const u of r.uniforms) {
    if (u.group !== 0) throw new Error(`kernel ${name}: only @group(0) is supported (uniform ${u.name})`);
    const fields = new Map<string, UniformField>();
    const members = (u.type as unknown as { members?: { name: string; offset: number; size: number; type: { name: string; format?: { name: string } } }[] }).members;
    if (!members) throw new Error(`kernel ${name}: uniform ${u.name} must be a struct`);
    for (const m of members) {
      const tn = m.type.format ? `${m.type.name}<${m.type.format.name}>` : m.type.name;
      const scalar = scalarOf(m.type.format ? m.type.format.name : tn);
      fields.set(m.name, { offset: m.offset, scalar, count: m.size / 4 });
    }
    bindings.set(u.name, { name: u.name, binding: u.binding, kind: 'uniform', fields, size: Math.ceil(u.size / 16) * 16 });
  }
  for (const s of r.storage) {
    if (s.group !== 0) throw new Error(`kernel ${name}: only @group(0) is supported (storage ${s.name})`);
    const access = (s as unknown as { access?: string }).access === 'read' ? 'read' : 'read_write';
    bindings.set(s.name, { name: s.name, binding: s.binding, kind: 'storage', access });
  }
  const overrides = new Set(r.overrides.map((o) => o.name));
  const size = r.entry.compute.find((f) => f.name === entry)?.workgroupSize;
  if (!size) throw new Error(`kernel ${name}: no @compute entry point ${entry} with a @workgroup_size`);
  return { bindings, overrides, workgroupSize: [size[0], size[1], size[2]] };
}

/** A dispatch's bindings by WGSL name, checked against the kernel: storage buffers with their bound sizes, and
 *  the uniform struct (at most one) encoded. */
export function resolveBindings(k: Kernel, bindings: Record<string, Binding>): { storage: Map<string, { buffer: GPUBuffer; size: number }>; uniform: ArrayBuffer | null } {
  const storage = new Map<string, { buffer: GPUBuffer; size: number }>();
  let uniform: ArrayBuffer | null = null;
  for (const [name, b] of k.bindings) {
    const v = bindings[name];
    if (v === undefined) throw new Error(`kernel ${k.name}: binding ${name} not given`);
    if (b.kind === 'uniform') uniform = encodeUniforms(k, b, v as Record<string, number>);
    else {
      const t = v as RawTensor | GPUBuffer;
      const buffer = 'buffer' in t ? t.buffer : t;
      storage.set(name, { buffer, size: 'shape' in t ? storageBytes(numel(t.shape), t.dtype) : buffer.size });
    }
  }
  for (const name of Object.keys(bindings)) {
    if (!k.bindings.has(name)) throw new Error(`kernel ${k.name}: no binding named ${name}`);
  }
  return { storage, uniform };
}

/** Encodes a uniform object into the struct layout reflection found; every field must be given. */
export function encodeUniforms(k: Kernel, b: BindingInfo, values: Record<string, number | readonly number[]>): ArrayBuffer {
  const buf = new ArrayBuffer(b.size!);
  const dv = new DataView(buf);
  for (const [field, f] of b.fields!) {
    const v = values[field];
    if (v === undefined) throw new Error(`kernel ${k.name}: uniform ${b.name}.${field} not given`);
    const arr = typeof v === 'number' ? [v] : v;
    if (arr.length !== f.count) throw new Error(`kernel ${k.name}: uniform ${b.name}.${field} wants ${f.count} values, got ${arr.length}`);
    arr.forEach((x, i) => {
      const o = f.offset + 4 * i;
      if (f.scalar === 'u32') {
        if (!(x >= 0 && Number.isInteger(x))) throw new Error(`kernel ${k.name}: uniform ${b.name}.${field} = ${x} is not a u32`);
        dv.setUint32(o, x, true);
      } else if (f.scalar === 'i32') dv.setInt32(o, x, true);
      else dv.setFloat32(o, x, true);
    });
  }
  for (const key of Object.keys(values)) {
    if (!b.fields!.has(key)) throw new Error(`kernel ${k.name}: uniform ${b.name} has no field ${key}`);
  }
  return buf;
}
