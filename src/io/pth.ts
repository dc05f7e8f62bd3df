// PyTorch checkpoint reader (torch.save's zip format, the default since PyTorch 1.6). Pure: bytes in; no `fs`.
//
// Layout (torch/serialization.py `_save`, caffe2/serialize/inline_container.cc `PyTorchStreamWriter`):
//   <archive>/data.pkl            pickle (protocol 2) of the saved object; tensors are
//                                 torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
//                                 requires_grad, backward_hooks[, metadata]) with `storage` a persistent id
//                                 ('storage', torch.FloatStorage, key, location, numel)
//   <archive>/byteorder           'little' (torch >= 2.1; absent means little)
//   <archive>/data/<key>          raw storage bytes, one record per storage (views share one)
//   <archive>/version             '3\n'
//   <archive>/.data/serialization_id   (newer torch)
// Records are normally stored (uncompressed); deflated ones (re-zipped files) are inflated with fflate.
import { inflateSync } from 'fflate';
import { fmtShape } from '../gpu/errors.js';
import { WeightFileError, toFloat32, type LoadedTensor } from './safetensors.js';
import { PyCallable, PyDict, PyObject, UnpicklingError, describe, unpickle } from './pickle.js';

export interface PthFile {
  /** The state dict's tensors, in the pickle's order, converted to float32 and made contiguous. */
  tensors: Map<string, LoadedTensor>;
  /** Keys of the state dict whose values are not tensors (ints, strings, nested dicts, ...): skipped. */
  skipped: string[];
}

// ---------------------------------------------------------------------------------------------------- zip

