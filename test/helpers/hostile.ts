// Hostile weight files for the hardening tests (issue #14, items 1-3): small inputs that cost a naive reader far more
// time or memory than their size, or that lie about their own layout. Each is built here, never stored.
import { deflateRawSync } from 'node:zlib';
import { OrderedDict, Storage, Tensor, crc32, torchPickle, torchSave, zipRecords, type PyValue, type ZipRecord } from './torch-save.js';

const enc = (s: string) => new TextEncoder().encode(s);
const VERSION: ZipRecord = { name: 'archive/version', data: enc('3\n') };

function u32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

/** A torch.save archive around a hand-written pickle (PROTO 2 ... STOP added here). */
export function pickleArchive(body: ArrayLike<number>): Uint8Array {
  const pkl = new Uint8Array(body.length + 3);
  pkl.set([0x80, 2]);
  pkl.set(body, 2);
  pkl[pkl.length - 1] = 0x2e; // STOP
  return zipRecords([{ name: 'archive/data.pkl', data: pkl }, VERSION]);
}

/** A pickle holding one LONG4 integer of `n` bytes (popped), then an empty dict. */
export function long4Pth(n: number): Uint8Array {
  const body = new Uint8Array(5 + n + 2);
  body.set([0x8b, ...u32(n)]); // LONG4 <n>
  body.fill(0x5a, 5, 5 + n); // a positive integer of 8n bits
  body.set([0x30, 0x7d], 5 + n); // POP, EMPTY_DICT
  return pickleArchive(body);
}

/** A pickle holding one BINSTRING of `n` bytes (popped), then an empty dict. */
export function binstringPth(n: number): Uint8Array {
  const body = new Uint8Array(5 + n + 2);
  body.set([0x54, ...u32(n)]); // BINSTRING <n>
  body.fill(0x61, 5, 5 + n);
  body.set([0x30, 0x7d], 5 + n);
  return pickleArchive(body);
}

/** A stride-0 view of a 1-element storage as [side, side] (torch.tensor([1.]).expand(side, side)). */
export function strideZeroPth(side = 20000, name = 'w'): Uint8Array {
  return torchSave(new OrderedDict([[name, new Tensor(Storage.f32([1]), [side, side], [0, 0])]]));
}

/** `names` tensors, each a whole view of one shared float32 storage of `storageBytes`. */
export function sharedViewsPth(names = 600, storageBytes = 4 << 20): Uint8Array {
  const s = new Storage('F32', new Uint8Array(storageBytes));
  const n = storageBytes / 4;
  return torchSave(new OrderedDict(Array.from({ length: names }, (_, i): [string, PyValue] => [`layer${i}.weight`, new Tensor(s, [n])])));
}

/** A deflated float32 storage of `inflatedBytes` zeros, whose archive is ~1/1000 of that. */
export function deflateBombPth(inflatedBytes: number): Uint8Array {
  const zeros = new Uint8Array(inflatedBytes);
  const { pickle } = torchPickle(new OrderedDict([['w', new Tensor(new Storage('F32', zeros), [inflatedBytes / 4])]]));
  return zipRecords([
    { name: 'archive/data.pkl', data: pickle },
    { name: 'archive/data/0', data: deflateRawSync(zeros, { level: 9 }), method: 8, size: inflatedBytes, crc: crc32(zeros) },
    VERSION,
  ]);
}

const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0));

/** A pickle that starts an OrderedDict-free state dict: `{'w': <the given tensor rebuild>}` (protocol 2 opcodes). */
function tensorPickle(storageType: string, numel: number, size: number[], stride: number[], offset = 0): number[] {
  const int = (v: number) => [0x4a, ...u32(v)]; // BININT (v < 2^31)
  const tuple = (items: number[][]) => [0x28, ...items.flat(), 0x74]; // MARK ... TUPLE
  return [
    0x7d, // EMPTY_DICT
    0x58, ...u32(1), ...ascii('w'), // BINUNICODE 'w'
    ...ascii('ctorch._utils\n_rebuild_tensor_v2\n'),
    0x28, // MARK (the args)
    ...tuple([[0x58, ...u32(7), ...ascii('storage')], ascii(`ctorch\n${storageType}\n`), [0x58, ...u32(1), ...ascii('0')], [0x58, ...u32(3), ...ascii('cpu')], int(numel)]),
    0x51, // BINPERSID
    ...int(offset),
    ...tuple(size.map(int)),
    ...tuple(stride.map(int)),
    0x89, // NEWFALSE (requires_grad)
    ...ascii('ccollections\nOrderedDict\n'), 0x29, 0x52, // OrderedDict()
    0x74, 0x52, // TUPLE, REDUCE
    0x73, // SETITEM
  ];
}

