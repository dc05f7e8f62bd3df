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
import { Inflate } from 'fflate';
import { fmtShape } from '../gpu/errors.js';
import {
  WeightFileError, budgetOf, fmtBytes, lazyTensor, namingFile, toFloat32, type LoadedTensor, type ReadWeightsOptions,
} from './safetensors.js';
import { PyCallable, PyDict, PyObject, UnpicklingError, describe, unpickle } from './pickle.js';

export interface PthFile {
  /**
   * The state dict's tensors, in the pickle's order, as float32 and contiguous. Everything is checked when the file
   * is read; the values are made on first access of `data` (views of one storage share its converted values).
   */
  tensors: Map<string, LoadedTensor>;
  /** Keys of the state dict whose values are not tensors (ints, strings, nested dicts, ...): skipped. */
  skipped: string[];
}

// ---------------------------------------------------------------------------------------------------- zip

interface ZipEntry {
  name: string;
  method: number;
  crc: number;
  compSize: number;
  size: number;
  headerOffset: number;
  /** Where the record's data starts (after its local header). */
  start: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_LOC64 = 0x07064b50;
const SIG_CEN = 0x02014b50;
const SIG_LOC = 0x04034b50;

/** The most a deflate stream can expand: 258 bytes from one length code of at least 2 bits (about 1032:1). */
const MAX_DEFLATE_RATIO = 1032;

/**
 * The central directory of a zip archive (APPNOTE.TXT 4.3), with zip64 support; undefined if there is none. Every
 * field is checked against the archive: entries lie inside the central directory, their extra fields inside the
 * entries, and each record (local header and data) inside the file and clear of the other records and of the
 * central directory.
 */
function readZipDirectory(bytes: Uint8Array, fail: (m: string) => never): ZipEntry[] | undefined {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u64 = (at: number, what: string) => {
    const v = dv.getBigUint64(at, true);
    if (v > BigInt(bytes.length)) fail(`${what} ${v} is beyond the end of the file (${bytes.length} bytes): corrupt zip`);
    return Number(v);
  };
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
  const ends = [{ name: 'the end of central directory', from: eocd, to: eocd + 22 }];
  if (eocd >= 20 && dv.getUint32(eocd - 20, true) === SIG_LOC64) {
    const at = u64(eocd - 12, 'zip64 end of central directory offset');
    if (at + 56 > bytes.length || dv.getUint32(at, true) !== SIG_EOCD64) fail('zip64 end of central directory is missing or corrupt');
    ends[0].from = eocd - 20;
    ends.push({ name: 'the zip64 end of central directory', from: at, to: at + 56 });
    count = u64(at + 32, 'zip64 entry count');
    cdSize = u64(at + 40, 'zip64 central directory size');
    cdOffset = u64(at + 48, 'zip64 central directory offset');
  }
  const cdEnd = cdOffset + cdSize;
  if (cdEnd > bytes.length) fail(`zip central directory (at ${cdOffset}, ${cdSize} bytes) lies beyond the end of the file (${bytes.length} bytes): truncated?`);
  if (count > cdSize / 46) fail(`zip central directory of ${cdSize} bytes cannot hold the ${count} entries it declares: corrupt zip`);
  const entries: ZipEntry[] = [];
  const dec = new TextDecoder();
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdEnd || dv.getUint32(p, true) !== SIG_CEN) fail(`zip central directory entry ${i} is corrupt`);
    const method = dv.getUint16(p + 10, true);
    const crc = dv.getUint32(p + 16, true);
    let compSize = dv.getUint32(p + 20, true);
    let size = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    let headerOffset = dv.getUint32(p + 42, true);
    const extraAt = p + 46 + nameLen;
    const next = extraAt + extraLen + commentLen;
    if (next > cdEnd) fail(`zip central directory entry ${i} (${nameLen}-byte name, ${extraLen}-byte extra, ${commentLen}-byte comment) runs past the central directory: corrupt zip`);
    const name = dec.decode(bytes.subarray(p + 46, extraAt));
    // zip64 extended information (header id 1): the 64-bit values of the fields that read 0xffffffff, in this order
    for (let e = extraAt; e + 4 <= extraAt + extraLen; ) {
      const id = dv.getUint16(e, true);
      const len = dv.getUint16(e + 2, true);
      const end = e + 4 + len;
      if (end > extraAt + extraLen) fail(`zip entry ${name}: extra field ${id} of ${len} bytes runs past the entry: corrupt zip`);
      if (id === 1) {
        let q = e + 4;
        const field = (what: string) => {
          if (q + 8 > end) fail(`zip entry ${name}: zip64 extra field too short for its ${what}: corrupt zip`);
          q += 8;
          return u64(q - 8, `zip entry ${name}: zip64 ${what}`);
        };
        if (size === 0xffffffff) size = field('size');
        if (compSize === 0xffffffff) compSize = field('compressed size');
        if (headerOffset === 0xffffffff) headerOffset = field('local header offset');
      }
      e = end;
    }
    entries.push({ name, method, crc, compSize, size, headerOffset, start: 0 });
    p = next;
  }
  // Each record: its local header, then its data, inside the file and ahead of the next record or directory.
  for (const e of entries) {
    const h = e.headerOffset;
    if (h + 30 > bytes.length || dv.getUint32(h, true) !== SIG_LOC) fail(`zip entry ${e.name}: local header at ${h} is missing or corrupt`);
    // The local header's extra field differs from the central one (torch puts its 64-byte alignment padding there).
    e.start = h + 30 + dv.getUint16(h + 26, true) + dv.getUint16(h + 28, true);
    if (e.start + e.compSize > bytes.length) {
      fail(`zip entry ${e.name}: its ${e.compSize} bytes at ${e.start} go beyond the end of the file (${bytes.length} bytes): truncated?`);
    }
    if (dv.getUint16(h + 8, true) !== e.method) fail(`zip entry ${e.name}: local header says compression method ${dv.getUint16(h + 8, true)}, central directory ${e.method}: corrupt zip`);
    if (e.method === 0 && e.size !== e.compSize) {
      fail(`zip entry ${e.name}: stored (uncompressed), yet the central directory declares ${e.size} bytes for a record of ${e.compSize}: corrupt zip`);
    }
  }
  const regions = entries.map((e) => ({ name: `zip entry ${e.name}`, from: e.headerOffset, to: e.start + e.compSize }));
  regions.push({ name: 'the central directory', from: cdOffset, to: cdEnd }, ...ends);
  regions.sort((a, b) => a.from - b.from || a.to - b.to);
  for (let i = 1; i < regions.length; i++) {
    const [a, b] = [regions[i - 1], regions[i]];
    if (a.to > b.from) fail(`${a.name} (bytes ${a.from}..${a.to}) overlaps ${b.name} (bytes ${b.from}..${b.to}): corrupt zip`);
  }
  return entries;
}