interface ZipEntry {
  name: string;
  method: number;
  compSize: number;
  size: number;
  headerOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_LOC64 = 0x07064b50;
const SIG_CEN = 0x02014b50;
const SIG_LOC = 0x04034b50;

/** The central directory of a zip archive (APPNOTE.TXT 4.3), with zip64 support; undefined if there is none. */
function readZipDirectory(bytes: Uint8Array, fail: (m: string) => never): ZipEntry[] | undefined {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (dv.getUint32(i, true) === SIG_EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return undefined;
  let count = dv.getUint16(eocd + 10, true);
  let cdSize = dv.getUint32(eocd + 12, true);
  let cdOffset = dv.getUint32(eocd + 16, true);
  if (eocd >= 20 && dv.getUint32(eocd - 20, true) === SIG_LOC64) {
    const at = Number(dv.getBigUint64(eocd - 12, true));
    if (at + 56 > bytes.length || dv.getUint32(at, true) !== SIG_EOCD64) fail('zip64 end of central directory is missing or corrupt');
    count = Number(dv.getBigUint64(at + 32, true));
    cdSize = Number(dv.getBigUint64(at + 40, true));
    cdOffset = Number(dv.getBigUint64(at + 48, true));
  }
  if (cdOffset + cdSize > bytes.length) fail(`zip central directory (at ${cdOffset}, ${cdSize} bytes) lies beyond the end of the file (${bytes.length} bytes): truncated?`);
  const entries: ZipEntry[] = [];
  const dec = new TextDecoder();
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > bytes.length || dv.getUint32(p, true) !== SIG_CEN) fail(`zip central directory entry ${i} is corrupt`);
    const method = dv.getUint16(p + 10, true);
    let compSize = dv.getUint32(p + 20, true);
    let size = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    let headerOffset = dv.getUint32(p + 42, true);
    const name = dec.decode(bytes.subarray(p + 46, p + 46 + nameLen));
    // zip64 extended information (header id 1): the 64-bit values of the fields that read 0xffffffff, in this order
    for (let e = p + 46 + nameLen; e + 4 <= p + 46 + nameLen + extraLen; ) {
      const id = dv.getUint16(e, true);
      const len = dv.getUint16(e + 2, true);
      if (id === 1) {
        let q = e + 4;
        const next = () => ((q += 8), Number(dv.getBigUint64(q - 8, true)));
        if (size === 0xffffffff) size = next();
        if (compSize === 0xffffffff) compSize = next();
        if (headerOffset === 0xffffffff) headerOffset = next();
      }
      e += 4 + len;
    }
    entries.push({ name, method, compSize, size, headerOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

function readZipEntry(bytes: Uint8Array, e: ZipEntry, fail: (m: string) => never): Uint8Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const h = e.headerOffset;
  if (h + 30 > bytes.length || dv.getUint32(h, true) !== SIG_LOC) fail(`zip entry ${e.name}: local header at ${h} is missing or corrupt`);
  // The local header's extra field differs from the central one (torch puts its 64-byte alignment padding there).
  const start = h + 30 + dv.getUint16(h + 26, true) + dv.getUint16(h + 28, true);
  if (start + e.compSize > bytes.length) {
    fail(`zip entry ${e.name}: its ${e.compSize} bytes at ${start} go beyond the end of the file (${bytes.length} bytes): truncated?`);
  }
  const raw = bytes.subarray(start, start + e.compSize);
  if (e.method === 0) return raw;
  if (e.method === 8) {
    try {
      return inflateSync(raw, { out: new Uint8Array(e.size) });
    } catch (err) {
      return fail(`zip entry ${e.name}: cannot inflate: ${(err as Error).message}`);
    }
  }
  return fail(`zip entry ${e.name}: unsupported compression method ${e.method} (only stored and deflate)`);
}

// ---------------------------------------------------------------------------------------------------- torch objects

/** torch.<X>Storage -> dtype (safetensors spelling) and bytes per element. */
const STORAGE_TYPES: Record<string, [string, number]> = {
  FloatStorage: ['F32', 4], HalfStorage: ['F16', 2], BFloat16Storage: ['BF16', 2], DoubleStorage: ['F64', 8],
  LongStorage: ['I64', 8], IntStorage: ['I32', 4], ShortStorage: ['I16', 2], CharStorage: ['I8', 1],
  ByteStorage: ['U8', 1], BoolStorage: ['BOOL', 1],
};

class StorageType {
  constructor(
    readonly name: string,
    readonly dtype: string,
    readonly itemSize: number,
  ) {}
}

class StorageRef {
  constructor(
    readonly type: StorageType,
    readonly key: string,
    readonly location: string,
    readonly numel: number,
  ) {}
}

class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly size: number[],
    readonly stride: number[],
  ) {}
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isCounts = (v: unknown): v is number[] => Array.isArray(v) && v.every(isCount);

function rebuildTensor(qualname: string, args: unknown[]): TensorRef {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof StorageRef)) throw new UnpicklingError(`${qualname}: expected a storage, found ${describe(storage)}`);
  if (!isCount(offset) || !isCounts(size) || !isCounts(stride) || size.length !== stride.length) {
    throw new UnpicklingError(`${qualname}: bad view (offset ${String(offset)}, size ${JSON.stringify(size)}, stride ${JSON.stringify(stride)})`);
  }
  return new TensorRef(storage, offset, [...size], [...stride]);
}

/** What each GLOBAL in a torch pickle means; unknown torch tensor/storage kinds are errors naming the global. */
function torchClass(module: string, name: string): unknown {
  const q = `${module}.${name}`;
  if (module === 'torch' && name.endsWith('Storage')) {
    const st = STORAGE_TYPES[name];
    if (!st) throw new UnpicklingError(`unsupported pickle global ${q}: storage type not supported (supported: ${Object.keys(STORAGE_TYPES).map((s) => `torch.${s}`).join(', ')})`);
    return new StorageType(q, st[0], st[1]);
  }
  switch (q) {
    case 'torch._utils._rebuild_tensor_v2':
    case 'torch._utils._rebuild_tensor':
      return new PyCallable(q, (args) => rebuildTensor(q, args));
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
      return new PyCallable(q, (args) => {
        if (!(args[0] instanceof TensorRef)) throw new UnpicklingError(`${q}: expected a tensor, found ${describe(args[0])}`);
        return args[0];
      });
    case 'torch.Size':
      return new PyCallable(q, (args) => (Array.isArray(args[0]) ? [...args[0]] : []));
  }
  if (module === 'torch._utils' || module === 'torch._tensor' || (module === 'torch' && name.startsWith('_rebuild'))) {
    throw new UnpicklingError(`unsupported pickle global ${q} (only dense tensors rebuilt by torch._utils._rebuild_tensor_v2 are supported)`);
  }
  return undefined; // the unpickler's default: builtins it knows, else inert objects
}