function pklRecord(body: number[]): ZipRecord {
  return { name: 'archive/data.pkl', data: Uint8Array.from([0x80, 2, ...body, 0x2e]) };
}

/**
 * Archives that the reader before issue #14 answered with a raw RangeError/SyntaxError that named no file, each with
 * what is wrong with it. (Built to hit one code path each; all are small.)
 */
export function malformedArchives(): [what: string, bytes: Uint8Array][] {
  const floats = new Uint8Array(Float32Array.from([1, 2, 3, 4]).buffer);
  const cases: [string, Uint8Array][] = [];
  // 1. A central directory entry whose extra field runs past the end of the file.
  {
    const z = zipRecords([pklRecord([0x7d]), VERSION]);
    const dv = new DataView(z.buffer);
    const cd = Number(dv.getBigUint64(z.length - 22 - 20 - 56 + 48, true));
    dv.setUint16(cd + 30, 0xfff0, true); // extra length of the first entry
    cases.push(['central directory extra field beyond the end of the file', z]);
  }
  // 2./3. INT and LONG opcodes (protocol 0 text) whose argument is not an integer.
  cases.push(['INT argument that is not an integer', zipRecords([pklRecord([0x49, ...ascii('1.5\n'), 0x30, 0x7d]), VERSION])]);
  cases.push(['LONG argument that is not an integer', zipRecords([pklRecord([0x4c, ...ascii('12x3L\n'), 0x30, 0x7d]), VERSION])]);
  // 4. UNICODE with a \U escape that is no code point.
  cases.push(['UNICODE escape beyond U+10FFFF', zipRecords([pklRecord([0x56, ...ascii('\\U7fffffff\n'), 0x30, 0x7d]), VERSION])]);
  // 5. APPENDS of 200 000 items (one call with that many arguments overflows the stack).
  {
    const body = [0x5d, 0x28, ...new Array<number>(200_000).fill(0x4e), 0x65, 0x30, 0x7d]; // EMPTY_LIST MARK None... APPENDS POP {}
    cases.push(['APPENDS of 200000 items', zipRecords([pklRecord(body), VERSION])]);
  }
  // 6. A stride-0 view with more elements than a typed array can hold (2^20 x 2^20 of one float).
  cases.push([
    'a view of 2^40 elements',
    zipRecords([pklRecord(tensorPickle('FloatStorage', 1, [1 << 20, 1 << 20], [0, 0])), { name: 'archive/data/0', data: floats.subarray(0, 4) }, VERSION]),
  ]);
  // 7. A deflated record that declares 4 GiB once inflated.
  cases.push([
    'a deflated record declaring 4 GiB',
    zipRecords([
      pklRecord(tensorPickle('FloatStorage', 4, [4], [1])),
      { name: 'archive/data/0', data: deflateRawSync(floats), method: 8, size: 0xfffffffe, crc: crc32(floats) },
      VERSION,
    ]),
  ]);
  // 8. A stored record whose declared size exceeds what it holds, at an odd offset in the file (its bytes get copied
  //    to align them, and the typed array then runs past the copy).
  {
    const z = zipRecords([pklRecord(tensorPickle('FloatStorage', 4, [4], [1])), { name: 'archive/data/0', data: floats.subarray(0, 8), size: 16 }, VERSION]);
    const odd = new Uint8Array(z.length + 1).subarray(1);
    odd.set(z);
    cases.push(['a stored record declaring more bytes than it holds (unaligned)', odd]);
  }
  return cases;
}

/**
 * Item 3: a float32 storage record `data/0` that holds 2 floats while the pickle says 4 and its central directory
 * entry declares more bytes. `atEnd` puts the record last in the file (after the end-of-central-directory record)
 * and declares 16 bytes, so the 8 missing ones lie outside the file; otherwise it declares 72, which run into the
 * next record.
 */
export function overlongRecordPth(atEnd: boolean): Uint8Array {
  const floats = new Uint8Array(Float32Array.from([1.5, -2.5]).buffer);
  const pkl = pklRecord(tensorPickle('FloatStorage', 4, [4], [1]));
  if (atEnd) return zipRecords([pkl, VERSION], { trailer: ['archive/data/0', floats], trailerSize: 16 });
  return zipRecords([pkl, { name: 'archive/data/0', data: floats, size: 72, compSize: 72 }, VERSION]); // into the next header
}