const CRC_TABLES = (() => {
  // Slicing-by-16: table k gives the CRC of a byte followed by k zero bytes.
  const t = new Int32Array(16 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let k = 1; k < 16; k++) for (let n = 0; n < 256; n++) t[k * 256 + n] = (t[(k - 1) * 256 + n] >>> 8) ^ t[t[(k - 1) * 256 + n] & 0xff];
  return t;
})();

/** CRC-32 (zip's) of `b`, 16 bytes per step (about 0.6 GB/s). */
export function crc32(b: Uint8Array): number {
  const t = CRC_TABLES;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let c = -1;
  let i = 0;
  for (const n16 = b.length - (b.length % 16); i < n16; i += 16) {
    const w0 = c ^ dv.getInt32(i, true);
    const w1 = dv.getInt32(i + 4, true);
    const w2 = dv.getInt32(i + 8, true);
    const w3 = dv.getInt32(i + 12, true);
    c =
      t[3840 + (w0 & 0xff)] ^ t[3584 + ((w0 >>> 8) & 0xff)] ^ t[3328 + ((w0 >>> 16) & 0xff)] ^ t[3072 + (w0 >>> 24)] ^
      t[2816 + (w1 & 0xff)] ^ t[2560 + ((w1 >>> 8) & 0xff)] ^ t[2304 + ((w1 >>> 16) & 0xff)] ^ t[2048 + (w1 >>> 24)] ^
      t[1792 + (w2 & 0xff)] ^ t[1536 + ((w2 >>> 8) & 0xff)] ^ t[1280 + ((w2 >>> 16) & 0xff)] ^ t[1024 + (w2 >>> 24)] ^
      t[768 + (w3 & 0xff)] ^ t[512 + ((w3 >>> 8) & 0xff)] ^ t[256 + ((w3 >>> 16) & 0xff)] ^ t[w3 >>> 24];
  }
  for (; i < b.length; i++) c = t[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** Inflates a raw deflate stream into exactly `size` bytes; stops as soon as it would produce more. */
function inflateExactly(raw: Uint8Array, size: number, fail: (m: string) => never): Uint8Array {
  const out = new Uint8Array(size);
  let got = 0;
  let ended = false;
  const inf = new Inflate((chunk, final) => {
    if (got + chunk.length > size) fail(`it inflates to more than the ${size} bytes the central directory declares`);
    out.set(chunk, got);
    got += chunk.length;
    ended ||= final;
  });
  const step = 16384; // at most ~16 MiB out per push (the deflate ratio), checked before the next
  try {
    for (let i = 0; i < raw.length; i += step) inf.push(raw.subarray(i, i + step), i + step >= raw.length);
    if (raw.length === 0) inf.push(raw, true);
  } catch (e) {
    if (e instanceof WeightFileError) throw e;
    fail(`cannot inflate: ${(e as Error).message}`);
  }
  if (got !== size) fail(`it inflates to ${got} bytes, the central directory declares ${size}`);
  return out;
}

/** The bytes of one record: stored ones as a view of the file, deflated ones inflated; the CRC-32 checked. */
function readZipEntry(bytes: Uint8Array, e: ZipEntry, fail: (m: string) => never): Uint8Array {
  const raw = bytes.subarray(e.start, e.start + e.compSize);
  const failEntry = (m: string): never => fail(`zip entry ${e.name}: ${m}`);
  let data: Uint8Array;
  if (e.method === 0) data = raw;
  else if (e.method === 8) data = inflateExactly(raw, e.size, failEntry);
  else return failEntry(`unsupported compression method ${e.method} (only stored and deflate)`);
  const crc = crc32(data);
  if (crc !== e.crc) {
    const hex = (v: number) => v.toString(16).padStart(8, '0');
    failEntry(`CRC-32 mismatch: the central directory says ${hex(e.crc)}, the data gives ${hex(crc)}: the file is corrupt`);
  }
  return data;
}

/** The bytes inflating a record allocates (0 for a stored one); a size deflate cannot reach is an error. */
function inflatedBytes(e: ZipEntry, fail: (m: string) => never): number {
  if (e.method !== 8) return 0;
  if (e.size > e.compSize * MAX_DEFLATE_RATIO + 1024) {
    fail(`zip entry ${e.name}: declares ${e.size} bytes once inflated, more than deflate can make of its ${e.compSize} bytes: corrupt zip`);
  }
  return e.size;
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
 * `file` names the file in error messages, which are one line each.
 *
 * The archive, the pickle and every tensor view are checked here, and the CRC-32 of each stored record read; the
 * values are made when a tensor's `data` is first read. What that may allocate in all is bounded by
 * `opts.maxBytes` (see ReadWeightsOptions): a file that would need more is refused here, before anything is
 * allocated. Tensors keep a reference to `bytes` until then: do not modify them.
 */
export function readPth(bytes: Uint8Array, file = 'checkpoint', opts: ReadWeightsOptions = {}): PthFile {
  return namingFile(file, () => parsePth(bytes, file, opts));
}

function parsePth(bytes: Uint8Array, file: string, opts: ReadWeightsOptions): PthFile {
  const fail = (msg: string): never => {
    throw new WeightFileError(`${file}: ${msg}`);
  };
  const budget = budgetOf(opts, bytes.length, file);
  let used = 0;
  /** Counts `n` bytes that materialising will allocate for `what` against the budget. */
  const spend = (n: number, what: string) => {
    used += n;
    if (used > budget.max) {
      fail(`${what} needs ${fmtBytes(n)}${used > n ? ` (${fmtBytes(used)} in all so far)` : ''}, more than the ${fmtBytes(budget.max)} allowed (${budget.why})`);
    }
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
  const read = (e: ZipEntry) => {
    spend(inflatedBytes(e, fail), `zip entry ${e.name}`);
    return readZipEntry(bytes, e, fail);
  };
  const prefix = pkl.name.slice(0, pkl.name.length - 'data.pkl'.length);
  const order = byName.get(`${prefix}byteorder`);
  if (order) {
    const bo = new TextDecoder().decode(read(order)).trim();
    if (bo !== 'little') fail(`byteorder record says "${bo.slice(0, 40)}": only little-endian checkpoints are supported`);
  }

  let root: unknown;
  try {
    root = unpickle(read(pkl), {
      findClass: torchClass,
      persistentLoad: (pid) => {
        if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) {
          throw new UnpicklingError(`unsupported persistent id ${describe(pid)} (expected ('storage', type, key, location, numel))`);
        }
        const [, type, key, location, numel] = pid;
        if (!(type instanceof StorageType)) throw new UnpicklingError(`persistent id: ${describe(type)} is not a storage type`);
        if (typeof key !== 'string' || !isCount(numel)) throw new UnpicklingError(`persistent id: bad storage key/numel (${describe(key)}, ${describe(numel)})`);
        return new StorageRef(type, key, String(location).slice(0, 64), numel);
      },
    });
  } catch (e) {
    if (e instanceof UnpicklingError) fail(`${pkl.name}: ${e.message}`);
    throw e;
  }

  const dict = findStateDict(root, fail);
  const tensors = new Map<string, LoadedTensor>();
  const skipped: string[] = [];
  const storages = new Map<string, StorageData>();
  const gathers = new Map<string, () => Float32Array>();
  for (const [k, v] of dict) {
    const name = String(k);
    if (!(v instanceof TensorRef)) {
      skipped.push(name);
      continue;
    }
    const t = `tensor ${name}`;
    const { storage: ref, offset, size, stride } = v;
    const { dtype, itemSize } = ref.type;
    const shape = [...size];
    const numel = size.reduce((a, b) => a * b, 1);
    const where = `${file}: ${t}`;
    const view = `offset ${offset}, size ${fmtShape(size)}, stride ${fmtShape(stride)}`;
    if (!Number.isSafeInteger(numel)) fail(`${t}: its size ${fmtShape(size)} has more elements than can be counted`);
    if (numel === 0) {
      tensors.set(name, lazyTensor(shape, dtype, where, () => new Float32Array(0)));
      continue;
    }
    const last = offset + size.reduce((acc, d, i) => acc + (d - 1) * stride[i], 0);
    if (last >= ref.numel) fail(`${t}: view (${view}) reaches element ${last} of a storage of ${ref.numel} elements`);
    let storage = storages.get(ref.key);
    if (!storage) {
      const entry = byName.get(`${prefix}data/${ref.key}`);
      if (!entry) return fail(`${t}: storage record data/${ref.key} is missing from the archive`);
      const needBytes = ref.numel * itemSize;
      if (entry.size < needBytes) {
        fail(`${t}: storage record ${entry.name} has ${entry.size} bytes, a ${ref.type.name} of ${ref.numel} elements needs ${needBytes}`);
      }
      spend(inflatedBytes(entry, fail) + 4 * ref.numel, `${t}: its storage ${entry.name} (${ref.numel} ${dtype} values, as float32)`);
      // Read (inflated, CRC-checked) when a tensor's values are first needed: only the storages used cost anything.
      storage = new StorageData(ref, () => readZipEntry(bytes, entry, fail));
      storages.set(ref.key, storage);
    } else if (storage.ref.type.name !== ref.type.name) {
      fail(`${t}: storage data/${ref.key} is declared both as ${storage.ref.type.name} and as ${ref.type.name}`);
    } else if (storage.ref.numel !== ref.numel) {
      fail(`${t}: storage data/${ref.key} is declared with both ${storage.ref.numel} and ${ref.numel} elements`);
    }
    const s = storage;
    const want = contiguousStrides(size);
    if (size.every((d, i) => d === 1 || stride[i] === want[i])) {
      tensors.set(name, lazyTensor(shape, dtype, where, () => s.values().subarray(offset, offset + numel)));
      continue;
    }
    // A non-contiguous view (a transpose, a stride-0 expand): gathered into an array of its own, shared by the
    // tensors that view the storage the same way.
    const key = `${ref.key}|${offset}|${size.join(',')}|${stride.join(',')}`;
    let gather = gathers.get(key);
    if (!gather) {
      spend(4 * numel, `${t}: its view (${view}) of a ${ref.numel}-element storage, as ${numel} float32 values,`);
      let made: Float32Array | undefined;
      gather = () => (made ??= gatherView(s.values(), offset, size, stride, numel));
      gathers.set(key, gather);
    }
    tensors.set(name, lazyTensor(shape, dtype, where, gather));
  }
  return { tensors, skipped };
}

/** One storage record and its values as float32, converted once on first use. */
class StorageData {
  private f32?: Float32Array;
  constructor(
    readonly ref: StorageRef,
    private readonly raw: () => Uint8Array,
  ) {}
  values(): Float32Array {
    const { numel, type } = this.ref;
    return (this.f32 ??= toFloat32(this.raw().subarray(0, numel * type.itemSize), type.dtype, numel));
  }
}

/** The elements of a strided view of `src` in row-major order. */
function gatherView(src: Float32Array, offset: number, size: number[], stride: number[], numel: number): Float32Array {
  const data = new Float32Array(numel);
  const rank = size.length;
  const idx = new Array<number>(rank).fill(0);
  let at = offset;
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
  return data;
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
