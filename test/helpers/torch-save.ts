// Test-only writer of PyTorch checkpoints, byte for byte as torch.save writes them (checked against
// torch 1.13.1's torch.save(obj, io.BytesIO()) under CPython 3.11; see test/io-pth.test.ts, which embeds such files).
//
// Where the bytes come from:
// * Zip container: caffe2/serialize/inline_container.cc (PyTorchStreamWriter::writeRecord / writeEndOfFile) on
//   miniz (third_party/miniz-2.x, mz_zip_writer_add_mem_ex_v2, opened with MZ_ZIP_FLAG_WRITE_ZIP64):
//   - records in the order torch/serialization.py `_save` writes them: <a>/data.pkl, [<a>/byteorder (torch >= 2.1)],
//     <a>/data/<key> for key in sorted(keys) (string sort: '0','1','10','2'), then <a>/version = "3\n" on close.
//     <a> is "archive" when saving to a file object, else the file name's stem.
//   - each record is stored (method 0), version needed 0, flags 0x0808 (bit 3: sizes in a data descriptor after the
//     data; bit 11: UTF-8 name), DOS time and date 0, crc and sizes 0 in the local header; the local header's extra
//     field is torch's alignment padding: id "FB", u16 length, then that many 'Z' bytes, so the data starts at a
//     multiple of 64 (detail::getPadding, kFieldAlignment = 64; the extra is present even when the padding is 0);
//   - data descriptor: PK\7\8, crc32, u32 compressed size, u32 size;
//   - central directory entries: version made by 0, needed 0, flags 0x0808, method 0, time/date 0, crc, sizes, no
//     extra, no comment, attributes 0, local header offset;
//   - then always a zip64 end-of-central-directory record (version made by 0x031e, needed 0x2d), its locator, and
//     the classic end-of-central-directory record.
// * Pickle: protocol 2 (torch.serialization.DEFAULT_PROTOCOL) from CPython's C pickler (Modules/_pickle.c, same
//   output as Lib/pickle.py here) with torch's persistent_id:
//   - every memoised object gets BINPUT n (LONG_BINPUT from 256) when first written and BINGET n later: strings,
//     non-empty tuples, dicts, GLOBALs (classes and functions), REDUCE results; ints, floats, bools are not memoised;
//     equal strings are only shared when they are one Python object: the constants 'storage' and 'cpu', the
//     interned kwarg name 'version' of the _metadata dicts, and each storage's key string;
//   - dicts: EMPTY_DICT; OrderedDict: GLOBAL 'collections OrderedDict' + EMPTY_TUPLE + REDUCE (its __reduce__),
//     then the items, then, when it has attributes (state_dict()'s _metadata), the state dict + BUILD;
//   - items: one item -> key value SETITEM; more -> MARK k v ... SETITEMS, in batches of 1000;
//   - tensor: GLOBAL 'torch._utils _rebuild_tensor_v2', MARK, persistent id tuple ('storage', GLOBAL torch.<T>Storage,
//     key, 'cpu', numel) + BINPERSID, offset, size tuple, stride tuple, NEWFALSE/NEWTRUE, OrderedDict() (the
//     backward hooks), TUPLE, REDUCE (torch/_tensor.py Tensor._reduce_ex_internal, torch/serialization.py _save);
//   - ints: BININT1 (0..255), BININT2 (..65535), BININT (int32), else LONG1; floats: BINFLOAT (big-endian);
//     tuples: EMPTY_TUPLE, TUPLE1/2/3, or MARK ... TUPLE.

export type TorchDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const STORAGE: Record<TorchDtype, [string, number]> = {
  F32: ['FloatStorage', 4], F16: ['HalfStorage', 2], BF16: ['BFloat16Storage', 2], F64: ['DoubleStorage', 8],
  I64: ['LongStorage', 8], I32: ['IntStorage', 4], I16: ['ShortStorage', 2], I8: ['CharStorage', 1],
  U8: ['ByteStorage', 1], BOOL: ['BoolStorage', 1],
};

