// safetensors (Hugging Face) reader/writer. Pure: bytes in, bytes out; no `fs`, so it runs in Node and in browsers.
//
// Format (https://github.com/huggingface/safetensors, README "Format" and safetensors/src/tensor.rs):
//   u64 little-endian N | N bytes of UTF-8 JSON header (may be padded with trailing spaces) | data buffer
//   header = { "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//              "__metadata__": {string: string} }   (offsets are relative to the start of the data buffer)
// The Rust library requires the tensors to tile the data buffer exactly (sorted by begin, each begin equal to the
// previous end, the last end equal to the buffer length) and end - begin == numel * dtype size. We check the same.
import { fmtShape } from '../gpu/errors.js';
import { fromF16, toF16 } from '../gpu/f16.js';

/** A weight file that cannot be used: malformed, truncated, unsupported, or not holding the expected tensors. */
export class WeightFileError extends Error {
  override name = 'WeightFileError';
}

export interface LoadedTensor {
  /**
   * Values converted to float32, contiguous in row-major (C) order. The readers make this lazy: the file is parsed
   * and checked up front, and the values are converted on first access (so a caller can check names and shapes
   * first). Tensors that view the same stored bytes may share one buffer (`data` is then a subarray of it).
   */
  data: Float32Array;
  shape: number[];
  /** The dtype stored in the file, in safetensors spelling (F32, F16, BF16, F64, I64, ...). */
  dtype: string;
}

export interface SafetensorsFile {
  /** In data-offset order (the order of the bytes in the file). */
  tensors: Map<string, LoadedTensor>;
  metadata: Record<string, string>;
}

/** Limits of the weight-file readers (readSafetensors, readPth, readWeightBytes). */
export interface ReadWeightsOptions {
  /**
   * The most bytes that materialising the file's tensors may allocate (float32 values, plus inflated records and
   * gathered views for .pth files). Default `defaultMaxBytes(file length)`: 64 MiB + 8 bytes per byte of the file,
   * which every ordinary weight file stays far below; a file that would need more is refused before anything is
   * allocated.
   */
  maxBytes?: number;
}

const MIB = 1 << 20;

/** The default `maxBytes` for a file of `length` bytes: 64 MiB + 8 × length. */
export function defaultMaxBytes(length: number): number {
  return 64 * MIB + 8 * length;
}

/** Bytes in a short human form for messages: 631 bytes, 12.5 KiB, 4.0 MiB, 1.49 GiB. */
export function fmtBytes(n: number): string {
  if (n < 10240) return `${n} bytes`;
  if (n < MIB) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * MIB) return `${(n / MIB).toFixed(1)} MiB`;
  return `${(n / (1024 * MIB)).toFixed(2)} GiB`;
}

/** The limit in force for a file: the caller's `maxBytes`, else the default; a bad value is an error. */
export function budgetOf(opts: ReadWeightsOptions, length: number, file: string): { max: number; why: string } {
  if (opts.maxBytes === undefined) return { max: defaultMaxBytes(length), why: `the default for a file of ${fmtBytes(length)} (64 MiB + 8 × its size; pass maxBytes to allow more)` };
  if (!(opts.maxBytes >= 0)) throw new WeightFileError(`${file}: maxBytes must be a non-negative number, got ${opts.maxBytes}`);
  return { max: opts.maxBytes, why: 'maxBytes' };
}

/**
 * A LoadedTensor whose `data` is made by `load` on first access (then kept). An error in `load` is rethrown as a
 * WeightFileError that starts with `where` (the file and the tensor), unless it already is one.
 */
export function lazyTensor(shape: number[], dtype: string, where: string, load: () => Float32Array): LoadedTensor {
  const t = { shape, dtype } as LoadedTensor;
  const set = (data: Float32Array) => {
    Object.defineProperty(t, 'data', { value: data, enumerable: true, writable: true, configurable: true });
    return data;
  };
  Object.defineProperty(t, 'data', {
    enumerable: true,
    configurable: true,
    get() {
      try {
        return set(load());
      } catch (e) {
        if (e instanceof WeightFileError) throw e;
        throw new WeightFileError(`${where}: cannot materialise its values: ${(e as Error).message}`, { cause: e });
      }
    },
    set,
  });
  return t;
}