// ---------------------------------------------------------------------------------------------------- reading

const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

function sniff(bytes: Uint8Array): string {
  const starts = (b: number[]) => b.every((x, i) => bytes[i] === x);
  if (starts(LEGACY_MAGIC)) {
    return 'this is a legacy (pre-1.6, non-zip) torch.save file, which is not supported: re-save it with PyTorch >= 1.6 (torch.save(torch.load(f), g)) or convert it to safetensors';
  }
  if (bytes.length > 262 && String.fromCharCode(...bytes.subarray(257, 262)) === 'ustar') {
    return 'this is a tar archive (the torch.save format of PyTorch < 0.4), which is not supported: re-save it with PyTorch >= 1.6 or convert it to safetensors';
  }
  if (starts([0x80]) && bytes[1] <= 5) return 'this is a bare pickle, not a torch.save zip archive: re-save it with torch.save from PyTorch >= 1.6 or convert it to safetensors';
  if (starts([0x50, 0x4b, 0x03, 0x04])) return 'the zip archive has no end of central directory: file truncated?';
  if (bytes.length >= 9 && bytes[8] === 0x7b) return 'not a zip archive (torch.save format); it looks like safetensors: read it with readSafetensors';
  const head = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return `not a zip archive (torch.save format): it starts with ${head || 'nothing'} instead of 50 4b 03 04`;
}

function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  for (let i = shape.length - 1, acc = 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/**
 * Reads a torch.save checkpoint holding a state dict (dict/OrderedDict of name -> tensor), or a dict that wraps one
 * under "state_dict", "model_state_dict", "model" or "net". Every tensor is converted to float32 and made contiguous
 * (strides and storage offsets applied); int64 scalars such as `num_batches_tracked` keep their shape [] (one value).
 * `file` names the file in error messages.
 */
export function readPth(bytes: Uint8Array, file = 'checkpoint'): PthFile {
  const fail = (msg: string): never => {
    throw new WeightFileError(`${file}: ${msg}`);
  };
  const entries = readZipDirectory(bytes, fail) ?? fail(sniff(bytes));
  const byName = new Map(entries.map((e) => [e.name, e]));
  const pkl = entries.find((e) => /^[^/]+\/data\.pkl$/.test(e.name)) ?? entries.find((e) => e.name === 'data.pkl');
  const names = entries.map((e) => e.name);
  if (names.some((n) => /^[^/]+\/(code\/|constants\.pkl$)/.test(n))) {
    fail('this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint: save its state dict with torch.save(torch.jit.load(f).state_dict(), g)');
  }
  if (!pkl) {
    const shown = names.slice(0, 8).join(', ') + (names.length > 8 ? `, ... (${names.length} entries)` : '');
    return fail(`zip archive without <archive>/data.pkl: not a torch.save checkpoint (entries: ${shown || 'none'})`);
  }
  const prefix = pkl.name.slice(0, pkl.name.length - 'data.pkl'.length);
  const order = byName.get(`${prefix}byteorder`);
  if (order) {
    const bo = new TextDecoder().decode(readZipEntry(bytes, order, fail)).trim();
    if (bo !== 'little') fail(`byteorder record says "${bo}": only little-endian checkpoints are supported`);
  }

  let root: unknown;
  try {
    root = unpickle(readZipEntry(bytes, pkl, fail), {
      findClass: torchClass,
      persistentLoad: (pid) => {
        if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) {
          throw new UnpicklingError(`unsupported persistent id ${describe(pid)} (expected ('storage', type, key, location, numel))`);
        }
        const [, type, key, location, numel] = pid;
        if (!(type instanceof StorageType)) throw new UnpicklingError(`persistent id: ${describe(type)} is not a storage type`);
        if (typeof key !== 'string' || !isCount(numel)) throw new UnpicklingError(`persistent id: bad storage key/numel (${describe(key)}, ${describe(numel)})`);
        return new StorageRef(type, key, String(location), numel);
      },
    });
  } catch (e) {
    if (e instanceof UnpicklingError) fail(`${pkl.name}: ${e.message}`);
    throw e;
  }

  const dict = findStateDict(root, fail);
  const tensors = new Map<string, LoadedTensor>();
  const skipped: string[] = [];
  for (const [k, v] of dict) {
    const name = String(k);
    if (!(v instanceof TensorRef)) {
      skipped.push(name);
      continue;
    }
    tensors.set(name, materialize(name, v, (key) => byName.get(`${prefix}data/${key}`), (e) => readZipEntry(bytes, e, fail), fail));
  }
  return { tensors, skipped };
}