/** A torch storage: raw little-endian bytes of one dtype. Several tensors may view one storage. */
export class Storage {
  constructor(
    readonly dtype: TorchDtype,
    readonly bytes: Uint8Array,
  ) {
    if (bytes.length % STORAGE[dtype][1]) throw new Error(`Storage: ${bytes.length} bytes is not a whole number of ${dtype}`);
  }
  get numel(): number {
    return this.bytes.length / STORAGE[this.dtype][1];
  }
  static f32(values: ArrayLike<number>): Storage {
    return new Storage('F32', new Uint8Array(Float32Array.from(values).buffer));
  }
  static f64(values: ArrayLike<number>): Storage {
    return new Storage('F64', new Uint8Array(Float64Array.from(values).buffer));
  }
  static i64(values: ArrayLike<number>): Storage {
    return new Storage('I64', new Uint8Array(BigInt64Array.from(Array.from(values), (v) => BigInt(v)).buffer));
  }
  /** From raw 16-bit patterns (F16 or BF16). */
  static bits16(dtype: 'F16' | 'BF16', bits: ArrayLike<number>): Storage {
    return new Storage(dtype, new Uint8Array(Uint16Array.from(bits).buffer));
  }
}

export function contiguousStride(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  for (let i = shape.length - 1, acc = 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** A tensor: a view (offset, shape, stride) of a storage, as torch pickles it. */
export class Tensor {
  constructor(
    readonly storage: Storage,
    readonly shape: number[],
    readonly stride: number[] = contiguousStride(shape),
    readonly offset = 0,
    readonly requiresGrad = false,
  ) {}
}

/** A contiguous float32 tensor of its own storage. */
export function f32(values: ArrayLike<number>, shape: number[]): Tensor {
  return new Tensor(Storage.f32(values), shape);
}

/** collections.OrderedDict; `metadata` is state_dict()'s `_metadata` (module prefix -> {'version': n}). */
export class OrderedDict {
  constructor(
    readonly entries: [string, PyValue][],
    readonly metadata?: [string, Record<string, number>][],
  ) {}
}

/** A Python float whose value happens to be an integer (a plain JS number is pickled as an int when integral). */
export class PyFloat {
  constructor(readonly value: number) {}
}

export type PyValue = Tensor | OrderedDict | Map<string, PyValue> | number | PyFloat | string | boolean | null;

// ---------------------------------------------------------------------------------------------------- pickle

class Out {
  private buf = new Uint8Array(1024);
  length = 0;
  private grow(n: number) {
    if (this.length + n <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    b.set(this.buf.subarray(0, this.length));
    this.buf = b;
  }
  bytes(b: ArrayLike<number>) {
    this.grow(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  u8(...v: number[]) {
    this.bytes(v);
  }
  u16(v: number) {
    this.u8(v & 0xff, (v >>> 8) & 0xff);
  }
  u32(v: number) {
    this.u8(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  }
  u64(v: number) {
    this.u32(v >>> 0);
    this.u32(Math.floor(v / 2 ** 32));
  }
  ascii(s: string) {
    this.bytes(Array.from(s, (c) => c.charCodeAt(0)));
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

type Item = [key: () => void, value: () => void];

const BATCHSIZE = 1000; // pickle._Pickler._BATCHSIZE

class Pickler {
  readonly out = new Out();
  private memoCount = 0;
  private readonly memoObj = new Map<object, number>();
  private readonly memoKey = new Map<string, number>(); // globals and the strings that are one Python object
  readonly storageKeys = new Map<Storage, string>();

  private put(): number {
    const i = this.memoCount++;
    if (i < 256) this.out.u8(0x71, i); // BINPUT
    else (this.out.u8(0x72), this.out.u32(i)); // LONG_BINPUT
    return i;
  }
  private get(i: number) {
    if (i < 256) this.out.u8(0x68, i); // BINGET
    else (this.out.u8(0x6a), this.out.u32(i)); // LONG_BINGET
  }
  private shared(key: string, write: () => void) {
    const i = this.memoKey.get(key);
    if (i !== undefined) return this.get(i);
    write();
    this.memoKey.set(key, this.put());
  }
  global(module: string, name: string) {
    this.shared(`g:${module}\n${name}`, () => this.out.ascii(`c${module}\n${name}\n`));
  }
  private rawStr(s: string) {
    const b = new TextEncoder().encode(s);
    this.out.u8(0x58); // BINUNICODE
    this.out.u32(b.length);
    this.out.bytes(b);
  }
  /** A str that is a new Python object: always written, then memoised. */
  str(s: string) {
    this.rawStr(s);
    this.put();
  }
  /** A str that is one Python object wherever it appears (a constant, an interned name, a storage key). */
  sharedStr(s: string, ns = 's') {
    this.shared(`${ns}:${s}`, () => this.rawStr(s));
  }
  int(v: number) {
    if (!Number.isSafeInteger(v)) throw new Error(`int ${v} is not a safe integer`);
    if (v >= 0 && v <= 0xff) this.out.u8(0x4b, v); // BININT1
    else if (v >= 0 && v <= 0xffff) (this.out.u8(0x4d), this.out.u16(v)); // BININT2
    else if (v >= -0x80000000 && v <= 0x7fffffff) (this.out.u8(0x4a), this.out.u32(v >>> 0)); // BININT
    else {
      // LONG1: minimal two's-complement little-endian (pickle.encode_long)
      let x = BigInt(v);
      const bytes: number[] = [];
      for (;;) {
        bytes.push(Number(x & 0xffn));
        x >>= 8n;
        const signBit = (bytes[bytes.length - 1] & 0x80) !== 0;
        if ((x === 0n && !signBit) || (x === -1n && signBit)) break;
      }
      this.out.u8(0x8a, bytes.length, ...bytes);
    }
  }
  tuple(items: (() => void)[]) {
    if (items.length === 0) return this.out.u8(0x29); // EMPTY_TUPLE (not memoised)
    if (items.length <= 3) {
      items.forEach((f) => f());
      this.out.u8(0x84 + items.length); // TUPLE1/2/3
    } else {
      this.out.u8(0x28); // MARK
      items.forEach((f) => f());
      this.out.u8(0x74); // TUPLE
    }
    this.put();
  }
  setitems(items: Item[]) {
    for (let i = 0; i < items.length; ) {
      const batch = items.slice(i, i + BATCHSIZE);
      i += batch.length;
      if (batch.length === 1) {
        batch[0][0]();
        batch[0][1]();
        this.out.u8(0x73); // SETITEM
      } else {
        this.out.u8(0x28); // MARK
        for (const [k, v] of batch) (k(), v());
        this.out.u8(0x75); // SETITEMS
      }
    }
  }
  emptyOrderedDict() {
    this.global('collections', 'OrderedDict');
    this.out.u8(0x29, 0x52); // EMPTY_TUPLE REDUCE
    this.put();
  }
  value(v: PyValue) {
    if (v === null) return this.out.u8(0x4e); // NONE
    if (v === true) return this.out.u8(0x88); // NEWTRUE
    if (v === false) return this.out.u8(0x89); // NEWFALSE
    if (typeof v === 'number' && Number.isInteger(v)) return this.int(v);
    if (typeof v === 'number' || v instanceof PyFloat) {
      this.out.u8(0x47); // BINFLOAT, big-endian
      const b = new DataView(new ArrayBuffer(8));
      b.setFloat64(0, typeof v === 'number' ? v : v.value, false);
      return this.out.bytes(new Uint8Array(b.buffer));
    }
    if (typeof v === 'string') return this.str(v);
    const seen = this.memoObj.get(v);
    if (seen !== undefined) return this.get(seen);
    if (v instanceof Tensor) return this.tensor(v);
    if (v instanceof Map) {
      this.out.u8(0x7d); // EMPTY_DICT
      this.memoObj.set(v, this.put());
      return this.setitems([...v].map(([k, x]): Item => [() => this.str(k), () => this.value(x)]));
    }
    // OrderedDict.__reduce__ -> (OrderedDict, (), vars(self) or None, None, iter(items))
    this.emptyOrderedDict();
    this.memoObj.set(v, this.memoCount - 1);
    this.setitems(v.entries.map(([k, x]): Item => [() => this.str(k), () => this.value(x)]));
    if (v.metadata) {
      this.out.u8(0x7d); // the instance __dict__: {'_metadata': OrderedDict(...)}
      this.put();
      const meta = v.metadata;
      this.setitems([
        [
          () => this.str('_metadata'),
          () => {
            this.emptyOrderedDict();
            this.setitems(
              meta.map(([prefix, d]): Item => [
                () => this.str(prefix),
                () => {
                  this.out.u8(0x7d);
                  this.put();
                  this.setitems(Object.entries(d).map(([k, n]): Item => [() => this.sharedStr(k), () => this.int(n)]));
                },
              ]),
            );
          },
        ],
      ]);
      this.out.u8(0x62); // BUILD
    }
  }
  private tensor(t: Tensor) {
    const [typeName] = STORAGE[t.storage.dtype];
    this.global('torch._utils', '_rebuild_tensor_v2');
    this.tuple([
      () => {
        // torch.serialization._save.persistent_id: ('storage', storage_type, key, location, numel)
        // key = id_map.setdefault(storage._cdata, str(len(id_map))): one str object per storage
        let key = this.storageKeys.get(t.storage);
        if (key === undefined) this.storageKeys.set(t.storage, (key = String(this.storageKeys.size)));
        const k = key;
        this.tuple([
          () => this.sharedStr('storage'),
          () => this.global('torch', typeName),
          () => this.sharedStr(k, 'key'),
          () => this.sharedStr('cpu'),
          () => this.int(t.storage.numel),
        ]);
        this.out.u8(0x51); // BINPERSID
      },
      () => this.int(t.offset),
      () => this.tuple(t.shape.map((d) => () => this.int(d))),
      () => this.tuple(t.stride.map((d) => () => this.int(d))),
      () => this.value(t.requiresGrad),
      () => this.emptyOrderedDict(),
    ]);
    this.out.u8(0x52); // REDUCE
    this.memoObj.set(t, this.put());
  }
}

/** The data.pkl bytes and the storages (by key) that torch.save would write for `obj`. */
export function torchPickle(obj: PyValue): { pickle: Uint8Array; storages: Map<string, Storage> } {
  const p = new Pickler();
  p.out.u8(0x80, 2); // PROTO 2
  p.value(obj);
  p.out.u8(0x2e); // STOP
  const storages = new Map<string, Storage>();
  for (const [s, k] of p.storageKeys) storages.set(k, s);
  return { pickle: p.out.result(), storages };
}

// ---------------------------------------------------------------------------------------------------- zip

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One record of `zipRecords`; the optional fields lie about it (for malformed archives in tests). */
export interface ZipRecord {
  name: string;
  /** The bytes in the archive: already deflated when `method` is 8. */
  data: Uint8Array;
  /** 0 stored (default), 8 deflate. */
  method?: number;
  /** The uncompressed size the central directory declares (default: data.length). */
  size?: number;
  /** The compressed size the central directory declares (default: data.length). */
  compSize?: number;
  /** The CRC-32 the central directory declares (default: that of data; for method 8 give the inflated data's). */
  crc?: number;
}

export interface ZipOptions {
  /** Bytes appended after the end-of-central-directory record (a zip comment that its length field leaves out). */
  trailer?: [name: string, data: Uint8Array];
  /** The uncompressed size that the trailer's central entry declares (default: its data's length). */
  trailerSize?: number;
}

/** A zip archive the way PyTorchStreamWriter writes its records (see the header comment). */
export function torchZip(records: [string, Uint8Array][]): Uint8Array {
  return zipRecords(records.map(([name, data]) => ({ name, data })));
}

interface Written {
  name: Uint8Array;
  crc: number;
  size: number;
  compSize: number;
  offset: number;
  method: number;
}

/** A local header (torch's alignment padding in its extra field), the data, then the data descriptor unless `last`. */
function localRecord(out: Out, r: ZipRecord, last = false): Written {
  const name = new TextEncoder().encode(r.name);
  const { data } = r;
  if (data.length >= 0xffffffff || out.length >= 0xffffffff) throw new Error('torchZip: zip64 records are not implemented');
  const offset = out.length;
  const start = offset + 30 + name.length + 4;
  const pad = (64 - (start % 64)) % 64;
  const method = r.method ?? 0;
  out.u32(0x04034b50);
  out.u16(0); // version needed
  out.u16(0x0808); // flags: data descriptor, UTF-8
  out.u16(method);
  out.u16(0); // time
  out.u16(0); // date
  out.u32(0); // crc (in the descriptor)
  out.u32(0); // compressed size
  out.u32(0); // size
  out.u16(name.length);
  out.u16(4 + pad);
  out.bytes(name);
  out.ascii('FB');
  out.u16(pad);
  out.bytes(new Uint8Array(pad).fill(0x5a)); // 'Z'
  out.bytes(data);
  const crc = r.crc ?? crc32(data);
  const size = r.size ?? data.length;
  const compSize = r.compSize ?? data.length;
  if (last) return { name, crc, size, compSize, offset, method };
  out.u32(0x08074b50);
  out.u32(crc);
  out.u32(compSize);
  out.u32(size);
  return { name, crc, size, compSize, offset, method };
}

/**
 * torchZip with control over each record (method, declared sizes and CRC). `opts.trailer` puts one more record after
 * the end-of-central-directory record (where a zip comment would be), so that its data ends the file.
 */
export function zipRecords(records: ZipRecord[], opts: ZipOptions = {}): Uint8Array {
  const out = new Out();
  const central = records.map((r) => localRecord(out, r));
  const cdOffset = out.length;
  const writeCentral = (e: Written) => {
    out.u32(0x02014b50);
    out.u16(0); // made by
    out.u16(0); // needed
    out.u16(0x0808);
    out.u16(e.method);
    out.u16(0);
    out.u16(0);
    out.u32(e.crc);
    out.u32(e.compSize);
    out.u32(e.size);
    out.u16(e.name.length);
    out.u16(0); // extra
    out.u16(0); // comment
    out.u16(0); // disk
    out.u16(0); // internal attributes
    out.u32(0); // external attributes
    out.u32(e.offset);
    out.bytes(e.name);
  };
  for (const e of central) writeCentral(e);
  // The trailer's central entry, with its local header offset patched in once the end records are written.
  const trailerCentralAt = out.length;
  const trailer = opts.trailer && { name: opts.trailer[0], data: opts.trailer[1] };
  if (trailer) {
    const size = opts.trailerSize ?? trailer.data.length;
    writeCentral({ name: new TextEncoder().encode(trailer.name), crc: crc32(trailer.data), size, compSize: trailer.data.length, offset: 0, method: 0 });
  }
  const count = central.length + (trailer ? 1 : 0);
  const cdSize = out.length - cdOffset;
  const eocd64 = out.length;
  out.u32(0x06064b50);
  out.u64(44);
  out.u16(0x031e);
  out.u16(0x2d);
  out.u32(0);
  out.u32(0);
  out.u64(count);
  out.u64(count);
  out.u64(cdSize);
  out.u64(cdOffset);
  out.u32(0x07064b50);
  out.u32(0);
  out.u64(eocd64);
  out.u32(1);
  out.u32(0x06054b50);
  out.u16(0);
  out.u16(0);
  out.u16(count);
  out.u16(count);
  out.u32(cdSize);
  out.u32(cdOffset);
  out.u16(0);
  if (!trailer) return out.result();
  const at = out.length;
  localRecord(out, trailer, true);
  const bytes = out.result();
  new DataView(bytes.buffer).setUint32(trailerCentralAt + 42, at, true);
  return bytes;
}

export interface TorchSaveOptions {
  /** The folder inside the zip: "archive" for torch.save(obj, file_object), the file stem for a path. */
  archiveName?: string;
  /** Add the <archive>/byteorder record ("little") that torch >= 2.1 writes after data.pkl (not byte-checked here). */
  byteorder?: boolean;
}

/** The bytes of torch.save(obj, f) for a state dict (or a dict wrapping one) built from the classes above. */
export function torchSave(obj: PyValue, opts: TorchSaveOptions = {}): Uint8Array {
  const a = opts.archiveName ?? 'archive';
  const { pickle, storages } = torchPickle(obj);
  const records: [string, Uint8Array][] = [[`${a}/data.pkl`, pickle]];
  if (opts.byteorder) records.push([`${a}/byteorder`, new TextEncoder().encode('little')]);
  for (const key of [...storages.keys()].sort()) records.push([`${a}/data/${key}`, storages.get(key)!.bytes]);
  records.push([`${a}/version`, new TextEncoder().encode('3\n')]);
  return torchZip(records);
}