/** Whether a tensor's values have been made (or were never lazy). */
export function isMaterialised(t: LoadedTensor): boolean {
  return Object.getOwnPropertyDescriptor(t, 'data')?.get === undefined;
}

/** Runs a reader, turning any error it did not foresee into one WeightFileError that names the file. */
export function namingFile<T>(file: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof WeightFileError) throw e;
    const err = e as Error;
    throw new WeightFileError(`${file}: cannot read it (${err?.name ?? 'Error'}: ${err?.message ?? String(e)})`, { cause: e });
  }
}

export interface TensorToWrite {
  data: Float32Array;
  shape: readonly number[];
}

/** Bytes per element of every safetensors dtype (safetensors/src/tensor.rs `Dtype::size`). */
const DTYPE_SIZE: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4, I64: 8, U64: 8, F64: 8,
};
/** The dtypes `toFloat32` converts. */
export const SUPPORTED_DTYPES = ['F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'] as const;

export function dtypeSize(dtype: string): number | undefined {
  return Object.prototype.hasOwnProperty.call(DTYPE_SIZE, dtype) ? DTYPE_SIZE[dtype] : undefined;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** `bytes` itself when its offset is a multiple of `align`, else an aligned copy (typed-array views need alignment). */
function aligned(bytes: Uint8Array, align: number): Uint8Array {
  return bytes.byteOffset % align === 0 ? bytes : bytes.slice();
}

/**
 * Converts `n` little-endian elements of `dtype` at the start of `bytes` to a new Float32Array.
 * Integers above 2^24 and F64 values are rounded to the nearest float32.
 */
export function toFloat32(bytes: Uint8Array, dtype: string, n = bytes.byteLength / (dtypeSize(dtype) ?? 1)): Float32Array {
  const size = dtypeSize(dtype) ?? 1;
  // Never view more than the bytes given: a typed array over their buffer could otherwise read what lies beyond.
  if (!Number.isSafeInteger(n) || n < 0 || n * size > bytes.byteLength) {
    throw new WeightFileError(`toFloat32: ${n} ${dtype} values need ${n * size} bytes, only ${bytes.byteLength} given`);
  }
  const out = new Float32Array(n);
  if (!LITTLE_ENDIAN_HOST) return toFloat32Slow(bytes, dtype, out);
  switch (dtype) {
    case 'F32': {
      const b = aligned(bytes, 4);
      out.set(new Float32Array(b.buffer, b.byteOffset, n));
      return out;
    }
    case 'F16':
    case 'BF16': {
      const b = aligned(bytes, 2);
      const src = new Uint16Array(b.buffer, b.byteOffset, n);
      if (dtype === 'F16') return fromF16(src);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = src[i] << 16; // bf16 is the top half of a float32
      return out;
    }
    case 'F64': {
      const b = aligned(bytes, 8);
      out.set(new Float64Array(b.buffer, b.byteOffset, n));
      return out;
    }
    case 'I64': {
      const b = aligned(bytes, 8);
      const src = new BigInt64Array(b.buffer, b.byteOffset, n);
      for (let i = 0; i < n; i++) out[i] = Number(src[i]);
      return out;
    }
    case 'I32': {
      const b = aligned(bytes, 4);
      out.set(new Int32Array(b.buffer, b.byteOffset, n));
      return out;
    }
    case 'I16': {
      const b = aligned(bytes, 2);
      out.set(new Int16Array(b.buffer, b.byteOffset, n));
      return out;
    }
    case 'I8':
      out.set(new Int8Array(bytes.buffer, bytes.byteOffset, n));
      return out;
    case 'U8':
      out.set(bytes.subarray(0, n));
      return out;
    case 'BOOL':
      for (let i = 0; i < n; i++) out[i] = bytes[i] ? 1 : 0;
      return out;
  }
  throw new WeightFileError(`dtype ${dtype} is not supported (supported: ${SUPPORTED_DTYPES.join(', ')})`);
}

function toFloat32Slow(bytes: Uint8Array, dtype: string, out: Float32Array): Float32Array {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = out.length;
  const get: Record<string, (i: number) => number> = {
    F32: (i) => v.getFloat32(4 * i, true),
    F16: (i) => fromF16(Uint16Array.of(v.getUint16(2 * i, true)))[0],
    BF16: (i) => new Float32Array(new Uint32Array([v.getUint16(2 * i, true) << 16]).buffer)[0],
    F64: (i) => v.getFloat64(8 * i, true),
    I64: (i) => Number(v.getBigInt64(8 * i, true)),
    I32: (i) => v.getInt32(4 * i, true),
    I16: (i) => v.getInt16(2 * i, true),
    I8: (i) => v.getInt8(i),
    U8: (i) => v.getUint8(i),
    BOOL: (i) => (v.getUint8(i) ? 1 : 0),
  };
  const g = get[dtype];
  if (!g) throw new WeightFileError(`dtype ${dtype} is not supported (supported: ${SUPPORTED_DTYPES.join(', ')})`);
  for (let i = 0; i < n; i++) out[i] = g(i);
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Header length above which the Rust library refuses a file (safetensors/src/tensor.rs MAX_HEADER_SIZE). */
const MAX_HEADER = 100_000_000;

export interface SafetensorsEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Byte offsets in the data section (which starts at `dataStart` in the file). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** In data-offset order. */
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
  /** Where the data section starts in the file (8 + the header length). */
  dataStart: number;
}

/**
 * Parses and checks a safetensors header without touching the data: `bytes` holds at least the first 8 + N bytes of
 * the file (N, the header length, is in its first 8), `fileLength` is the whole file's length. Checks everything
 * `readSafetensors` checks except the dtypes it can convert: the tensors must tile the data section exactly.
 */
export function readSafetensorsHeader(bytes: Uint8Array, fileLength: number, file = 'safetensors file'): SafetensorsHeader {
  const fail = (msg: string): never => {
    throw new WeightFileError(`${file}: ${msg}`);
  };
  if (fileLength < 8 || bytes.byteLength < 8) fail(`${fileLength} bytes is too short for a safetensors file (it starts with an 8-byte header length)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(fileLength - 8)) {
    fail(`header length ${n64} goes beyond the end of the file (${fileLength} bytes): not a safetensors file, or truncated`);
  }
  const n = Number(n64);
  if (n > MAX_HEADER) fail(`header length ${n} is larger than the ${MAX_HEADER} bytes safetensors allows`);
  if (bytes.byteLength < 8 + n) fail(`only ${bytes.byteLength} of the header's ${8 + n} bytes given`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return fail(`header (bytes 8..${8 + n}) is not valid UTF-8`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`header (bytes 8..${8 + n}) is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(header)) return fail(`header must be a JSON object, found ${kindOf(header)}`);

  const dataStart = 8 + n;
  const dataLen = fileLength - dataStart;
  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isObject(info)) fail(`__metadata__ must be an object of strings, found ${kindOf(info)}`);
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ must map strings to strings; "${k}" is ${kindOf(v)}`);
        metadata[k] = v as string;
      }
      continue;
    }
    const t = `tensor ${name}`;
    if (!isObject(info)) return fail(`${t}: header entry must be an object, found ${kindOf(info)}`);
    const { dtype, shape, data_offsets: offs } = info;
    if (typeof dtype !== 'string') return fail(`${t}: "dtype" must be a string, found ${kindOf(dtype)}`);
    const size = dtypeSize(dtype);
    if (size === undefined) return fail(`${t}: unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every(isCount)) return fail(`${t}: "shape" must be an array of non-negative integers, found ${JSON.stringify(shape)}`);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isCount) || offs[0] > offs[1]) {
      return fail(`${t}: "data_offsets" must be [begin, end] with 0 <= begin <= end, found ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as number[];
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end > dataLen) fail(`${t}: data_offsets [${begin},${end}] beyond the data section (${dataLen} bytes): file truncated?`);
    if (numel * size !== end - begin) {
      fail(`${t}: shape ${fmtShape(shape as number[])} ${dtype} needs ${numel * size} bytes, data_offsets give ${end - begin}`);
    }
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }

  // The tensors must tile the data section exactly: no overlap, no hole, nothing after the last one.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev: SafetensorsEntry | undefined;
  const where = (e: SafetensorsEntry) => `${e.name} [${e.begin},${e.end}]`;
  for (const e of entries) {
    if (e.begin < at) fail(`data_offsets of tensors ${where(prev!)} and ${where(e)} overlap`);
    if (e.begin > at) {
      fail(`${e.begin - at} bytes before tensor ${where(e)} belong to no tensor: data_offsets must be contiguous${prev ? ` (previous: ${where(prev)})` : ''}`);
    }
    at = e.end;
    prev = e;
  }
  if (at !== dataLen) fail(`${dataLen - at} bytes after the last tensor (data section ${dataLen} bytes, tensors end at ${at}) belong to no tensor`);
  return { entries, metadata, dataStart };
}

/**
 * Parses a safetensors file. `file` names it in error messages (a path or a label).
 * Every tensor is converted to float32 (see `SUPPORTED_DTYPES`) when its `data` is first read; an unsupported dtype,
 * or more float32 bytes in all than `opts.maxBytes`, is an error here, before anything is converted.
 * The tensors keep a reference to `bytes` until then: do not modify them.
 */
export function readSafetensors(bytes: Uint8Array, file = 'safetensors file', opts: ReadWeightsOptions = {}): SafetensorsFile {
  return namingFile(file, () => {
    const { entries, metadata, dataStart } = readSafetensorsHeader(bytes, bytes.byteLength, file);
    const budget = budgetOf(opts, bytes.byteLength, file);
    let total = 0;
    for (const e of entries) {
      if (!(SUPPORTED_DTYPES as readonly string[]).includes(e.dtype)) {
        throw new WeightFileError(`${file}: tensor ${e.name}: dtype ${e.dtype} is not supported (supported: ${SUPPORTED_DTYPES.join(', ')})`);
      }
      total += 4 * e.shape.reduce((a, b) => a * b, 1);
    }
    if (total > budget.max) {
      throw new WeightFileError(`${file}: its tensors need ${fmtBytes(total)} as float32, more than the ${fmtBytes(budget.max)} allowed (${budget.why})`);
    }
    const tensors = new Map<string, LoadedTensor>();
    for (const e of entries) {
      const numel = e.shape.reduce((a, b) => a * b, 1);
      const raw = bytes.subarray(dataStart + e.begin, dataStart + e.end);
      tensors.set(e.name, lazyTensor([...e.shape], e.dtype, `${file}: tensor ${e.name}`, () => toFloat32(raw, e.dtype, numel)));
    }
    return { tensors, metadata };
  });
}

/** Compares strings by Unicode code point, i.e. by their UTF-8 bytes (Rust's `str` order). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; ) {
    const ca = a.codePointAt(i)!;
    const cb = b.codePointAt(i)!;
    if (ca !== cb) return ca - cb;
    i += ca > 0xffff ? 2 : 1;
  }
  return a.length - b.length;
}

export interface WriteSafetensorsOptions {
  /** How the values are stored: F32 (default) or F16 (half the bytes, rounded to nearest, ties to even; for shipped
   *  models, whose outputs move by less than a level — the readers convert back to float32). */
  dtype?: 'F32' | 'F16';
}

/**
 * Serialises float32 tensors the way the Rust library (`safetensors::serialize`) does: tensors sorted by
 * (dtype alignment descending, then name) — one dtype here, so by name — laid out back to back; the header is
 * compact JSON with `__metadata__` first, padded with spaces so the data starts at a multiple of 8.
 */
export function writeSafetensors(
  tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
  opts: WriteSafetensorsOptions = {},
): Uint8Array {
  const dtype = opts.dtype ?? 'F32';
  if (dtype !== 'F32' && dtype !== 'F16') throw new WeightFileError(`safetensors: cannot write dtype ${String(dtype)} (F32, F16)`);
  const list = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))];
  for (const [name, t] of list) {
    if (name === '' || name === '__metadata__') throw new WeightFileError(`safetensors: invalid tensor name ${JSON.stringify(name)}`);
    if (!t.shape.every(isCount)) throw new WeightFileError(`safetensors: tensor ${name}: shape ${fmtShape(t.shape)} must be non-negative integers`);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (!(t.data instanceof Float32Array)) throw new WeightFileError(`safetensors: tensor ${name}: data must be a Float32Array`);
    if (t.data.length !== numel) {
      throw new WeightFileError(`safetensors: tensor ${name}: shape ${fmtShape(t.shape)} has ${numel} elements, data has ${t.data.length}`);
    }
  }
  list.sort((a, b) => compareCodePoints(a[0], b[0]));
  const json: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new WeightFileError(`safetensors: metadata "${k}" must be a string, found ${kindOf(v)}`);
    }
    const sorted = Object.keys(metadata).sort(compareCodePoints);
    json.push(`"__metadata__":{${sorted.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`);
  }
  const size = dtype === 'F16' ? 2 : 4;
  let offset = 0;
  for (const [name, t] of list) {
    const end = offset + t.data.length * size;
    // Built by hand so the key order is fixed (JSON.stringify of an object would move integer-like names first).
    json.push(`${JSON.stringify(name)}:{"dtype":"${dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const headerBytes = new TextEncoder().encode(`{${json.join(',')}}`);
  const pad = (8 - (headerBytes.length % 8)) % 8;
  const out = new Uint8Array(8 + headerBytes.length + pad + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(headerBytes.length + pad), true);
  out.set(headerBytes, 8);
  out.fill(0x20, 8 + headerBytes.length, 8 + headerBytes.length + pad);
  let at = 8 + headerBytes.length + pad;
  for (const [, t] of list) {
    if (dtype === 'F16') {
      const bits = toF16(t.data);
      for (let i = 0; i < bits.length; i++) dv.setUint16(at + 2 * i, bits[i], true);
    } else if (LITTLE_ENDIAN_HOST) out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    else for (let i = 0; i < t.data.length; i++) dv.setFloat32(at + 4 * i, t.data[i], true);
    at += t.data.length * size;
  }
  return out;
}

export interface CheckTensorsOptions {
  /** Tensors in the file that `expected` does not name are fine (default false: they are reported). */
  allowExtra?: boolean;
}

/**
 * Throws one WeightFileError listing every missing, unexpected and mis-shaped tensor, e.g.
 * `model.safetensors: missing tensors: a, b; unexpected: c; tensor features.0.weight: expected shape [64,3,3,3], found [64,3,5,5]`.
 * `file` names the file in the message; works for the results of readSafetensors and readPth alike.
 */
export function checkTensors(
  file: string,
  tensors: ReadonlyMap<string, { shape: readonly number[] }>,
  expected: ReadonlyMap<string, readonly number[]> | Record<string, readonly number[]>,
  opts: CheckTensorsOptions = {},
): void {
  const want = expected instanceof Map ? [...expected.entries()] : Object.entries(expected as Record<string, readonly number[]>);
  const wantNames = new Set(want.map(([k]) => k));
  const missing = want.filter(([k]) => !tensors.has(k)).map(([k]) => k);
  const extra = opts.allowExtra ? [] : [...tensors.keys()].filter((k) => !wantNames.has(k));
  const parts: string[] = [];
  if (missing.length) parts.push(`missing tensors: ${missing.join(', ')}`);
  if (extra.length) parts.push(`unexpected: ${extra.join(', ')}`);
  for (const [name, shape] of want) {
    const t = tensors.get(name);
    if (t && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
      parts.push(`tensor ${name}: expected shape ${fmtShape(shape)}, found ${fmtShape(t.shape)}`);
    }
  }
  if (parts.length) throw new WeightFileError(`${file}: ${parts.join('; ')}`);
}