function hasTensor(d: Map<unknown, unknown>): boolean {
  for (const v of d.values()) if (v instanceof TensorRef) return true;
  return false;
}

const WRAPPER_KEYS = ['state_dict', 'model_state_dict', 'model', 'net'];

function findStateDict(root: unknown, fail: (m: string) => never): Map<unknown, unknown> {
  const whole = (o: PyObject) =>
    fail(`the checkpoint holds a pickled ${o.cls} object, not a state dict: re-save it with torch.save(model.state_dict(), path)`);
  if (root instanceof TensorRef) fail('the checkpoint holds a single tensor, not a state dict (name -> tensor)');
  if (root instanceof PyObject) whole(root);
  if (!(root instanceof PyDict)) return fail(`the checkpoint holds ${describe(root)}, not a state dict (name -> tensor)`);
  if (hasTensor(root)) return root;
  for (const k of WRAPPER_KEYS) {
    const v = root.get(k);
    if (v instanceof PyDict && hasTensor(v)) return v;
    if (v instanceof PyObject) whole(v);
  }
  const keys = [...root.keys()].map(String);
  if (keys.length === 0) return root; // an empty state dict
  return fail(`no tensors found: top-level keys are ${keys.slice(0, 12).join(', ')} (expected a state dict, or a dict with a ${WRAPPER_KEYS.map((k) => `"${k}"`).join('/')} entry holding one)`);
}

function materialize(
  name: string,
  t: TensorRef,
  record: (key: string) => ZipEntry | undefined,
  read: (e: ZipEntry) => Uint8Array,
  fail: (m: string) => never,
): LoadedTensor {
  const { storage, offset, size, stride } = t;
  const { dtype, itemSize } = storage.type;
  const numel = size.reduce((a, b) => a * b, 1);
  const shape = [...size];
  if (numel === 0) return { data: new Float32Array(0), shape, dtype };
  const last = offset + size.reduce((acc, d, i) => acc + (d - 1) * stride[i], 0);
  const view = `offset ${offset}, size ${fmtShape(size)}, stride ${fmtShape(stride)}`;
  if (last >= storage.numel) fail(`tensor ${name}: view (${view}) reaches element ${last} of a storage of ${storage.numel} elements`);
  const entry = record(storage.key);
  if (!entry) return fail(`tensor ${name}: storage record data/${storage.key} is missing from the archive`);
  const needBytes = storage.numel * itemSize;
  if (entry.size < needBytes) {
    fail(`tensor ${name}: storage record ${entry.name} has ${entry.size} bytes, a ${storage.type.name} of ${storage.numel} elements needs ${needBytes}`);
  }
  const raw = read(entry).subarray(offset * itemSize, (last + 1) * itemSize);
  const src = toFloat32(raw, dtype, last + 1 - offset);
  const want = contiguousStrides(size);
  if (size.every((d, i) => d === 1 || stride[i] === want[i])) return { data: src, shape, dtype };
  // Non-contiguous view (e.g. a transpose): gather element by element in row-major order.
  const data = new Float32Array(numel);
  const rank = size.length;
  const idx = new Array<number>(rank).fill(0);
  let at = 0;
  for (let i = 0; i < numel; i++) {
    data[i] = src[at];
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d] < size[d]) {
        at += stride[d];
        break;
      }
      at -= (size[d] - 1) * stride[d];
      idx[d] = 0;
    }
  }
  return { data, shape, dtype };
}
